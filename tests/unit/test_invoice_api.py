"""Invoice endpoints of the read API over the embedded stores and the SQLite event store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from catalog.aggregates import Invoice
from catalog.billing import BillingApp
from catalog.files import read_catalog
from ledger.model import LedgerEvent, Position, Pulse
from ledger.sqlite_store import SQLiteLedgerStore
from projections.hourly import UnitsAt
from projections.invoices import Invoicing
from projections.runner import project_hours
from projections.sqlite import SQLiteUsageStore
from pulse.bootstrap import SAMPLE_CATALOG
from query.app import create_app

HOUR = datetime(2026, 10, 7, 9, tzinfo=UTC)


def client(tmp_path: Path) -> tuple[TestClient, Invoicing]:
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    usage = SQLiteUsageStore(tmp_path / "usage.sqlite")
    app = BillingApp(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    )
    products = read_catalog(SAMPLE_CATALOG.read_text())
    app.apply_catalog(products)
    units = {p.sku: p.billing_unit for p in products}
    pulse = Pulse("p1", "acme", "compute.vcpu", Decimal(100), "vCPU-hour", HOUR)
    ledger.append([LedgerEvent.of(pulse, Position(0, 7), HOUR + timedelta(minutes=1))])
    project_hours([("acme", HOUR)], ledger, usage, UnitsAt(units.get, 0))
    # The writer group has committed past offset 7 (the next offset to read is 8).
    invoicing = Invoicing(app, ledger, usage, lambda: {0: 8})
    return TestClient(create_app(ledger, usage, invoicing, auth=None)), invoicing


def test_draft_is_served_with_exact_amounts(tmp_path: Path) -> None:
    # given
    api, _ = client(tmp_path)
    # when
    body = api.get("/v1/tenants/acme/invoices/2026-10/draft").json()
    # then: 100 vCPU-hour x 0.0450 = 4.50 (sample catalog, October price)
    assert body["total"] == "4.5"
    [line] = body["lines"]
    assert (line["sku"], line["quantity"], line["amount"]) == ("compute.vcpu", "100", "4.5")


def test_finalized_invoice_is_404_until_finalized_then_served_with_its_hash(
    tmp_path: Path,
) -> None:
    # given
    api, invoicing = client(tmp_path)
    missing = api.get("/v1/tenants/acme/invoices/2026-10")
    # when
    _draft, digest = invoicing.finalize("acme", "2026-10")
    found = api.get("/v1/tenants/acme/invoices/2026-10")
    # then
    assert missing.status_code == 404 and "acme" in missing.json()["detail"]
    assert found.status_code == 200
    assert found.json()["sha256"] == digest
    assert found.json()["pins"]["positions"] == {"0": 7}


@pytest.mark.parametrize("path", ["october/draft", "\uff12\uff10\uff12\uff16-10"])
def test_a_malformed_period_is_422_naming_it(tmp_path: Path, path: str) -> None:
    # given
    api, _ = client(tmp_path)
    # when
    response = api.get(f"/v1/tenants/acme/invoices/{path}")
    # then
    assert response.status_code == 422
    assert response.json()["detail"].startswith("period: ")


def test_a_line_leads_to_its_hours_pulses_and_log_positions(tmp_path: Path) -> None:
    # given
    api, _ = client(tmp_path)
    # when
    found = api.get("/v1/tenants/acme/invoices/2026-10/lines/compute.vcpu/lineage")
    missing = api.get("/v1/tenants/acme/invoices/2026-10/lines/network.egress/lineage")
    # then: hour -> pulse id -> Kafka partition:offset and arrival (DESIGN invariant 7)
    assert found.status_code == 200
    [hour] = found.json()["hours"]
    assert hour["hour"] == HOUR.isoformat()
    assert hour["pulses"] == [
        {
            "pulse_id": "p1",
            "quantity": "100",
            "unit": "vCPU-hour",
            "ledger_position": "0:7",
            "arrival": (HOUR + timedelta(minutes=1)).isoformat(),
        }
    ]
    assert missing.status_code == 404 and "network.egress" in missing.json()["detail"]


def test_an_invoice_finalized_before_the_index_existed_is_still_listed(tmp_path: Path) -> None:
    # given: an invoice recorded the way finalize did before the per-tenant index (no index)
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    usage = SQLiteUsageStore(tmp_path / "usage.sqlite")
    billing = BillingApp(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    )
    billing.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    pulse = Pulse("p1", "acme", "compute.vcpu", Decimal(100), "vCPU-hour", HOUR)
    ledger.append([LedgerEvent.of(pulse, Position(0, 7), HOUR)])
    document = '{"currency":"BRL","total":"4.5"}'
    billing.save(Invoice("acme", "2026-10", document, "e" * 64, {"positions": {}}))
    invoicing = Invoicing(billing, ledger, usage, lambda: {0: 8})
    api = TestClient(create_app(ledger, usage, invoicing, auth=None))
    # when
    body = api.get("/v1/tenants/acme/invoices").json()
    # then
    assert billing.invoice_periods("acme") == []
    assert body["items"] == [
        {
            "period": "2026-10",
            "status": "finalized",
            "total": "4.5",
            "currency": "BRL",
            "notes": 0,
            "sha256": "e" * 64,
        }
    ]


def test_explain_reads_every_page_of_the_lineage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: 7 pulses of the line over two hours, read two at a time
    monkeypatch.setattr("projections.invoice_lists._EXPLAIN_PAGE", 2)
    _api, invoicing = client(tmp_path)
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    more = [
        Pulse(
            f"q{i}", "acme", "compute.vcpu", Decimal(1), "vCPU-hour", HOUR + timedelta(hours=i % 2)
        )
        for i in range(6)
    ]
    ledger.append([LedgerEvent.of(p, Position(0, 10 + i), HOUR) for i, p in enumerate(more)])
    # when
    rows = invoicing.explain("acme", "2026-10", "compute.vcpu")
    # then: hour, then id; each once
    assert [r.pulse_id for r in rows] == ["p1", "q0", "q2", "q4", "q1", "q3", "q5"]
