"""Health under load: gRPC health-check latency while N clients send 1,000-pulse batches.

Each sender loops over one pre-serialized 1,000-pulse batch (loopback, embedded backend: the
ingestor's log is SQLite), backing off on RESOURCE_EXHAUSTED as `pulse send` does; a separate
channel checks health every 100 ms with a 5 s deadline. Reports health latency, refused
(shed) and accepted calls, and the ingestor's peak RSS.

Run: .venv/bin/python -m bench.health_under_load [--clients 50 200] [--seconds 20]
     [--server-path DIR]  (DIR: the checkout whose ingestor to run, e.g. an older one)
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.common import free_port, header, peak_rss_mb, percentile, serving, wait_for
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Tally:
    accepted_calls: int = 0
    shed: int = 0
    other_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def payload(client: int) -> bytes:
    at = datetime.now(UTC) - timedelta(minutes=10)
    return pulse_pb2.IngestRequest(
        pulses=[
            make_pulse(f"c{client}-{i}", f"tenant-{i % 50:03d}", "network.egress", "1.5", "MB", at)
            for i in range(1000)
        ]
    ).SerializeToString()


def sender(target: str, data: bytes, stop: threading.Event, tally: Tally, seed: int) -> None:
    client = IngestClient(target)
    rng = random.Random(seed)
    pause = 0.05
    try:
        while not stop.is_set():
            try:
                client.ingest_bytes(data, timeout=30)
                pause = 0.05
                with tally.lock:
                    tally.accepted_calls += 1
            except grpc.RpcError as exc:
                with tally.lock:
                    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        tally.shed += 1
                    else:
                        tally.other_errors += 1
                stop.wait(rng.uniform(0, pause))  # full-jitter exponential back-off
                pause = min(2.0, pause * 2)
    finally:
        client.close()


def health_probe(target: str, stop: threading.Event, latencies: list[float]) -> int:
    timeouts = 0
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while not stop.wait(0.1):
            started = time.perf_counter()
            try:
                stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                latencies.append((time.perf_counter() - started) * 1000)
            except grpc.RpcError:
                timeouts += 1
    return timeouts


def run(clients: int, seconds: float, server_path: Path) -> str:
    target = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PULSE_")},
            "PYTHONPATH": str(server_path),
            "PULSE_EMBEDDED__PATH": data_dir,
            "PULSE_INGEST__ADDRESS": target,
            # The benchmark measures health beside ingest, not key checks (as bench.common).
            "PULSE_AUTH__MODE": "off",
        }
        command = [sys.executable, "-c", "from pulse.cli import main; main()"]
        server = subprocess.Popen(
            [*command, "serve", "ingestor", "--embedded"],
            env=env,
            cwd=server_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: serving(target), 60, "the ingestor")
            data = [payload(i) for i in range(clients)]
            stop, tally = threading.Event(), Tally()
            latencies: list[float] = []
            threads = [
                threading.Thread(target=sender, args=(target, data[i], stop, tally, i))
                for i in range(clients)
            ]
            for thread in threads:
                thread.start()
            timeouts: list[int] = []
            probe = threading.Thread(
                target=lambda: timeouts.append(health_probe(target, stop, latencies))
            )
            probe.start()
            time.sleep(seconds)
            stop.set()
            probe.join()
            for thread in threads:
                thread.join(60)
            peak = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(30)
    answered = len(latencies)

    def p(q: float) -> str:
        return f"{percentile(latencies, q):.1f}" if latencies else "-"

    return (
        f"| {clients} | {answered} | {timeouts[0]} | {p(50)} | {p(99)} | "
        f"{max(latencies) if latencies else float('nan'):.1f} | {tally.accepted_calls} | "
        f"{tally.shed} | {tally.other_errors} | {peak:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--server-path", type=Path, default=ROOT)
    args = parser.parse_args()
    print(header(f"health under load, ingestor from {args.server_path}"))
    print(
        "| clients | health answered | health timed out (5 s) | p50 ms | p99 ms | max ms "
        "| ingest calls accepted | shed (RESOURCE_EXHAUSTED) | other errors | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for clients in args.clients:
        print(run(clients, args.seconds, args.server_path), flush=True)


if __name__ == "__main__":
    main()
