"""Single-pulse gRPC calls at 8, 100 and 1,000 in flight vs a bare producer doing the same.

Each Ingest call carries one pulse and is answered only after Kafka acknowledged it (acks=all).
The baseline, in the same run on the same broker: one bare confluent-kafka producer with the
same settings keeping the same number of one-record "calls" in flight, each waiting for its
own delivery report before the next starts (the fastest bare way: every record in flight
shares the producer's batches).

Load comes from `ghz` when it is found (`go install github.com/bojand/ghz/cmd/ghz@latest`;
Go costs less CPU per call than a Python client on the same cores), else from our own asyncio
client (`--client aio` forces it).

Run: .venv/bin/python -m bench.grpc_single [--calls 20000] [--in-flight 8,100,1000]
     [--processes 1] [--client ghz|aio] [--rps R] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from confluent_kafka import KafkaError, Message, Producer

from bench.common import (
    PULSE_CLI,
    env_of,
    fresh_settings,
    header,
    peak_rss_mb,
    percentile,
    servers,
    serving,
    stop,
    wait_for,
)
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import make_pulse
from pulse.settings import Settings

_METHOD = "/pulse.v1.IngestService/Ingest"
PROTO = Path(__file__).resolve().parent.parent / "proto"


@dataclass(frozen=True)
class Result:
    calls: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def line(self) -> str:
        return (
            f"{self.rate:>9,.0f} calls/s  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"
            f"  ({self.calls} calls, {self.errors} errors)"
        )


def request(run: str, i: int, at: datetime) -> bytes:
    pulse = make_pulse(f"{run}-{i}", f"tenant-{i % 200:04d}", "network.egress", "1.5", "MB", at)
    return pulse_pb2.IngestRequest(pulses=[pulse]).SerializeToString()


# --- load from our own asyncio client --------------------------------------------------------


def connections_for(in_flight: int, processes: int) -> int:
    """A connection per 100 calls in flight, and at least 4 per ingestor process: SO_REUSEPORT
    spreads connections, not calls, so one connection would keep one process busy."""
    return max(1, in_flight // 100, 4 * processes if processes > 1 else 1)


async def _aio_load(
    target: str, payloads: list[bytes], in_flight: int, connections: int = 1
) -> Result:
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    stubs = [
        c.unary_unary(
            _METHOD,
            request_serializer=None,
            response_deserializer=pulse_pb2.IngestResponse.FromString,
        )
        for c in channels
    ]
    latencies: list[float] = []
    errors = 0
    next_index = 0

    async def worker(n: int) -> None:
        nonlocal errors, next_index
        stub = stubs[n % len(stubs)]
        while next_index < len(payloads):
            payload = payloads[next_index]
            next_index += 1
            started = time.perf_counter()
            try:
                reply = await stub(payload, timeout=30)
                if reply.results[0].status != pulse_pb2.PulseResult.ACCEPTED:
                    errors += 1
            except grpc.aio.AioRpcError:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(in_flight)))
    seconds = time.perf_counter() - started
    for channel in channels:
        await channel.close(None)
    return Result(
        len(latencies), seconds, percentile(latencies, 50), percentile(latencies, 99), errors
    )


def aio_load(target: str, payloads: list[bytes], in_flight: int, connections: int = 1) -> Result:
    return asyncio.run(_aio_load(target, payloads, in_flight, connections))


# --- load from ghz -----------------------------------------------------------------------------


def ghz_load(
    ghz: str,
    target: str,
    calls: int,
    in_flight: int,
    run: str,
    at: datetime,
    *,
    connections: int,
    rps: int = 0,
) -> Result:
    """`rps` > 0 offers calls at that rate (open loop) instead of as fast as answered."""
    data = {
        "pulses": [
            {
                "pulse_id": f"{run}-{{{{.RequestNumber}}}}",
                "tenant_id": "tenant-{{randomInt 0 200}}",
                "product_sku": "network.egress",
                "used_amount": "1.5",
                "use_unit": "MB",
                "occurred_at": at.isoformat().replace("+00:00", "Z"),
            }
        ]
    }
    command = [
        ghz,
        "--insecure",
        "--proto",
        str(PROTO / "pulse" / "v1" / "pulse.proto"),
        "--import-paths",
        str(PROTO),
        "--call",
        "pulse.v1.IngestService.Ingest",
        "-d",
        json.dumps(data),
        "-n",
        str(calls),
        "-c",
        str(in_flight),
        "--connections",
        str(connections),
        "--timeout",
        "30s",
        "--count-errors",
        "--rps",
        str(rps),
        "-O",
        "json",
        target,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 and not done.stdout:
        raise SystemExit(f"ghz failed: {done.stderr.strip()}")
    report = json.loads(done.stdout)
    quantiles = {d["percentage"]: d["latency"] / 1e6 for d in report["latencyDistribution"]}
    codes = report.get("statusCodeDistribution", {})
    errors = sum(n for code, n in codes.items() if code != "OK")
    return Result(
        int(report["count"]),
        report["total"] / 1e9,
        quantiles.get(50, float("nan")),
        quantiles.get(99, float("nan")),
        errors,
    )


# --- the bare producer baseline ----------------------------------------------------------------


def bare_load(bootstrap: str, topic: str, payloads: list[bytes], in_flight: int) -> Result:
    """`in_flight` one-record calls at a time on one producer; the next call of a "client"
    starts from the delivery report of its previous one."""
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
    latencies: list[float] = []
    errors = 0
    next_index = 0
    stamp = int(time.time() * 1000)

    def send() -> None:
        nonlocal next_index
        if next_index >= len(payloads):
            return
        payload = payloads[next_index]
        next_index += 1
        started = time.perf_counter()

        def delivered(error: KafkaError | None, _message: Message) -> None:
            nonlocal errors
            latencies.append((time.perf_counter() - started) * 1000)
            if error is not None:
                errors += 1
            send()

        producer.produce(topic, value=payload, key=b"k%d" % (next_index % 200), timestamp=stamp,
                         on_delivery=delivered)  # fmt: skip

    # Warm-up, as the ingestor had: connection, metadata and producer id before the clock runs.
    producer.produce(topic, value=payloads[0], key=b"warm-up", timestamp=stamp)
    producer.flush(30)
    started = time.perf_counter()
    for _ in range(in_flight):
        send()
    while len(latencies) < len(payloads):
        producer.poll(0.05)
    seconds = time.perf_counter() - started
    producer.flush(10)
    return Result(
        len(latencies), seconds, percentile(latencies, 50), percentile(latencies, 99), errors
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the run -----------------------------------------------------------------------------------


def start_ingestors(settings: Settings, count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    env = env_of(settings)
    if count > 1:
        env["PULSE_INGEST__REUSE_PORT"] = "true"
    out = []
    for n in range(count):
        log = (logs / f"ingestor-{n}.log").open("ab")
        out.append(
            subprocess.Popen(
                [PULSE_CLI, "serve", "ingestor"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        )
    return out


def profile(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy samples the ingestor for `seconds` (collapsed stacks, one line per stack)."""
    py_spy = shutil.which("py-spy") or str(Path(PULSE_CLI).parent / "py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
               "--format", "raw", "--nonblocking", "--output", str(out)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--in-flight", default="8,100,1000")
    parser.add_argument("--processes", type=int, default=1, help="ingestors on one port")
    parser.add_argument("--client", choices=["auto", "ghz", "aio"], default="auto")
    parser.add_argument("--ghz", default=os.environ.get("GHZ", "ghz"))
    parser.add_argument("--rps", type=int, default=0, help="ghz: offer this many calls/s")
    parser.add_argument("--profile", type=Path, help="py-spy stacks of the first ingestor")
    parser.add_argument("--profile-seconds", type=int, default=5)
    args = parser.parse_args()
    levels = [int(n) for n in args.in_flight.split(",")]
    ghz = shutil.which(args.ghz) if args.client != "aio" else None
    if args.rps and ghz is None:
        raise SystemExit("--rps needs ghz")
    if args.client == "ghz" and ghz is None:
        raise SystemExit(f"ghz not found as {args.ghz!r}")

    srv = servers()
    settings = fresh_settings(srv)
    target = settings.ingest.address
    logs = Path(tempfile.mkdtemp(prefix="bench-grpc-single-"))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    ingestors = start_ingestors(settings, args.processes, logs)
    at = datetime.now(UTC) - timedelta(minutes=30)
    run = f"s{int(time.time())}"
    rows: list[tuple[int, Result, Result, float, float]] = []
    try:
        wait_for(lambda: serving(target), 90, "the ingestor")
        for level in levels:
            tag = f"{run}-{level}"
            payloads = [request(tag, i, at) for i in range(args.calls)]
            # warm-up: connections, the producer's metadata, the loop's first allocations
            aio_load(target, payloads[:200], min(level, 50))
            spy = None
            if args.profile is not None:
                out = args.profile / f"ingestor-{level}-in-flight.txt"
                spy = profile(ingestors[0].pid, args.profile_seconds, out)
            conns = connections_for(level, args.processes)
            cpu_before = sum(cpu_seconds(p.pid) for p in ingestors)
            if ghz is not None:
                ours = ghz_load(
                    ghz, target, args.calls, level, tag + "g", at, connections=conns, rps=args.rps
                )
            else:
                ours = aio_load(target, payloads, level, conns)
            cpu = sum(cpu_seconds(p.pid) for p in ingestors) - cpu_before
            if spy is not None:
                spy.wait(args.profile_seconds + 30)
            bare_cpu_before = time.process_time()
            bare = bare_load(srv.kafka, settings.kafka.topic, payloads, level)
            bare_cpu = time.process_time() - bare_cpu_before
            rows.append((level, ours, bare, cpu / ours.calls * 1e6, bare_cpu / bare.calls * 1e6))
        rss = [peak_rss_mb(p.pid) for p in ingestors if p.poll() is None]
        shares = [cpu_seconds(p.pid) for p in ingestors if p.poll() is None]
    finally:
        for process in ingestors:
            stop(process)
    client = "ghz" if ghz is not None else "asyncio grpc client (Python)"
    print(header("single-pulse gRPC calls (acks=all, answered after delivery)"))
    offered = f"{args.rps} calls/s offered" if args.rps else "closed loop"
    print(f"# load: {client}, {offered}; {args.processes} ingestor process(es) on one port")
    print(f"# logs: {logs}")
    for level, ours, bare, cpu_us, bare_cpu_us in rows:
        print(f"{level:>5} in flight  gRPC: {ours.line()}  ingestor CPU {cpu_us:.0f} us/call")
        print(f"{'':>5}            bare: {bare.line()}  producer CPU {bare_cpu_us:.0f} us/call")
        print(f"{'':>5}            ratio gRPC/bare calls/s: {ours.rate / bare.rate:.2f}")
    cpu_shares = ", ".join(f"{c:.1f}" for c in shares)
    print(f"ingestor CPU seconds per process over the run: {cpu_shares}")
    print(f"ingestor peak RSS: {', '.join(f'{r:.0f}' for r in rss)} MiB")
    if args.profile is not None:
        print(f"profiles (py-spy raw stacks): {args.profile}")


if __name__ == "__main__":
    main()
