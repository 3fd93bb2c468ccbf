"""FOCUS 1.0 export: rows tie to the invoice to the cent, corrections are correction rows, and
the FinOps Foundation validator accepts the file."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient

from catalog.billing import BillingApp
from catalog.files import read_catalog
from catalog.focus import COLUMNS, VALIDATOR_ALIASES, to_csv, with_validator_aliases
from ledger.model import LedgerEvent, Position, Pulse
from ledger.sqlite_store import SQLiteLedgerStore
from projections.hourly import UnitsAt
from projections.invoices import Invoicing
from projections.runner import project_hours
from projections.sqlite import SQLiteUsageStore
from pulse.bootstrap import SAMPLE_CATALOG
from query.app import create_app
from tests.unit.focus_validator import FocusValidator, focus_validator  # noqa: F401

HOUR = datetime(2026, 10, 7, 9, tzinfo=UTC)

# October usage and its invoice by hand, from the sample catalog's prices:
#   compute.vcpu   100 vCPU-hour x 0.0450                    =  4.50
#   network.egress 25 GB graduated: 10 free, 15 x 0.45       =  6.75
#   storage.block  1000 GB-hour x 0.00020                    =  0.20
#   storage.block  minimum charge 5.00 - 0.20 (adjustment)   =  4.80
USAGE = [("compute.vcpu", "100", "vCPU-hour"), ("network.egress", "25", "GB"),
         ("storage.block", "1000", "GB-hour")]  # fmt: skip
TOTAL = Decimal("4.50") + Decimal("6.75") + Decimal("0.20") + Decimal("4.80")
LATE_VCPU = Decimal(20)  # arrives after finalization: a debit of 20 x 0.0450 = 0.90


def setup(tmp_path: Path) -> tuple[TestClient, Invoicing, SQLiteLedgerStore, dict[int, int]]:
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    usage = SQLiteUsageStore(tmp_path / "usage.sqlite")
    app = BillingApp(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    )
    products = read_catalog(SAMPLE_CATALOG.read_text())
    app.apply_catalog(products)
    units = {p.sku: p.billing_unit for p in products}
    ledger.append(
        [
            LedgerEvent.of(
                Pulse(f"p{n}", "acme", sku, Decimal(amount), unit, HOUR),
                Position(0, n),
                HOUR + timedelta(minutes=1),
            )
            for n, (sku, amount, unit) in enumerate(USAGE)
        ]
    )
    project_hours([("acme", HOUR)], ledger, usage, UnitsAt(units.get, 0))
    committed = {0: len(USAGE)}
    invoicing = Invoicing(app, ledger, usage, lambda: committed)
    return TestClient(create_app(ledger, usage, invoicing, auth=None)), invoicing, ledger, committed


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def billed(rows: list[dict[str, str]]) -> Decimal:
    return sum((Decimal(r["BilledCost"]) for r in rows), Decimal(0))


def test_a_draft_month_exports_one_row_per_line_summing_to_the_invoice_total(
    tmp_path: Path,
) -> None:
    # given
    api, _, _, _ = setup(tmp_path)
    # when
    response = api.get("/v1/tenants/acme/exports/focus", params={"period": "2026-10"})
    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = rows_of(response.text)
    assert list(rows[0]) == list(COLUMNS)
    assert billed(rows) == TOTAL == Decimal("16.25")
    by_sku = {(r["SkuId"], r["ChargeCategory"]): r for r in rows}
    vcpu = by_sku["compute.vcpu", "Usage"]
    assert (vcpu["BilledCost"], vcpu["ListCost"], vcpu["ConsumedQuantity"]) == (
        "4.50",
        "4.50",
        "100",
    )
    assert (vcpu["ServiceCategory"], vcpu["PricingUnit"], vcpu["ListUnitPrice"]) == (
        "Compute", "vCPU-hour", "0.045")  # fmt: skip
    assert vcpu["ChargePeriodStart"] == "2026-10-01T00:00:00Z"
    assert vcpu["BillingPeriodEnd"] == "2026-11-01T00:00:00Z"
    egress = by_sku["network.egress", "Usage"]
    assert (egress["ServiceCategory"], egress["BilledCost"]) == ("Networking", "6.75")
    minimum = by_sku["storage.block", "Adjustment"]
    assert (minimum["BilledCost"], minimum["ServiceCategory"]) == ("4.80", "Storage")
    assert minimum["ConsumedQuantity"] == minimum["PricingQuantity"] == ""
    assert {r["SubAccountId"] for r in rows} == {"acme"}
    assert {r["BillingCurrency"] for r in rows} == {"BRL"}
    assert {r["ChargeClass"] for r in rows} == {""}
    # SkuPriceId is set on every usage row (the rule the validator 1.0.0 cannot check)
    assert all(r["SkuPriceId"] for r in rows if r["ChargeCategory"] == "Usage")


def test_a_finalized_month_exports_its_correction_notes_as_correction_rows(
    tmp_path: Path,
) -> None:
    # given: October finalized, then 20 vCPU-hour more arrive and a debit note is recorded
    api, invoicing, ledger, committed = setup(tmp_path)
    invoicing.finalize("acme", "2026-10")
    late = Pulse("late", "acme", "compute.vcpu", LATE_VCPU, "vCPU-hour", HOUR)
    ledger.append([LedgerEvent.of(late, Position(0, 3), HOUR + timedelta(days=40))])
    committed[0] = 4
    note = invoicing.correct("acme", "2026-10")
    assert note is not None
    # when
    rows = rows_of(api.get("/v1/tenants/acme/exports/focus?period=2026-10").text)
    # then
    [correction] = [r for r in rows if r["ChargeClass"] == "Correction"]
    assert correction["SkuId"] == "compute.vcpu" and correction["ChargeCategory"] == "Usage"
    assert correction["BilledCost"] == "0.90" and correction["ConsumedQuantity"] == "20"
    assert billed(rows) == TOTAL + LATE_VCPU * Decimal("0.0450") == Decimal("17.15")


def test_the_export_passes_the_finops_foundation_validator(
    tmp_path: Path,
    focus_validator: FocusValidator,  # noqa: F811
) -> None:
    # given: a finalized month with a correction, exported
    api, invoicing, ledger, committed = setup(tmp_path)
    invoicing.finalize("acme", "2026-10")
    late = Pulse("late", "acme", "compute.vcpu", LATE_VCPU, "vCPU-hour", HOUR)
    ledger.append([LedgerEvent.of(late, Position(0, 3), HOUR + timedelta(days=40))])
    committed[0] = 4
    invoicing.correct("acme", "2026-10")
    rows = rows_of(api.get("/v1/tenants/acme/exports/focus?period=2026-10").text)
    checked = tmp_path / "focus.csv"
    checked.write_text(
        to_csv(with_validator_aliases(rows), [*COLUMNS, *VALIDATOR_ALIASES.values()])
    )
    # when
    report = focus_validator.validate(checked, tmp_path)
    # then
    assert report.tests >= 130
    assert report.failed == ()


def test_the_validator_rejects_a_row_that_breaks_focus(
    tmp_path: Path,
    focus_validator: FocusValidator,  # noqa: F811
) -> None:
    # given: a valid export with one of our category names leaked into ServiceCategory
    api, _, _, _ = setup(tmp_path)
    rows = rows_of(api.get("/v1/tenants/acme/exports/focus?period=2026-10").text)
    rows[0]["ServiceCategory"] = "compute"
    checked = tmp_path / "broken.csv"
    checked.write_text(
        to_csv(with_validator_aliases(rows), [*COLUMNS, *VALIDATOR_ALIASES.values()])
    )
    # when
    report = focus_validator.validate(checked, tmp_path)
    # then
    assert any(name.startswith("ServiceCategory_Enum") for name in report.failed)
