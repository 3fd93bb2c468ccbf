"""Transient backend errors are retried by the writer, never dead-lettered, never committed past."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from kernel.errors import Unavailable
from ledger import codec
from ledger.model import LedgerEvent, Pulse
from ledger.ports import OutgoingRecord
from ledger.sqlite import SQLitePulseLog
from ledger.sqlite_store import SQLiteLedgerStore
from ledger.writer import LedgerWriter

AT = datetime(2026, 10, 1, 12, tzinfo=UTC)


class FlakyStore(SQLiteLedgerStore):
    """A real SQLite ledger whose append fails `failures` times first, like a node timing out."""

    def __init__(self, path: Path, failures: int, stop: threading.Event | None = None) -> None:
        super().__init__(path)
        self.failures = failures
        self.attempts = 0
        self._stop = stop

    def append(self, events: Sequence[LedgerEvent]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            if self._stop is not None:
                self._stop.set()  # the operator stops the writer during the outage
            raise Unavailable("write timeout (simulated)")
        super().append(events)


def publish(log: SQLitePulseLog, count: int) -> None:
    pulses = [
        Pulse(f"p{i}", "acme", "network.egress", Decimal(i), "GB", AT + timedelta(seconds=i))
        for i in range(count)
    ]
    log.publish([OutgoingRecord(b"acme", codec.encode(p)) for p in pulses], AT)


def test_a_transient_failure_is_retried_until_the_batch_is_stored(tmp_path: Path) -> None:
    # given: the ledger times out twice
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=1)
    store = FlakyStore(tmp_path / "ledger.sqlite", failures=2)
    publish(log, 20)
    writer = LedgerWriter(log, store, log.consumer("w"))
    # when
    report = writer.run_once()
    # then: written once after the retries, nothing dead-lettered, offsets committed
    assert store.attempts == 3
    assert report.written == 20
    assert len(store.events_in_hour("acme", AT)) == 20
    assert log.dead_letters(10) == []
    assert log.committed("w") == {0: 20}


def test_stopping_during_an_outage_commits_nothing(tmp_path: Path) -> None:
    # given: the ledger is down and the writer is asked to stop meanwhile
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=1)
    stop = threading.Event()
    store = FlakyStore(tmp_path / "ledger.sqlite", failures=1, stop=stop)
    publish(log, 5)
    writer = LedgerWriter(log, store, log.consumer("w"), stop=stop)
    # when
    report = writer.run_once()
    # then: nothing stored, nothing committed: the next writer reads the batch again
    assert report.written == 0
    assert store.events_in_hour("acme", AT) == []
    assert log.committed("w") == {}
    assert log.dead_letters(10) == []
    restarted = LedgerWriter(log, SQLiteLedgerStore(tmp_path / "ledger.sqlite"), log.consumer("w"))
    assert restarted.run_once().written == 5
