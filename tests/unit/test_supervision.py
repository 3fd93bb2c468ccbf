"""No silent death (invariant 11): a role whose loop fails is retried, restarted or ends the
process, and health reports each role meanwhile. Embedded backend, faults injected by wrappers
around the real SQLite log."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kernel.errors import Unavailable
from ledger import codec
from ledger.model import Pulse
from ledger.ports import DeadLetter, LogConsumer, OutgoingRecord, PulseLog
from ledger.sqlite import SQLitePulseLog
from pulse import healthcheck
from pulse.bootstrap import Parts, build
from pulse.runtime import Running, start
from pulse.settings import Backend, EmbeddedSettings, Settings
from query.app import create_app
from tests.unit.helpers import T0, pulse

DEADLINE = 15.0


class FaultyLog:
    """The real embedded log whose `committed()` runs `fault` first (which may raise)."""

    def __init__(self, inner: PulseLog, fault: Callable[[], None]) -> None:
        self.inner = inner
        self.fault = fault

    def committed(self, group: str) -> dict[int, int]:
        self.fault()
        return self.inner.committed(group)

    def publish(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        self.inner.publish(records, arrival)

    async def publish_async(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        await self.inner.publish_async(records, arrival)

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        self.inner.dead_letter(letters)

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        return self.inner.dead_letters(limit)

    def consumer(self, group: str) -> LogConsumer:
        return self.inner.consumer(group)

    def end_offsets(self) -> dict[int, int]:
        return self.inner.end_offsets()

    def close(self) -> None:
        self.inner.close()


def fail_times(count: int, error: Callable[[], Exception]) -> Callable[[], None]:
    left = [count]

    def fault() -> None:
        if left[0] > 0:
            left[0] -= 1
            raise error()

    return fault


def embedded(tmp_path: Path, **supervision: object) -> Settings:
    return Settings(
        backend=Backend.EMBEDDED,
        embedded=EmbeddedSettings(path=tmp_path / "data", partitions=2),
        **({"supervision": supervision} if supervision else {}),  # type: ignore[arg-type]
    )


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    built = build(embedded(tmp_path))
    yield built
    built.close()


def publish_pulses(parts: Parts, count: int) -> list[Pulse]:
    pulses = [pulse(f"p{i}", amount="1", at=T0 + timedelta(minutes=i % 60)) for i in range(count)]
    parts.log.publish([OutgoingRecord(b"acme", codec.encode(p)) for p in pulses], T0)
    return pulses


def usage_pulses(parts: Parts) -> int:
    return sum(r.pulse_count for r in parts.usage.usage("acme", T0, T0 + timedelta(hours=1)))


def eventually(predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def run_roles(settings: Settings, parts: Parts, roles: set[str]) -> Running:
    return start(settings, parts, roles)


def test_one_unavailable_from_committed_does_not_stop_usage_for_ever(
    tmp_path: Path, parts: Parts
) -> None:
    # given: the log answers `committed()` with one transient error (a broker timing out)
    parts.log = FaultyLog(parts.log, fail_times(1, lambda: Unavailable("coordinator timeout")))
    publish_pulses(parts, 30)
    # when
    running = run_roles(embedded(tmp_path), parts, {"writer", "projector"})
    try:
        # then: the projector retries and usage catches up with the ledger
        assert eventually(lambda: usage_pulses(parts) == 30), f"usage: {usage_pulses(parts)}"
    finally:
        running.stop()


def gate_after(calls: int, gate: threading.Event) -> Callable[[], None]:
    """Lets `calls` calls through, then holds each one until `gate` is set (a hung backend)."""
    seen = [0]

    def fault() -> None:
        seen[0] += 1
        if seen[0] > calls:
            gate.wait(DEADLINE)

    return fault


def role(running: Running, name: str) -> dict[str, object]:
    roles: dict[str, dict[str, object]] = running.health.report()["roles"]
    return roles[name]


def test_an_unexpected_error_restarts_the_role_and_health_says_so_meanwhile(
    tmp_path: Path, parts: Parts
) -> None:
    # given: committed() raises a bug once, then hangs until the test releases it
    gate = threading.Event()
    bug, hang = fail_times(1, lambda: RuntimeError("bug in a hook")), gate_after(0, gate)

    def fault() -> None:
        bug()
        hang()

    parts.log = FaultyLog(parts.log, fault)
    publish_pulses(parts, 30)
    settings = embedded(tmp_path, backoff_seconds=0.1)
    # when
    running = run_roles(settings, parts, {"writer", "projector"})
    try:
        # then: between the failure and the restarted role's first cycle, health says so
        assert eventually(lambda: role(running, "projector")["restarts"] == 1)
        projector = role(running, "projector")
        assert projector["state"] in {"restarting", "starting"}
        assert projector["ready"] is False
        assert "RuntimeError: bug in a hook" in str(projector["last_error"])
        assert running.health.report()["ready"] is False
        assert running.health.report()["live"] is True
        # ... and once the restarted role runs, it is ready and usage catches up
        gate.set()
        assert eventually(lambda: usage_pulses(parts) == 30)
        assert eventually(running.health.ready)
        assert not running.health.failed.is_set()
    finally:
        gate.set()
        running.stop()


def test_a_role_that_keeps_failing_is_dead_and_the_process_is_told_to_end(
    tmp_path: Path, parts: Parts
) -> None:
    # given: every committed() fails with an unexpected error
    parts.log = FaultyLog(parts.log, fail_times(10**9, lambda: RuntimeError("poisoned")))
    settings = embedded(tmp_path, max_restarts=2, backoff_seconds=0.05)
    # when
    running = run_roles(settings, parts, {"ingestor", "writer", "projector"})
    api = TestClient(create_app(parts.ledger, parts.usage, auth=None, health=running.health.report))
    try:
        failed = running.wait(threading.Event())
        # then: the main thread learns which role failed, health reports it dead
        assert failed is not None and "projector: RuntimeError: poisoned" in failed
        assert role(running, "projector")["state"] == "dead"
        assert role(running, "projector")["restarts"] == 2
        assert role(running, "writer")["state"] == "ready"
        live, ready = api.get("/health/live"), api.get("/health/ready")
        assert (live.status_code, ready.status_code) == (503, 503)
        assert ready.json()["roles"]["projector"]["state"] == "dead"
        assert eventually(lambda: grpc_status(running.grpc_port) == "NOT_SERVING")
    finally:
        running.stop()


def test_a_role_stuck_in_one_cycle_is_not_ready(tmp_path: Path, parts: Parts) -> None:
    # given: the backend hangs after a few answers, longer than the stuck threshold
    gate = threading.Event()
    parts.log = FaultyLog(parts.log, gate_after(3, gate))
    settings = embedded(tmp_path, stuck_seconds=0.3)
    running = run_roles(settings, parts, {"ingestor", "writer", "projector"})
    api = TestClient(create_app(parts.ledger, parts.usage, auth=None, health=running.health.report))
    try:
        # when / then: ready while cycling, then stuck: 503 and NOT_SERVING, yet alive
        assert eventually(lambda: role(running, "projector")["stuck"] is True)
        ready = api.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["roles"]["projector"]["seconds_since_heartbeat"] > 0.3
        assert ready.json()["roles"]["writer"]["ready"] is True
        assert api.get("/health/live").status_code == 200
        assert eventually(lambda: grpc_status(running.grpc_port) == "NOT_SERVING")
        # ... and ready again when the backend answers
        gate.set()
        assert eventually(lambda: api.get("/health/ready").status_code == 200)
        assert eventually(lambda: grpc_status(running.grpc_port) == "SERVING")
    finally:
        gate.set()
        running.stop()


def grpc_status(port: int) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="pulse.v1.IngestService"), timeout=5
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


ROOT = Path(__file__).resolve().parents[2]


def test_pulse_serve_exits_non_zero_when_the_writer_keeps_failing(tmp_path: Path) -> None:
    # given: an embedded log with one corrupted row (a timestamp that is not a number) that
    # breaks every read of its partition: a real, permanent fault, not a transient one
    data = tmp_path / "data"
    log = SQLitePulseLog(data / "log.sqlite", partitions=1)
    log.close()
    with sqlite3.connect(data / "log.sqlite") as conn:
        conn.execute("INSERT INTO records VALUES (0, 0, 'not-a-number', x'61', x'62')")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PULSE_EMBEDDED__PATH": str(data),
        "PULSE_EMBEDDED__PARTITIONS": "1",
        "PULSE_SUPERVISION__MAX_RESTARTS": "2",
        "PULSE_SUPERVISION__BACKOFF_SECONDS": "0.1",
    }
    # when
    process = subprocess.run(
        [sys.executable, "-c", "from pulse.cli import app; app()", "serve", "writer", "--embedded"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then: restarted twice, saying so, then the process ends with exit 1 and the reason
    assert process.returncode == 1, process.stderr[-3000:]
    assert process.stderr.count("restarting writer after ValueError") == 2, process.stderr[-3000:]
    assert "a role failed permanently" in process.stdout + process.stderr


def test_the_health_file_follows_readiness(tmp_path: Path, parts: Parts) -> None:
    # given: a role process that writes its report to a file, as in docker-compose.yml, and
    # a backend that hangs after ~2 s of answers (the file is rewritten every 0.5 s)
    gate = threading.Event()
    parts.log = FaultyLog(parts.log, gate_after(40, gate))
    report = tmp_path / "health.json"
    settings = embedded(tmp_path, stuck_seconds=0.3, health_file=report)
    running = run_roles(settings, parts, {"writer", "projector"})
    try:
        # when / then: the container check passes while ready, fails while stuck
        assert eventually(lambda: healthcheck.main(["file", str(report)]) == 0)
        assert eventually(lambda: healthcheck.main(["file", str(report)]) == 1)
        assert "projector" in healthcheck.check_file(report, 10)[1]
        gate.set()
        assert eventually(lambda: healthcheck.main(["file", str(report)]) == 0)
    finally:
        gate.set()
        running.stop()
    # ... and a report nobody rewrites any more goes stale
    assert healthcheck.check_file(report, 0.0)[0] is False
