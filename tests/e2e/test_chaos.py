"""The proof of issue 10: while pulses stream in (20 % client retries, a few reused ids with
another payload), the writer is SIGKILLed three times, the projector once, the Kafka broker and
Cassandra are stopped and restarted, and the ingestor is killed mid-stream while the sender
retries. Afterwards:

- `reconcile` is clean;
- every pulse the sender saw ACCEPTED is in the ledger exactly once, with its first payload;
- hourly usage and the finalized invoice equal the test's own computation from its log;
- replaying the whole topic twice more changes nothing, and the invoice still verifies.

Roles run as `pulse serve ROLE` processes; the servers are the session's `pulse dev` ones,
stopped and restarted through their pid files (with servers given by PULSE_TEST_* variables
the test cannot restart them, and says so by skipping only those two steps).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import grpc
import pytest

from catalog.files import read_catalog
from devtools import servers as devservers
from devtools.config import DevSettings
from devtools.layout import DevPaths
from devtools.process import is_alive
from ledger.writer import LedgerAppender
from projections.invoices import Invoicing, writer_commits
from projections.reconcile import Reconciliation
from projections.replay import Replay
from proto.pulse.v1 import pulse_pb2
from pulse.bootstrap import SAMPLE_CATALOG, build
from pulse.demo.client import IngestClient, make_pulse
from pulse.runtime import caught_up
from pulse.settings import IngestSettings, Settings, as_env
from tests.e2e.pipeline import server_settings
from tests.servers import REPO_ROOT

pytestmark = [pytest.mark.servers, pytest.mark.slow]

PULSE_CLI = str(Path(sys.executable).parent / "pulse")
MONTH = datetime(2026, 11, 1, tzinfo=UTC)  # an ended month, so it can be finalized
PRICE = Decimal("0.0061")  # compute.memory, per GiB-hour, in the sample catalog all month
PULSES = 3000
BATCH = 50


class Roles:
    """`pulse serve ROLE` processes with the test's settings; kill and restart them by PID."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.env = {**os.environ, **as_env(settings), "PULSE_AUTH__MODE": "off"}
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, role: str) -> None:
        with (self.logs / f"{role}.log").open("ab") as out:
            self.procs[role] = subprocess.Popen(
                [PULSE_CLI, "serve", role], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self, role: str) -> None:
        proc = self.procs[role]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-15:])
            for f in sorted(self.logs.glob("*.log"))
        )


