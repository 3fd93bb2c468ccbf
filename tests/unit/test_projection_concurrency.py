"""project_hours re-derives the tenant-hours of one call at once, and ends them all before it
returns or raises."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kernel.errors import Unavailable
from ledger.model import LedgerEvent
from ledger.sqlite_store import SQLiteLedgerStore
from projections.runner import CONCURRENCY, project_hours
from projections.sqlite import SQLiteUsageStore
from tests.unit.helpers import T0, catalog, event, pulse

HOUR = timedelta(hours=1)


class Gate:
    """A ledger whose hour reads run `on_read` first (in the reading thread)."""

    def __init__(self, inner: SQLiteLedgerStore, on_read: Any) -> None:
        self._inner = inner
        self._on_read = on_read

    def events_in_hour(self, tenant_id: str, hour: datetime) -> list[LedgerEvent]:
        self._on_read(tenant_id, hour)
        return self._inner.events_in_hour(tenant_id, hour)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[SQLiteLedgerStore, SQLiteUsageStore]:
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    ledger.append(
        [event(pulse(f"p-{t}-{h}", tenant=t, at=T0 + h * HOUR)) for t in "abc" for h in range(3)]
    )
    return ledger, SQLiteUsageStore(tmp_path / "usage.sqlite")


def test_the_hours_of_one_call_are_read_at_the_same_time(
    stores: tuple[SQLiteLedgerStore, SQLiteUsageStore],
) -> None:
    # given: a ledger where every hour read waits until six are being read at once
    ledger, usage = stores
    assert CONCURRENCY >= 6
    all_reading = threading.Barrier(6, timeout=10)
    gate = Gate(ledger, lambda *_: all_reading.wait())
    hours = [(t, T0 + h * HOUR) for t in "ab" for h in range(3)]
    # when
    derived = project_hours(hours, gate, usage, catalog())
    # then: none waited in vain (one by one, the first read would have timed out), and the
    # six hours and two days are stored
    assert sorted(derived) == hours
    assert [len(usage.usage(t, T0, T0 + 3 * HOUR)) for t in "ab"] == [3, 3]
    assert [len(usage.daily_usage(t, T0.date(), T0.date() + HOUR * 24)) for t in "ab"] == [1, 1]


def test_a_failing_hour_is_raised_after_every_other_hour_has_ended(
    stores: tuple[SQLiteLedgerStore, SQLiteUsageStore],
) -> None:
    # given: one hour's read fails once the others are under way, one of them slowly
    ledger, usage = stores
    started: list[str] = []
    ended: list[str] = []
    others_reading = threading.Barrier(3, timeout=10)

    def on_read(tenant: str, hour: datetime) -> None:
        started.append(tenant)
        others_reading.wait()
        if tenant == "a":
            raise ConnectionError("the node went away")
        if tenant == "c":
            time.sleep(0.5)
        ended.append(tenant)

    # when / then: the error reaches the caller (whose retry re-derives them all) only after
    # the hours under way are done: nothing keeps writing behind the retry
    with pytest.raises(ConnectionError):
        project_hours([(t, T0) for t in "abc"], Gate(ledger, on_read), usage, catalog())
    assert sorted(started) == ["a", "b", "c"]
    assert sorted(ended) == ["b", "c"]


class DownLedger:
    """A ledger whose every hour read fails after a while, as a request to a node that is
    down times out; counts the reads."""

    def __init__(self) -> None:
        self.reads = 0
        self._lock = threading.Lock()

    def events_in_hour(self, tenant_id: str, hour: datetime) -> list[LedgerEvent]:
        with self._lock:
            self.reads += 1
        time.sleep(0.05)  # the request timeout, scaled down
        raise Unavailable("reading a ledger hour: NoHostAvailable")


def test_an_outage_fails_the_window_without_trying_every_queued_hour(tmp_path: Path) -> None:
    # (found by review) given: a window of 4 x CONCURRENCY tenant-hours, a backend that is down
    ledger = DownLedger()
    usage = SQLiteUsageStore(tmp_path / "usage.sqlite")
    hours = [(f"t{i:02d}", T0 + timedelta(hours=i % 3)) for i in range(4 * CONCURRENCY)]
    # when
    with pytest.raises(Unavailable):
        project_hours(hours, ledger, usage, catalog())  # type: ignore[arg-type]
    # then: the hours in flight when the first failure came (and perhaps the next ones that
    # started before it was seen) were tried, not the whole window: each queued one would be
    # one more request timeout before the projector's retry can back off or see its stop
    assert ledger.reads <= 2 * CONCURRENCY, f"{ledger.reads} reads sent to a backend that is down"
