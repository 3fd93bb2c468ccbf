"""A SIGKILLed writer's successor takes its partitions back at once (static membership), not
after the dead member's session times out (45 s by default)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ledger import codec
from ledger.kafka import KafkaPulseLog
from ledger.model import Pulse
from ledger.ports import OutgoingRecord
from pulse.settings import Settings, as_env
from tests.e2e.pipeline import server_settings

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]
RECOVERY_BOUND = 10.0  # seconds, DESIGN issue 8 / docs/operations.md


def writer(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """`pulse serve writer` on this checkout's code, with the default membership settings."""
    env = {**os.environ, **as_env(settings), "PYTHONPATH": str(ROOT)}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", "from pulse.cli import app; app()", "serve", "writer"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def publish(log: KafkaPulseLog, count: int, run: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pulses = [
        Pulse(f"{run}-{i}", f"rec-{run}-{i % 12}", "network.egress", Decimal(1), "MB", now)
        for i in range(count)
    ]
    log.publish([OutgoingRecord(p.tenant_id.encode(), codec.encode(p)) for p in pulses], now)


def caught_up(log: KafkaPulseLog, group: str) -> bool:
    committed = log.committed(group)
    return all(committed.get(p, 0) >= end for p, end in log.end_offsets().items())


def test_a_restarted_writer_takes_its_partitions_back_within_ten_seconds(
    kafka_bootstrap: str,
    cql_endpoint: tuple[str, int],
    migrated_keyspace: str,
    tmp_path: Path,
) -> None:
    # given: a writer that has caught up with the log
    settings = server_settings(kafka_bootstrap, cql_endpoint, migrated_keyspace)
    group, run = settings.kafka.writer_group, uuid.uuid4().hex[:8]
    log = KafkaPulseLog(settings.kafka.config())
    publish(log, 300, f"before-{run}")
    first = writer(settings, tmp_path / "writer.log")
    deadline = time.monotonic() + 120
    try:
        while not caught_up(log, group):
            assert first.poll() is None, (tmp_path / "writer.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the first writer never caught up"
            time.sleep(0.1)
        # when: it is SIGKILLed (no goodbye to the group), more pulses arrive, it is restarted
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed = time.monotonic()
        publish(log, 120, f"after-{run}")
        second = writer(settings, tmp_path / "writer.log")
        try:
            while not caught_up(log, group) and time.monotonic() - killed < 60:
                assert second.poll() is None, (tmp_path / "writer.log").read_text()[-3000:]
                time.sleep(0.05)
            recovered = time.monotonic() - killed
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    # then
    assert recovered < RECOVERY_BOUND, f"the log stayed unprocessed for {recovered:.1f} s"