class Sender:
    """Sends pulses in batches, retrying a whole batch until each pulse has an answer; keeps its
    own log of what was ACCEPTED (first payload per id) and what was REJECTED."""

    def __init__(self, target: str, run: str) -> None:
        self.target = target
        self.run = run
        self.accepted: dict[tuple[str, str], pulse_pb2.Pulse] = {}
        self.rejected: set[tuple[str, str]] = set()
        self.sent = 0
        self.retries = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def pulses(self) -> list[list[pulse_pb2.Pulse]]:
        rng = random.Random(7)
        tenants = [f"chaos-{self.run}-{i}" for i in range(6)]
        batches: list[list[pulse_pb2.Pulse]] = []
        made: list[pulse_pb2.Pulse] = []
        for i in range(PULSES):
            tenant = tenants[i % len(tenants)]
            at = MONTH + timedelta(days=i % 20, hours=i % 24, seconds=i)
            made.append(
                make_pulse(
                    f"m{i}", tenant, "compute.memory", str(rng.randint(1, 64)), "GiB-hour", at
                )
            )
        for start in range(0, len(made), BATCH):
            batch = made[start : start + BATCH]
            # 20 % client retries of pulses already sent
            batch += [rng.choice(made[: start + 1]) for _ in range(BATCH // 5)]
            batches.append(batch)
        # reused ids with another payload, sent after their originals were accepted
        for j in range(0, 30, 3):
            original = made[j]
            batches.append(
                [
                    make_pulse(
                        original.pulse_id,
                        original.tenant_id,
                        "compute.memory",
                        "999",
                        "GiB-hour",
                        MONTH,
                    )
                ]
            )
        batches.append(  # and pulses the ingestor must reject (they never reach the ledger)
            [make_pulse("bad-1", tenants[0], "compute.memory", "-1", "GiB-hour", MONTH)]
        )
        return batches

    def run_all(self) -> None:
        try:
            self.client = IngestClient(self.target)
            for batch in self.pulses():
                self._send(batch)
            self.client.close()
        except BaseException as exc:  # reported by the test thread
            self.error = exc
        finally:
            self.done.set()

    def _send(self, batch: list[pulse_pb2.Pulse]) -> None:
        deadline = time.monotonic() + 240
        while True:
            try:
                results = self.client.ingest(batch, timeout=20)
                break
            except grpc.RpcError as exc:
                # UNAVAILABLE (Kafka down, ingestor restarting), DEADLINE_EXCEEDED: retry the
                # whole batch, which is always safe.
                if time.monotonic() > deadline:
                    raise AssertionError(f"batch never accepted: {exc}") from exc
                self.retries += 1
                time.sleep(0.5)
                self.client.close()
                self.client = IngestClient(self.target)  # a fresh channel
        for pulse, result in zip(batch, results, strict=True):
            key = (pulse.tenant_id, pulse.pulse_id)
            if result.status == pulse_pb2.PulseResult.ACCEPTED:
                self.accepted.setdefault(key, pulse)
            else:
                self.rejected.add(key)
        self.sent += len(batch)


def _restart_server(name: str, dev: DevSettings) -> None:
    """SIGTERM one `pulse dev` server by its pid file, wait until it is gone, start it again."""
    pid = int((DevPaths.of(dev).pid(name)).read_text().split()[0])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while is_alive(pid):
        assert time.monotonic() < deadline, f"{name} did not stop"
        time.sleep(0.5)
    time.sleep(3)  # the pipeline keeps going without it for a moment
    devservers.up(dev, echo=lambda _m: None)


def _wait(predicate: Callable[[], bool], timeout: float, what: str, roles: Roles) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s\n{roles.log_tail()}")
        time.sleep(0.5)


def test_nothing_is_lost_or_counted_twice_through_kills_and_restarts(
    kafka_bootstrap: str, cql_endpoint: tuple[str, int], migrated_keyspace: str, tmp_path: Path
) -> None:
    # given: the three roles as processes, and the catalog applied in this keyspace
    settings = server_settings(kafka_bootstrap, cql_endpoint, migrated_keyspace)
    port = _free_port()
    settings = settings.model_copy(
        update={"ingest": IngestSettings(address=f"127.0.0.1:{port}", delivery_timeout_seconds=5)}
    )
    parts = build(settings)
    parts.billing.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    roles = Roles(settings, tmp_path)
    for role in ("ingestor", "writer", "projector"):
        roles.start(role)
    dev = DevSettings(home=REPO_ROOT / ".pulse-dev")
    controllable = (
        not os.environ.get("PULSE_TEST_KAFKA_BOOTSTRAP") and DevPaths.of(dev).pid("kafka").exists()
    )
    sender = Sender(f"127.0.0.1:{port}", uuid.uuid4().hex[:6])
    thread = threading.Thread(target=sender.run_all, daemon=True)
    try:
        _wait(lambda: _serving(port), 60, "ingestor not serving", roles)
        thread.start()

        # when: the chaos, spread over the stream
        def at(fraction: float) -> None:
            _wait(
                lambda: sender.sent >= fraction * PULSES or sender.done.is_set(),
                300,
                "sender stalled",
                roles,
            )

        for fraction in (0.1, 0.2, 0.3):
            at(fraction)
            roles.kill("writer")
            roles.start("writer")
        at(0.4)
        roles.kill("projector")
        roles.start("projector")
        at(0.5)
        roles.kill("ingestor")
        roles.start("ingestor")
        if controllable:
            at(0.6)
            _restart_server("kafka", dev)
            at(0.75)
            _restart_server("cassandra", dev)
        thread.join(timeout=600)
        assert sender.done.is_set() and sender.error is None, sender.error
        _wait(lambda: caught_up(settings, parts), 300, "writer/projector did not catch up", roles)
    finally:
        roles.stop_all()

    # then: every accepted pulse is in the ledger exactly once, with its first payload
    tenants = sorted({t for t, _ in sender.accepted})
    in_ledger: dict[tuple[str, str], Decimal] = {}
    for tenant in tenants:
        for hour in parts.ledger.hours(tenant):
            for e in parts.ledger.events_in_hour(tenant, hour):
                key = (tenant, e.pulse.pulse_id)
                assert key not in in_ledger, f"{key} twice in the ledger"
                in_ledger[key] = e.pulse.used_amount
    assert in_ledger == {k: Decimal(p.used_amount) for k, p in sender.accepted.items()}
    assert not sender.rejected & set(in_ledger)

    # hourly usage equals the sender's own sums
    expected: dict[tuple[str, datetime], Decimal] = defaultdict(Decimal)
    for (tenant, _id), p in sender.accepted.items():
        hour = datetime.fromtimestamp(p.occurred_at.seconds, UTC).replace(minute=0, second=0)
        expected[(tenant, hour)] += Decimal(p.used_amount)
    end = MONTH + timedelta(days=30)
    stored = {(t, r.hour): r.quantity for t in tenants for r in parts.usage.usage(t, MONTH, end)}
    assert stored == dict(expected)

    # reconcile is clean; the invoice is the sender's sum x price, rounded once
    invoicing = Invoicing(
        parts.billing,
        parts.ledger,
        parts.usage,
        writer_commits(parts.log, settings.kafka.writer_group),
    )
    check = Reconciliation(
        parts.history, parts.log, parts.ledger, parts.usage, invoicing, parts.catalog.billing_unit
    )
    for tenant in tenants:
        report = check.run("2026-11", tenant)
        assert report.clean, report.mismatches
    hashes = {}
    for tenant in tenants:
        draft, digest = invoicing.finalize(tenant, "2026-11")
        gib_hours = sum(
            Decimal(p.used_amount) for (t, _), p in sender.accepted.items() if t == tenant
        )
        assert draft.total == (gib_hours * PRICE).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        hashes[tenant] = digest

    # replaying the whole topic twice more changes nothing
    bounds = parts.history.bounds()
    start = {p: low for p, (low, _high) in bounds.items()}
    ends = {p: high for p, (_low, high) in bounds.items()}
    replay = Replay(
        parts.history,
        LedgerAppender(parts.log, parts.ledger),
        parts.ledger,
        parts.usage,
        invoicing,
        parts.catalog,
    )
    for _ in range(2):
        again = replay.run(start, ends)
        assert (again.added, again.buckets, again.drafts, again.notes) == (0, [], [], [])
    for tenant in tenants:
        verification = invoicing.verify(tenant, "2026-11")
        assert verification.ok and verification.recorded == hashes[tenant]
    parts.close()


def _serving(port: int) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
