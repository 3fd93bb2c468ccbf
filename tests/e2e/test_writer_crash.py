"""A writer killed with SIGKILL mid-stream and restarted loses nothing and counts nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ledger import codec
from ledger.kafka import KafkaPulseLog
from ledger.model import Pulse
from ledger.ports import OutgoingRecord
from pulse.bootstrap import build
from pulse.settings import Settings, as_env
from tests.e2e.pipeline import server_settings

pytestmark = pytest.mark.servers

PULSE_CLI = str(Path(sys.executable).parent / "pulse")


def writer_process(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **as_env(settings)}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [PULSE_CLI, "serve", "writer"], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def committed_total(log: KafkaPulseLog, group: str) -> int:
    return sum(log.committed(group).values())


def test_sigkilled_writer_restarts_without_loss_or_double_count(
    kafka_bootstrap: str,
    cql_endpoint: tuple[str, int],
    migrated_keyspace: str,
    tmp_path: Path,
) -> None:
    # given: 40,000 records in Kafka (10% of them client retries of earlier pulses)
    settings = server_settings(kafka_bootstrap, cql_endpoint, migrated_keyspace)
    run = uuid.uuid4().hex[:6]
    tenants = [f"crash-{run}-{i}" for i in range(8)]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    pulses = [
        Pulse(
            f"p{i}",
            tenants[i % 8],
            "network.egress",
            Decimal(i % 97),
            "MB",
            hour + timedelta(seconds=i % 3600),
        )
        for i in range(36_000)
    ]
    records = [OutgoingRecord(p.tenant_id.encode(), codec.encode(p)) for p in pulses]
    records += records[:4000]
    log = KafkaPulseLog(settings.kafka.config())
    for i in range(0, len(records), 5000):
        log.publish(records[i : i + 5000], datetime.now(UTC))
    total = sum(log.end_offsets().values())
    assert total == 40_000

    # when: the writer is killed (SIGKILL) after its first commit, while batches are in flight
    first = writer_process(settings, tmp_path / "writer.log")
    deadline = time.monotonic() + 120
    while committed_total(log, settings.kafka.writer_group) == 0:
        assert first.poll() is None, (tmp_path / "writer.log").read_text()
        assert time.monotonic() < deadline, "writer never committed"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = committed_total(log, settings.kafka.writer_group)
    # ... and started again
    second = writer_process(settings, tmp_path / "writer.log")
    try:
        while committed_total(log, settings.kafka.writer_group) < total:
            assert second.poll() is None, (tmp_path / "writer.log").read_text()
            assert time.monotonic() < deadline + 120, "restarted writer did not catch up"
            time.sleep(0.2)
    finally:  # a failed wait must not leave the writer running after the test
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
        log.close()

    # then: each of the 36,000 unique pulses is in the ledger exactly once, none is lost
    assert 0 < at_kill < total, "the kill must land mid-stream"
    parts = build(settings)
    try:
        stored = [
            e
            for t in tenants
            for h in parts.ledger.hours(t)
            for e in parts.ledger.events_in_hour(t, h)
        ]
    finally:
        parts.close()
    assert len(stored) == 36_000
    assert {(e.pulse.tenant_id, e.pulse.pulse_id) for e in stored} == {
        (p.tenant_id, p.pulse_id) for p in pulses
    }
    assert sum(e.pulse.used_amount for e in stored) == sum(p.used_amount for p in pulses)
