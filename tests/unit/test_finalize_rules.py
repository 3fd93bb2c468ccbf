"""Only ended months are finalized; the projector's correction hook skips the running month."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from catalog.billing import BillingApp
from catalog.files import read_catalog
from kernel.errors import Invalid
from ledger.model import LedgerEvent, Position, Pulse
from ledger.sqlite_store import SQLiteLedgerStore
from projections.invoices import Invoicing
from projections.sqlite import SQLiteUsageStore
from pulse.bootstrap import SAMPLE_CATALOG

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


@pytest.mark.parametrize(
    "period",
    [
        "\uff12\uff10\uff12\uff16-10",  # fullwidth digits
        "\u0662\u0660\u0662\u0666-10",  # Arabic-Indic digits
        "2026-\uff110",
        "2026-10\n",
        " 2026-10",
    ],
)
def test_a_period_is_ascii_yyyy_mm_only(tmp_path: Path, period: str) -> None:
    # given / when / then: one month has one spelling, so it is finalized under one id
    with pytest.raises(Invalid, match=r"^period: .*YYYY-MM"):
        invoicing(tmp_path).finalize("acme", period)


class CorruptingApp(BillingApp):
    """The real app, storing a finalized document that is not the one its hash was taken of
    (a damaged or tampered store)."""

    def record_finalized(self, tenant_id: str, period: str, document: str, *rest: Any) -> Any:
        return super().record_finalized(
            tenant_id, period, document.replace('"total":"', '"total":"1'), *rest
        )


def test_verify_checks_the_stored_document_against_its_hash(tmp_path: Path) -> None:
    # given: October usage, finalized into a store that damages the document
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    app = CorruptingApp(env=env)
    app.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    ledger = SQLiteLedgerStore(tmp_path / "l.sqlite")
    at = datetime(2026, 10, 7, 9, tzinfo=UTC)
    pulse = Pulse("p1", "acme", "compute.vcpu", Decimal(100), "vCPU-hour", at)
    ledger.append([LedgerEvent.of(pulse, Position(0, 0), at)])
    service = Invoicing(app, ledger, SQLiteUsageStore(tmp_path / "u"), lambda: {0: 1}, lambda: NOW)
    _draft, digest = service.finalize("acme", "2026-10")

    # when
    result = service.verify("acme", "2026-10")

    # then: the ledger re-derives to the recorded hash, but the stored document does not
    assert result.derived == result.recorded == digest
    assert not result.ok
    assert result.differs == ("stored document",)
