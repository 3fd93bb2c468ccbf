"""`pulse reconcile` (projections.reconcile) on the embedded backends: a clean month, and each
stage made to disagree on purpose is named with where to look."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from ledger.sqlite_store import SQLiteLedgerStore
from ledger.writer import LedgerWriter
from projections.daily import roll_up
from projections.reconcile import ReconcileReport, Reconciliation
from tests.unit.helpers import catalog
from tests.unit.test_replay import OCT, WRITER, World, egress, world

__all__ = ["world"]  # the fixture, shared with test_replay


def reconcile(w: World, tenant: str | None = None) -> ReconcileReport:
    check = Reconciliation(
        w.history, w.log, w.ledger, w.usage, w.invoicing(), catalog().billing_unit
    )
    return check.run("2026-10", tenant)


def test_a_month_where_every_stage_agrees_is_clean(world: World) -> None:
    # given: 8 pulses of 2.5 GB for two tenants, 2 retries, 1 reuse of an id with another payload
    pulses = [egress("acme" if i % 2 else "globex", f"p{i}", "2.5", hour=i % 3) for i in range(8)]
    world.publish(pulses + pulses[:2] + [egress("acme", "p1", "999")])
    world.write_all()

    # when
    report = reconcile(world)

    # then
    assert report.clean, report.mismatches
    assert (report.log_records, report.duplicates, report.conflicts) == (11, 2, 1)
    totals = {
        (r.tenant_id, r.sku): (r.log_quantity, r.hourly_quantity, r.invoiced_quantity)
        for r in report.rows
    }
    assert totals == {
        ("acme", "network.egress"): (Decimal(10), Decimal(10), Decimal(10)),
        ("globex", "network.egress"): (Decimal(10), Decimal(10), Decimal(10)),
    }


def test_a_pulse_the_ledger_lacks_is_named_with_its_log_position(world: World) -> None:
    # given: the writer group passed a pulse that never reached our ledger
    world.publish([egress("acme", "kept", "1")])
    world.write_all()
    world.publish([egress("acme", "lost", "4")])
    elsewhere = SQLiteLedgerStore(world.root / "elsewhere.sqlite")
    LedgerWriter(world.log, elsewhere, world.log.consumer(WRITER)).run_once()
    elsewhere.close()

    # when
    report = reconcile(world)

    # then
    assert not report.clean
    details = [m.detail for m in report.mismatches if m.stage == "ledger"]
    assert any("'lost'" in d and "pulse replay --from-offset" in d for d in details)


def test_hourly_usage_that_differs_from_the_ledger_is_named(world: World) -> None:
    # given: the stored hour (and the day rolled up from it) says 3 GB where the ledger holds 5
    world.publish([egress("acme", "a", "5")])
    world.write_all()
    (row,) = world.usage.usage("acme", OCT, OCT + timedelta(hours=1))
    world.usage.replace_hour("acme", OCT, [replace(row, quantity=Decimal(3))])
    world.usage.replace_day("acme", OCT.date(), roll_up([replace(row, quantity=Decimal(3))]))

    # when
    report = reconcile(world, tenant="acme")

    # then
    assert [m.stage for m in report.mismatches] == ["hourly usage"]
    assert "ledger 5 != hourly usage 3" in report.mismatches[0].detail


def test_a_daily_roll_up_that_differs_from_its_hours_is_named_at_the_invoice(
    world: World,
) -> None:
    # given: the hour holds the ledger's 5 GB, its stored day says 3 (drafts price the days)
    world.publish([egress("acme", "a", "5")])
    world.write_all()
    (row,) = world.usage.usage("acme", OCT, OCT + timedelta(hours=1))
    world.usage.replace_day("acme", OCT.date(), roll_up([replace(row, quantity=Decimal(3))]))

    # when
    report = reconcile(world, tenant="acme")

    # then
    assert [m.stage for m in report.mismatches] == ["invoice"]
    assert "hourly usage 5 != invoiced 3" in report.mismatches[0].detail
    assert "pulse rebuild --tenant acme" in report.mismatches[0].detail
