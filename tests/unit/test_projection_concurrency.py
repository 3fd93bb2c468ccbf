"""project_hours re-derives the tenant-hours of one call at once, and ends them all before it
returns or raises."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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
    # given: one hour's read fails at once, another one is slow
    ledger, usage = stores
    ended: list[str] = []

    def on_read(tenant: str, hour: datetime) -> None:
        if tenant == "a":
            raise ConnectionError("the node went away")
        if tenant == "c":
            time.sleep(0.5)
        ended.append(tenant)

    # when / then: the error reaches the caller (whose retry re-derives them all) only after
    # the slow hours are done: nothing keeps writing behind the retry
    with pytest.raises(ConnectionError):
        project_hours([(t, T0) for t in "abc"], Gate(ledger, on_read), usage, catalog())
    assert sorted(ended) == ["b", "c"]
