"""Ingest benchmark: gRPC batches of 1,000 into Kafka vs a bare confluent-kafka producer; latency.

Run: .venv/bin/python -m bench.ingest [--pulses 200000] [--threads 4] [--processes 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from confluent_kafka import Producer

from bench.common import (
    fresh_settings,
    header,
    peak_rss_mb,
    percentile,
    servers,
    serving,
    start_role,
    stop,
    wait_for,
)
from ledger import codec
from ledger.model import Pulse
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse


def pulses(count: int, run: str) -> list[pulse_pb2.Pulse]:
    at = datetime.now(UTC) - timedelta(minutes=30)
    return [
        make_pulse(
            f"{run}-{i}",
            f"tenant-{i % 200:04d}",
            "network.egress",
            Decimal(i % 9973) / 100,
            "MB",
            at + timedelta(microseconds=i),
        )
        for i in range(count)
    ]


def grpc_run(target: str, requests: list[bytes], threads: int) -> float:
    """Seconds to send all requests over `threads` concurrent channels."""
    chunks = [requests[i::threads] for i in range(threads)]
    clients = [IngestClient(target) for _ in range(threads)]
    errors: list[str] = []

    def work(client: IngestClient, mine: list[bytes]) -> None:
        for payload in mine:
            reply = client.ingest_bytes(payload)
            bad = [r for r in reply.results if r.status != pulse_pb2.PulseResult.ACCEPTED]
            if bad:
                errors.append(f"{len(bad)} not accepted: {bad[0]}")

    started = time.perf_counter()
    workers = [
        threading.Thread(target=work, args=pair) for pair in zip(clients, chunks, strict=True)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    for c in clients:
        c.close()
    if errors:
        raise SystemExit(errors[0])
    return elapsed


def bare_run(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> float:
    """Seconds for a bare idempotent producer (same settings as ours) to get all acks."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "compression.type": "lz4",
        }
    )
    failures: list[object] = []

    def report(error: object, _msg: object) -> None:
        if error is not None:
            failures.append(error)

    stamp = int(time.time() * 1000)
    started = time.perf_counter()
    for key, value in items:
        while True:
            try:
                producer.produce(topic, value=value, key=key, timestamp=stamp, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"bare producer failures: {failures[0]}")
    return elapsed


def latency_run(target: str, calls: int, rate: float, run: str) -> list[float]:
    """Milliseconds per single-pulse Ingest call, paced at `rate` calls/s."""
    client = IngestClient(target)
    requests = [pulse_pb2.IngestRequest(pulses=[p]).SerializeToString() for p in pulses(calls, run)]
    out: list[float] = []
    started = time.perf_counter()
    for i, payload in enumerate(requests):
        due = started + i / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        t0 = time.perf_counter()
        client.ingest_bytes(payload)
        out.append((time.perf_counter() - t0) * 1000)
    client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pulses", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--latency-calls", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=1, help="ingestors on one port")
    args = parser.parse_args()

    srv = servers()
    settings = fresh_settings(srv)
    run = f"b{int(time.time())}"
    batch = pulses(args.pulses, run)
    requests = [
        pulse_pb2.IngestRequest(pulses=batch[i : i + args.batch]).SerializeToString()
        for i in range(0, len(batch), args.batch)
    ]
    logs = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    if args.processes > 1:  # the roles get this process's environment (bench.common.env_of)
        os.environ["PULSE_INGEST__REUSE_PORT"] = "true"
    ingestors = [
        start_role(settings, "ingestor", logs / f"ingestor-{n}.log") for n in range(args.processes)
    ]
    target = settings.ingest.address
    try:
        wait_for(lambda: serving(target), 60, "the ingestor")
        grpc_run(target, requests[:5], args.threads)  # warm-up: connections, JIT-less caches
        ours = grpc_run(target, requests, args.threads)
        items = [
            (p.tenant_id.encode(), codec.encode(_pulse(p))) for p in pulses(args.pulses, run + "x")
        ]
        bare = bare_run(srv.kafka, settings.kafka.topic, items)
        lat = latency_run(target, args.latency_calls, 500, run + "l")
        rss = max(peak_rss_mb(p.pid) for p in ingestors)
    finally:
        for process in ingestors:
            stop(process)
    ours_rate, bare_rate = args.pulses / ours, args.pulses / bare
    print(header("ingest benchmark"))
    print(
        f"gRPC ingest ({args.batch}/batch, {args.threads} client threads, "
        f"{args.processes} ingestor process(es)): "
        f"{ours_rate:,.0f} pulses/s ({args.pulses} pulses in {ours:.2f} s)"
    )
    print(f"bare confluent-kafka producer, same records and settings: {bare_rate:,.0f} pulses/s")
    print(f"ratio ours/bare: {ours_rate / bare_rate:.2f}")
    print(
        f"single-pulse Ingest at 500 calls/s ({len(lat)} calls): "
        f"p50 {percentile(lat, 50):.2f} ms, p99 {percentile(lat, 99):.2f} ms, "
        f"max {max(lat):.2f} ms"
    )
    print(f"ingestor peak RSS: {rss:.0f} MiB")


def _pulse(message: pulse_pb2.Pulse) -> Pulse:
    return Pulse(
        pulse_id=message.pulse_id,
        tenant_id=message.tenant_id,
        product_sku=message.product_sku,
        used_amount=Decimal(message.used_amount),
        use_unit=message.use_unit,
        occurred_at=datetime.fromtimestamp(message.occurred_at.seconds, UTC)
        + timedelta(microseconds=message.occurred_at.nanos // 1000),
    )


if __name__ == "__main__":
    main()
