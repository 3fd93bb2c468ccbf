"""`pulse send`: load generator for any ingestor (rate, tenants, SKUs, duplicates, batches)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import grpc
from rich.console import Console
from rich.progress import Progress

from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse

_SKUS = [
    ("compute.vcpu", "vCPU-hour"),
    ("compute.memory", "GiB-hour"),
    ("storage.block", "GB-hour"),
    ("storage.object", "GB-hour"),
    ("network.egress", "MB"),
    ("api.requests", "request"),
]


@dataclass(frozen=True)
class LoadSpec:
    total: int
    rate: float
    tenants: int
    skus: int
    duplicate_ratio: float
    batch_size: int
    seed: int


@dataclass
class LoadReport:
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    shed: int = 0  # calls the ingestor refused as overloaded, retried after a pause
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        return (
            f"sent {self.sent} pulses in {self.seconds:.2f} s ({rate:,.0f}/s): "
            f"{dict(self.statuses)}; shed and retried: {self.shed}; failed RPCs: {self.errors}"
        )


# Answers that mean "nothing of this batch was stored, try again later": the whole batch is
# re-sent (safe: pulse ids make it idempotent) after an exponential, jittered pause.
RETRYABLE = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}
MAX_ATTEMPTS = 10


def ingest_with_backoff(
    client: IngestClient,
    batch: Sequence[pulse_pb2.Pulse],
    report: LoadReport,
    rng: random.Random,
    *,
    first_pause: float = 0.05,
    max_pause: float = 2.0,
) -> list[pulse_pb2.PulseResult]:
    """The batch's results; RESOURCE_EXHAUSTED and UNAVAILABLE are retried with back-off
    (full jitter, so refused senders do not come back in lock step)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return client.ingest(batch)
        except grpc.RpcError as exc:
            if exc.code() not in RETRYABLE or attempt == MAX_ATTEMPTS - 1:
                raise
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                report.shed += 1
            time.sleep(rng.uniform(0, min(max_pause, first_pause * 2**attempt)))
    raise AssertionError("unreachable")


def generate(spec: LoadSpec, run_id: str) -> list[pulse_pb2.Pulse]:
    """`spec.total` pulses of the last hour; a `duplicate_ratio` share re-sends earlier ids."""
    rng = random.Random(spec.seed)
    now = datetime.now(UTC)
    pulses: list[pulse_pb2.Pulse] = []
    for i in range(spec.total):
        if pulses and rng.random() < spec.duplicate_ratio:
            pulses.append(rng.choice(pulses))
            continue
        sku, unit = _SKUS[rng.randrange(spec.skus)]
        pulses.append(
            make_pulse(
                f"{run_id}-{i}",
                f"tenant-{rng.randrange(spec.tenants):04d}",
                sku,
                Decimal(rng.randrange(1, 100_000)) / 1000,
                unit,
                now - timedelta(seconds=rng.randrange(3600)),
                source="pulse-send",
            )
        )
    return pulses


# The key is missing, wrong or not allowed: every further batch would fail the same way.
_FINAL = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def run_load(
    target: str,
    spec: LoadSpec,
    console: Console,
    key: str | None = None,
    *,
    ca_file: Path | None = None,
) -> LoadReport:
    run_id = f"send-{int(time.time())}-{spec.seed}"
    pulses = generate(spec, run_id)
    client = IngestClient(target, key=key, ca_file=ca_file)
    jitter = random.Random(spec.seed)
    report = LoadReport()
    started = time.perf_counter()
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("sending", total=len(pulses))
            for i in range(0, len(pulses), spec.batch_size):
                batch = pulses[i : i + spec.batch_size]
                if spec.rate > 0:  # pace batches so the average rate matches
                    due = started + (i / spec.rate)
                    time.sleep(max(0.0, due - time.perf_counter()))
                try:
                    results = ingest_with_backoff(client, batch, report, jitter)
                except grpc.RpcError as exc:
                    report.errors += 1
                    console.print(
                        f"batch {i // spec.batch_size}: {exc.code().name} {exc.details()}"
                    )
                    if exc.code() in _FINAL:
                        console.print("stopping: give a producer key with --key or PULSE_KEY")
                        break
                    continue
                for r in results:
                    report.statuses[pulse_pb2.PulseResult.Status.Name(r.status)] += 1
                report.sent += len(batch)
                progress.update(task, advance=len(batch))
    finally:
        client.close()
    report.seconds = time.perf_counter() - started
    return report
