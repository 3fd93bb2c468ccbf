"""Only ended months are finalized; the projector's correction hook skips the running month."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalog.billing import BillingApp
from kernel.errors import Invalid
from ledger.sqlite_store import SQLiteLedgerStore
from projections.invoices import Invoicing
from projections.sqlite import SQLiteUsageStore

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


class CountingApp(BillingApp):
    """The real SQLite-backed app, counting invoice look-ups."""

    lookups = 0

    def invoice(self, tenant_id: str, period: str) -> None:
        CountingApp.lookups += 1
        return None


def invoicing(tmp_path: Path) -> Invoicing:
    app = CountingApp(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    )
    return Invoicing(
        app,
        SQLiteLedgerStore(tmp_path / "l.sqlite"),
        SQLiteUsageStore(tmp_path / "u.sqlite"),
        lambda: {},
        clock=lambda: NOW,
    )


def test_the_running_month_cannot_be_finalized(tmp_path: Path) -> None:
    # given / when / then
    with pytest.raises(Invalid, match="2026-11 has not ended"):
        invoicing(tmp_path).finalize("acme", "2026-11")


def test_corrections_look_only_at_ended_months(tmp_path: Path) -> None:
    # given
    service = invoicing(tmp_path)
    CountingApp.lookups = 0
    touched = {
        ("acme", datetime(2026, 11, 28, 9, tzinfo=UTC)),
        ("acme", datetime(2026, 10, 3, 9, tzinfo=UTC)),
    }
    # when
    notes = service.correct_touched(touched)
    # then: October was looked up, November (still running) was not
    assert notes == []
    assert CountingApp.lookups == 1
