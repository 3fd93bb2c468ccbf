"""draft_invoice() and the invoice document: DESIGN pricing rules 1-10 on hand-computed examples."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from catalog.invoice import (
    CorrectionLine,
    InvoiceDraft,
    InvoiceLine,
    TierCharge,
    UnpricedUsage,
    canonical_json,
    correction,
    invoice_hash,
    note_kind,
    total_delta,
)
from catalog.lines import round_line
from catalog.plans import charge
from catalog.pricing import draft_invoice, period_bounds
from catalog.terms import (
    ContractTerms,
    ContractVersion,
    Discount,
    PlanKind,
    PlanVersion,
    PricePlan,
    ProductTerms,
    Tier,
)
from ledger.model import Position
from projections.hourly import HourlyUsage
from tests.unit.test_pure_core import io_imports_of

TENANT = "acme"
PERIOD = "2024-05"
MAY_1 = datetime(2024, 5, 1, tzinfo=UTC)
JUNE_1 = datetime(2024, 6, 1, tzinfo=UTC)
D = Decimal


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, tzinfo=UTC)


def row(
    sku: str,
    when: datetime,
    quantity: str,
    unit: str = "",
    *,
    offset: int = 0,
    partition: int = 0,
    reason: str = "",
    tenant: str = TENANT,
) -> HourlyUsage:
    return HourlyUsage(
        tenant_id=tenant,
        hour=when,
        product_sku=sku,
        unit=unit or UNITS.get(sku, "request"),
        quantity=D(quantity),
        pulse_count=1,
        first_event=when,
        last_event=when,
        position=Position(partition, offset),
        unpriced_reason=reason,
    )


UNITS = {"vcpu": "vCPU-hour", "gpu": "vCPU-hour", "disk": "GB-hour", "egress": "GB"}
CATEGORIES = {"vcpu": "compute", "gpu": "compute", "disk": "storage", "egress": "network"}


def per_unit(price: str, minimum: str = "0") -> PricePlan:
    return PricePlan(PlanKind.PER_UNIT, unit_price=D(price), minimum_charge=D(minimum))


def tiered(kind: PlanKind, *tiers: tuple[str | None, str]) -> PricePlan:
    return PricePlan(
        kind, tiers=tuple(Tier(None if up is None else D(up), D(price)) for up, price in tiers)
    )


def package(size: str, price: str) -> PricePlan:
    return PricePlan(PlanKind.PACKAGE, package_size=D(size), package_price=D(price))


def product(sku: str, *versions: tuple[date, PricePlan], currency: str = "BRL") -> ProductTerms:
    return ProductTerms(
        sku=sku,
        name=sku.upper(),
        category=CATEGORIES[sku],
        billing_unit=UNITS[sku],
        currency=currency,
        plans=tuple(PlanVersion(day, plan) for day, plan in versions),
    )


def catalog(*products: ProductTerms) -> dict[str, ProductTerms]:
    return {p.sku: p for p in products}


def contract(*versions: ContractVersion) -> ContractTerms:
    return ContractTerms(TENANT, versions)


LONG_AGO = date(2024, 1, 1)


def draft(
    usage: Sequence[HourlyUsage],
    products: dict[str, ProductTerms],
    terms: ContractTerms | None = None,
) -> InvoiceDraft:
    return draft_invoice(TENANT, PERIOD, usage, products, terms)


def only(lines: Sequence[InvoiceLine]) -> InvoiceLine:
    assert len(lines) == 1, lines
    return lines[0]


# --- plan kinds (rule 5) ---------------------------------------------------------------


def test_per_unit_line_sums_the_hours_and_keeps_lineage() -> None:
    # given: 1.5 + 2.25 + 0.25 = 4 vCPU-hour at 0.125
    usage = [
        row("vcpu", at(3, 10), "1.5", offset=7),
        row("vcpu", at(3, 11), "2.25", offset=12),
        row("vcpu", at(9, 0), "0.25", offset=3, partition=1),
    ]

    # when
    invoice = draft(usage, catalog(product("vcpu", (LONG_AGO, per_unit("0.125")))))

    # then: 4 x 0.125 = 0.5
    line = only(invoice.lines)
    assert (line.sku, line.name, line.category, line.unit) == (
        "vcpu",
        "VCPU",
        "compute",
        "vCPU-hour",
    )
    assert (line.segment_start, line.segment_end) == (MAY_1, JUNE_1)
    assert (line.quantity, line.billable, line.allowance_used) == (D(4), D(4), D(0))
    assert line.tiers == (TierCharge(D(0), None, D(4), D("0.125"), D("0.5")),)
    assert (line.subtotal, line.amount, str(line.amount)) == (D("0.5"), D("0.5"), "0.50")
    assert (line.plan_kind, line.plan_source, line.kind) == (PlanKind.PER_UNIT, "catalog", "usage")
    assert line.hours == (at(3, 10), at(3, 11), at(9, 0))
    assert invoice.positions == ((0, 12), (1, 3))
    assert (invoice.total, invoice.currency, invoice.unpriced) == (D("0.5"), "BRL", ())


GRADUATED = tiered(PlanKind.GRADUATED, ("10", "1"), ("50", "0.5"), (None, "0.1"))


@pytest.mark.parametrize(
    ("quantity", "expected_tiers", "subtotal"),
    [
        # 10 x 1 = 10: exactly at the first up_to stays in the first tier
        ("10", [("0", "10", "10", "1", "10")], "10"),
        # 10 x 1 + 40 x 0.5 = 30: exactly at the second up_to
        ("50", [("0", "10", "10", "1", "10"), ("10", "50", "40", "0.5", "20")], "30"),
        # 10 x 1 + 40 x 0.5 + 10 x 0.1 = 31
        (
            "60",
            [
                ("0", "10", "10", "1", "10"),
                ("10", "50", "40", "0.5", "20"),
                ("50", None, "10", "0.1", "1"),
            ],
            "31",
        ),
        # 10.5 = 10 x 1 + 0.5 x 0.5 = 10.25: just past a boundary
        ("10.5", [("0", "10", "10", "1", "10"), ("10", "50", "0.5", "0.5", "0.25")], "10.25"),
    ],
)
def test_graduated_prices_each_part_at_its_tier(
    quantity: str, expected_tiers: list[tuple[str, str | None, str, str, str]], subtotal: str
) -> None:
    # given
    usage = [row("disk", at(2), quantity)]

    # when
    line = only(draft(usage, catalog(product("disk", (LONG_AGO, GRADUATED)))).lines)

    # then
    assert line.tiers == tuple(
        TierCharge(D(a), None if b is None else D(b), D(q), D(p), D(m))
        for a, b, q, p, m in expected_tiers
    )
    assert line.subtotal == D(subtotal)


VOLUME = tiered(PlanKind.VOLUME, ("10", "1"), ("50", "0.5"), (None, "0.1"))


@pytest.mark.parametrize(
    ("quantity", "tier", "amount"),
    [
        ("10", ("0", "10", "1"), "10.00"),  # 10 x 1: exactly at up_to is still tier 1
        ("10.001", ("10", "50", "0.5"), "5.00"),  # 10.001 x 0.5 = 5.0005 -> 5.00 (half-even)
        ("50", ("10", "50", "0.5"), "25.00"),  # 50 x 0.5
        ("51", ("50", None, "0.1"), "5.10"),  # 51 x 0.1: all units at the total's tier
    ],
)
def test_volume_prices_all_units_at_the_tier_of_the_total(
    quantity: str, tier: tuple[str, str | None, str], amount: str
) -> None:
    # given
    usage = [row("disk", at(2), quantity)]

    # when
    line = only(draft(usage, catalog(product("disk", (LONG_AGO, VOLUME)))).lines)

    # then
    low, high, price = tier
    assert len(line.tiers) == 1
    charged = line.tiers[0]
    assert (charged.from_qty, charged.to_qty, charged.quantity, charged.unit_price) == (
        D(low),
        None if high is None else D(high),
        D(quantity),
        D(price),
    )
    assert str(line.amount) == amount


@pytest.mark.parametrize(
    ("quantity", "packages", "amount"),
    [
        ("250", 3, "7.50"),  # ceil(250 / 100) = 3 x 2.5
        ("200", 2, "5.00"),  # ceil(200 / 100) = 2 x 2.5: a full package is not rounded up
        ("0.001", 1, "2.50"),  # any part of a package costs a package
    ],
)
def test_package_counts_started_packages(quantity: str, packages: int, amount: str) -> None:
    # given
    usage = [row("egress", at(4), quantity)]

    # when
    line = only(draft(usage, catalog(product("egress", (LONG_AGO, package("100", "2.5"))))).lines)

    # then
    assert line.tiers == (TierCharge(D(0), None, D(packages), D("2.5"), D(amount)),)
    assert str(line.amount) == amount


@pytest.mark.parametrize(
    "plan",
    [per_unit("3"), GRADUATED, VOLUME, package("100", "2.5")],
    ids=lambda plan: str(plan.kind),
)
def test_zero_quantity_costs_nothing_under_every_kind(plan: PricePlan) -> None:
    # given: an hour with pulses of amount 0
    usage = [row("disk", at(5), "0")]

    # when
    line = only(draft(usage, catalog(product("disk", (LONG_AGO, plan)))).lines)

    # then
    assert (line.tiers, line.subtotal, line.amount) == ((), D(0), D(0))


# --- segments (rule 3) -------------------------------------------------------------------


def test_mid_month_catalog_price_change_splits_the_line() -> None:
    # given: 1.00 until May 16, 2.00 from May 16; 10 used on May 3, 5 on May 20
    products = catalog(
        product("vcpu", (LONG_AGO, per_unit("1")), (date(2024, 5, 16), per_unit("2")))
    )
    usage = [row("vcpu", at(20, 4), "5"), row("vcpu", at(3, 1), "10")]

    # when
    invoice = draft(usage, products)

    # then: 10 x 1 = 10 and 5 x 2 = 10
    first, second = invoice.lines
    assert (first.segment_start, first.segment_end, first.quantity, first.amount) == (
        MAY_1,
        at(16),
        D(10),
        D(10),
    )
    assert (second.segment_start, second.segment_end, second.quantity, second.amount) == (
        at(16),
        JUNE_1,
        D(5),
        D(10),
    )
    assert (first.hours, second.hours) == ((at(3, 1),), (at(20, 4),))
    assert invoice.total == D(20)


def test_graduated_tiers_restart_in_each_segment() -> None:
    # given: the same tiers before and after May 16, 10 used in each half
    products = catalog(product("disk", (LONG_AGO, GRADUATED), (date(2024, 5, 16), GRADUATED)))
    usage = [row("disk", at(2), "10"), row("disk", at(17), "10")]

    # when
    invoice = draft(usage, products)

    # then: 10 x 1 per segment = 20 (one segment of 20 would be 10 x 1 + 10 x 0.5 = 15)
    assert [line.amount for line in invoice.lines] == [D(10), D(10)]


def test_plan_effective_on_the_first_of_the_month_does_not_split() -> None:
    # given
    products = catalog(product("vcpu", (date(2024, 5, 1), per_unit("1"))))

    # when
    invoice = draft([row("vcpu", at(1), "1"), row("vcpu", at(31, 23), "1")], products)

    # then
    assert only(invoice.lines).quantity == D(2)


def test_mid_month_contract_amendment_splits_the_line() -> None:
    # given: 10% off everything from April, 20% from May 11; 100 at 1.00 on May 5 and May 15
    terms = contract(
        ContractVersion(date(2024, 4, 1), discounts=(Discount(D(10)),)),
        ContractVersion(date(2024, 5, 11), discounts=(Discount(D(20)),)),
    )
    usage = [row("vcpu", at(5), "100"), row("vcpu", at(15), "100")]

    # when
    invoice = draft(usage, catalog(product("vcpu", (LONG_AGO, per_unit("1")))), terms)

    # then: 100 - 10% = 90, 100 - 20% = 80
    first, second = invoice.lines
    assert (first.segment_end, first.discount_percent, first.discount_amount) == (
        at(11),
        D(10),
        D(10),
    )
    assert (second.segment_start, second.discount_percent, second.discount_amount) == (
        at(11),
        D(20),
        D(20),
    )
    assert (first.amount, second.amount, invoice.total) == (D(90), D(80), D(170))


def test_contract_override_replaces_the_catalog_plan_while_in_force() -> None:
    # given: catalog 1.00; the contract overrides with 0.50 from May 10
    terms = contract(ContractVersion(date(2024, 5, 10), overrides=(("vcpu", per_unit("0.5")),)))
    usage = [row("vcpu", at(2), "8"), row("vcpu", at(12), "8")]

    # when
    invoice = draft(usage, catalog(product("vcpu", (LONG_AGO, per_unit("1")))), terms)

    # then: 8 x 1 = 8 (catalog), 8 x 0.5 = 4 (contract)
    assert [(line.plan_source, line.amount) for line in invoice.lines] == [
        ("catalog", D(8)),
        ("contract", D(4)),
    ]


# --- free allowance (rule 4) -----------------------------------------------------------


def test_allowance_is_one_monthly_budget_consumed_across_segments() -> None:
    # given: 30 free per month; a price change on May 16 splits; 20 used in each half
    products = catalog(
        product("vcpu", (LONG_AGO, per_unit("1")), (date(2024, 5, 16), per_unit("2")))
    )
    terms = contract(ContractVersion(LONG_AGO, allowances=(("vcpu", D(30)),)))
    # given in reverse order: consumption follows event time, not input order
    usage = [row("vcpu", at(20), "20"), row("vcpu", at(3), "20")]

    # when
    invoice = draft(usage, products, terms)

    # then: 20 of 30 free in the first half; the remaining 10 free in the second,
    # 10 billable x 2 = 20
    first, second = invoice.lines
    assert (first.allowance_used, first.billable, first.amount) == (D(20), D(0), D(0))
    assert (second.allowance_used, second.billable, second.amount) == (D(10), D(10), D(20))


def test_allowance_raised_mid_month_frees_only_the_increase() -> None:
    # given: 30 free until May 16, 50 from then; 40 used in each half at 1.00
    terms = contract(
        ContractVersion(LONG_AGO, allowances=(("vcpu", D(30)),)),
        ContractVersion(date(2024, 5, 16), allowances=(("vcpu", D(50)),)),
    )
    usage = [row("vcpu", at(3), "40"), row("vcpu", at(20), "40")]

    # when
    invoice = draft(usage, catalog(product("vcpu", (LONG_AGO, per_unit("1")))), terms)

    # then: 30 free, 10 billable; then 50 - 30 = 20 free, 20 billable
    first, second = invoice.lines
    assert (first.allowance_used, first.billable) == (D(30), D(10))
    assert (second.allowance_used, second.billable) == (D(20), D(20))
    assert invoice.total == D(30)


def test_allowance_lowered_below_what_was_used_leaves_nothing_and_claws_nothing_back() -> None:
    # given: 50 free until May 16, 20 from then; 30 used then 10
    terms = contract(
        ContractVersion(LONG_AGO, allowances=(("vcpu", D(50)),)),
        ContractVersion(date(2024, 5, 16), allowances=(("vcpu", D(20)),)),
    )
    usage = [row("vcpu", at(3), "30"), row("vcpu", at(20), "10")]

    # when
    invoice = draft(usage, catalog(product("vcpu", (LONG_AGO, per_unit("1")))), terms)

    # then: 30 free; max(0, 20 - 30) = 0 free, 10 billable x 1
    first, second = invoice.lines
    assert (first.allowance_used, first.amount) == (D(30), D(0))
    assert (second.allowance_used, second.billable, second.amount) == (D(0), D(10), D(10))


def test_unpriceable_segment_consumes_no_allowance() -> None:
    # given: the plan starts May 10; 20 used on May 5 (no plan), 20 on May 12; 30 free
    terms = contract(ContractVersion(LONG_AGO, allowances=(("vcpu", D(30)),)))
    usage = [row("vcpu", at(5), "20"), row("vcpu", at(12), "20")]

    # when
    invoice = draft(usage, catalog(product("vcpu", (date(2024, 5, 10), per_unit("1")))), terms)

    # then
    line = only(invoice.lines)
    assert (line.segment_start, line.allowance_used, line.billable) == (at(10), D(20), D(0))
    assert invoice.unpriced == (
        UnpricedUsage(
            "vcpu",
            "vCPU-hour",
            D(20),
            "terms in force for vcpu on 2024-05-01: no price plan in force for vcpu on 2024-05-01",
        ),
    )


# --- discounts (rule 6) ------------------------------------------------------------------


def test_most_specific_discount_wins_and_discounts_never_compound() -> None:
    # given: 5% on everything, 10% on compute, 20% on the vcpu SKU; 100 of each at 1.00
    terms = contract(
        ContractVersion(
            LONG_AGO,
            discounts=(
                Discount(D(5)),
                Discount(D(10), category="compute"),
                Discount(D(20), sku="vcpu"),
            ),
        )
    )
    products = catalog(
        *(product(sku, (LONG_AGO, per_unit("1"))) for sku in ("vcpu", "gpu", "disk"))
    )
    usage = [row(sku, at(2), "100") for sku in ("vcpu", "gpu", "disk")]

    # when
    invoice = draft(usage, products, terms)

    # then: disk 100 - 5% = 95; gpu 100 - 10% = 90; vcpu 100 - 20% = 80
    # (compounded it would be 100 x 0.8 x 0.9 x 0.95 = 68.40)
    amounts = {line.sku: (line.discount_percent, line.amount) for line in invoice.lines}
    assert amounts == {"disk": (D(5), D(95)), "gpu": (D(10), D(90)), "vcpu": (D(20), D(80))}


def test_full_discount_makes_a_line_zero_not_negative() -> None:
    # given
    terms = contract(ContractVersion(LONG_AGO, discounts=(Discount(D(100), sku="vcpu"),)))

    # when
    invoice = draft(
        [row("vcpu", at(2), "7")], catalog(product("vcpu", (LONG_AGO, per_unit("3")))), terms
    )

    # then: 21 - 100% = 0
    line = only(invoice.lines)
    assert (line.subtotal, line.discount_amount, line.amount) == (D(21), D(21), D(0))


def test_discount_outside_0_to_100_makes_the_usage_unpriced() -> None:
    # given
    terms = contract(ContractVersion(LONG_AGO, discounts=(Discount(D(150)),)))

    # when
    invoice = draft(
        [row("vcpu", at(2), "7")], catalog(product("vcpu", (LONG_AGO, per_unit("3")))), terms
    )

    # then
    assert invoice.lines == ()
    assert "150" in only_unpriced(invoice).reason


def only_unpriced(invoice: InvoiceDraft) -> UnpricedUsage:
    assert len(invoice.unpriced) == 1, invoice.unpriced
    return invoice.unpriced[0]


# --- minimum charge and commitment (rules 8, 9) -----------------------------------------


def test_minimum_charge_of_the_plan_in_force_at_the_end_tops_up() -> None:
    # given: minimum 100 until May 16, 25 from then; 10 used at 1.00 in each half
    products = catalog(
        product("vcpu", (LONG_AGO, per_unit("1", "100")), (date(2024, 5, 16), per_unit("1", "25")))
    )
    usage = [row("vcpu", at(3), "10"), row("vcpu", at(20), "10")]

    # when
    invoice = draft(usage, products)

    # then: lines 10 + 10 = 20 < 25 -> minimum line 5; total 25
    first, second, minimum = invoice.lines
    assert (first.kind, second.kind, minimum.kind) == ("usage", "usage", "minimum")
    assert (minimum.segment_start, minimum.segment_end) == (MAY_1, JUNE_1)
    assert (minimum.quantity, minimum.hours, minimum.amount) == (D(0), (), D(5))
    assert invoice.total == D(25)


def test_minimum_charge_needs_usage_and_a_shortfall() -> None:
    # given: minimum 25; one SKU with zero usage, one above the minimum
    products = catalog(
        product("vcpu", (LONG_AGO, per_unit("1", "25"))),
        product("disk", (LONG_AGO, per_unit("1", "25"))),
    )
    usage = [row("vcpu", at(3), "0"), row("disk", at(3), "30")]

    # when
    invoice = draft(usage, products)

    # then
    assert [line.kind for line in invoice.lines] == ["usage", "usage"]
    assert invoice.total == D(30)


def test_minimum_applies_even_when_the_allowance_made_usage_free() -> None:
    # given: 10 used, 50 free, minimum 25
    terms = contract(ContractVersion(LONG_AGO, allowances=(("vcpu", D(50)),)))
    products = catalog(product("vcpu", (LONG_AGO, per_unit("1", "25"))))

    # when
    invoice = draft([row("vcpu", at(3), "10")], products, terms)

    # then: the SKU had usage (10 > 0) and its lines sum to 0 < 25
    assert [(line.kind, line.amount) for line in invoice.lines] == [
        ("usage", D(0)),
        ("minimum", D(25)),
    ]


def test_commitment_true_up_adds_the_difference_to_the_committed_spend() -> None:
    # given: committed 100 from April, 50 from May 20 (in force at the end); 31 of usage
    terms = contract(
        ContractVersion(LONG_AGO, commitment=D(100)),
        ContractVersion(date(2024, 5, 20), commitment=D(50)),
    )
    products = catalog(product("disk", (LONG_AGO, GRADUATED)))

    # when
    invoice = draft([row("disk", at(3), "60")], products, terms)

    # then: usage 31 (see graduated), split at May 20 but all in the first segment;
    # true-up 50 - 31 = 19, listed last
    usage_line, true_up = invoice.lines
    assert (usage_line.amount, usage_line.segment_end) == (D(31), at(20))
    assert (true_up.kind, true_up.sku, true_up.plan_source, true_up.plan_kind) == (
        "commitment",
        "",
        "contract",
        None,
    )
    assert true_up.amount == D(19)
    assert invoice.total == D(50)


def test_commitment_counts_minimum_lines_and_applies_without_usage() -> None:
    # given: commitment 40; minimum 25 on a SKU that used 1 at 1.00
    terms = contract(ContractVersion(LONG_AGO, commitment=D(40)))
    products = catalog(product("vcpu", (LONG_AGO, per_unit("1", "25"))))

    # when
    with_usage = draft([row("vcpu", at(3), "1")], products, terms)
    without_usage = draft([], products, terms)

    # then: 1 + minimum 24 = 25; true-up 40 - 25 = 15. Without usage: true-up 40
    assert [line.amount for line in with_usage.lines] == [D(1), D(24), D(15)]
    assert [line.amount for line in without_usage.lines] == [D(40)]
    assert with_usage.total == without_usage.total == D(40)


# --- unpriced usage (rule 2, DESIGN "Invoices") ------------------------------------------


def test_unpriced_usage_is_listed_and_never_priced() -> None:
    # given: a row the projection marked, an unknown SKU, a unit not the billing unit,
    # and usage before the first plan took effect
    products = catalog(
        product("vcpu", (LONG_AGO, per_unit("1"))),
        product("disk", (date(2024, 5, 10), per_unit("1"))),
    )
    usage = [
        row("vcpu", at(2), "3"),
        row("vcpu", at(2, 1), "2", unit="hour", reason="hour cannot convert to vCPU-hour"),
        row("gpu.h100", at(2), "4", unit="hour", reason="SKU gpu.h100 is not in the catalog"),
        row("egress", at(2), "5"),
        row("vcpu", at(2, 2), "6", unit="GB"),
        row("disk", at(3), "7"),
        row("disk", at(4), "1"),
    ]

    # when
    invoice = draft(usage, products)

    # then: only the 3 vcpu-hours are priced
    assert only(invoice.lines).quantity == D(3)
    assert invoice.total == D(3)
    assert invoice.unpriced == (
        UnpricedUsage(
            "disk",
            "GB-hour",
            D(8),  # 7 + 1, both before May 10
            "terms in force for disk on 2024-05-01: no price plan in force for disk on 2024-05-01",
        ),
        UnpricedUsage("egress", "GB", D(5), "SKU egress is not in the catalog"),
        UnpricedUsage("gpu.h100", "hour", D(4), "SKU gpu.h100 is not in the catalog"),
        UnpricedUsage("vcpu", "GB", D(6), "unit GB is not the billing unit vCPU-hour of the SKU"),
        UnpricedUsage("vcpu", "hour", D(2), "hour cannot convert to vCPU-hour"),
    )


def test_quantity_above_a_bounded_last_tier_is_unpriced() -> None:
    # given: tiers stop at 50
    plan = tiered(PlanKind.VOLUME, ("10", "1"), ("50", "0.5"))

    # when
    invoice = draft([row("disk", at(2), "51")], catalog(product("disk", (LONG_AGO, plan))))

    # then
    assert invoice.lines == ()
    assert only_unpriced(invoice).reason.endswith("quantity 51 is above the last tier (up to 50)")


# --- rounding (rule 7) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("0.005", "BRL", "0.00"),  # half to even: 0
        ("0.015", "BRL", "0.02"),  # half to even: 2
        ("0.125", "USD", "0.12"),
        ("0.135", "EUR", "0.14"),
        ("0.1250000000000000000000000000001", "BRL", "0.13"),  # above half, past 28 digits
        ("2.5", "JPY", "2"),  # no minor unit
        ("3.5", "JPY", "4"),
        ("1.005", "XTS", "1.00"),  # a currency not listed: 2 places
    ],
)
def test_round_line_is_half_even_to_the_minor_unit(
    amount: str, currency: str, rounded: str
) -> None:
    # when / then
    assert str(round_line(D(amount), currency)) == rounded


def test_each_line_is_rounded_once_not_each_tier() -> None:
    # given: 1 at 0.005 then 1 at 0.005
    plan = tiered(PlanKind.GRADUATED, ("1", "0.005"), (None, "0.005"))

    # when
    line = only(draft([row("disk", at(2), "2")], catalog(product("disk", (LONG_AGO, plan)))).lines)

    # then: 0.005 + 0.005 = 0.010 -> 0.01 (rounding each tier would give 0.00 + 0.00)
    assert [tier.amount for tier in line.tiers] == [D("0.005"), D("0.005")]
    assert str(line.amount) == "0.01"


def test_line_rounding_follows_the_catalog_currency() -> None:
    # given: 3 x 0.5 JPY = 1.5 -> 2 (half-even)
    products = catalog(product("vcpu", (LONG_AGO, per_unit("0.5")), currency="JPY"))

    # when
    invoice = draft([row("vcpu", at(2), "3")], products)

    # then
    assert (invoice.currency, str(invoice.total)) == ("JPY", "2")


def test_amounts_past_28_digits_stay_exact() -> None:
    # given: 30-digit quantity x 1.1 (the default context would round at 28 digits)
    quantity = "123456789012345678901234567891"

    # when
    line = only(
        draft(
            [row("vcpu", at(2), quantity)], catalog(product("vcpu", (LONG_AGO, per_unit("1.1"))))
        ).lines
    )

    # then: x 1.1 = x + x / 10
    assert line.subtotal == D("135802467913580246791358024680.1")
    assert str(line.amount) == "135802467913580246791358024680.10"


# --- the document: canonical form, hash, corrections ------------------------------------


def mixed_usage() -> list[HourlyUsage]:
    return [
        row("vcpu", at(3, 1), "1.5", offset=4),
        row("vcpu", at(20, 2), "2.25", offset=9, partition=1),
        row("disk", at(7), "60", offset=11),
        row("egress", at(8), "250", offset=2, partition=2),
        row("gpu.h100", at(9), "1", unit="hour", reason="SKU gpu.h100 is not in the catalog"),
    ]


def mixed_catalog() -> dict[str, ProductTerms]:
    return catalog(
        product("vcpu", (LONG_AGO, per_unit("0.125")), (date(2024, 5, 16), per_unit("0.25"))),
        product("disk", (LONG_AGO, GRADUATED)),
        product("egress", (LONG_AGO, package("100", "2.5"))),
    )


MIXED_CONTRACT = contract(
    ContractVersion(LONG_AGO, discounts=(Discount(D("12.5"), category="compute"),)),
    ContractVersion(date(2024, 5, 25), commitment=D(60)),
)


def test_canonical_json_is_stable_under_input_reordering() -> None:
    # given
    usage = mixed_usage()
    shuffled = list(usage)
    random.Random(7).shuffle(shuffled)
    reversed_ = list(reversed(usage))

    # when
    texts = {
        canonical_json(draft(rows, mixed_catalog(), MIXED_CONTRACT))
        for rows in (usage, shuffled, reversed_)
    }

    # then
    assert len(texts) == 1
    text = texts.pop()
    # sorted keys, no whitespace between tokens
    assert text == json.dumps(
        json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_canonical_json_spells_decimals_plainly_and_times_in_utc() -> None:
    # given
    invoice = draft(mixed_usage(), mixed_catalog(), MIXED_CONTRACT)

    # when
    document = json.loads(canonical_json(invoice))

    # then: vcpu first half 1.5 x 0.125 = 0.1875 - 12.5% (0.0234375) = 0.1640625 -> 0.16
    vcpu = next(line for line in document["lines"] if line["sku"] == "vcpu")
    assert vcpu["subtotal"] == "0.1875"
    assert vcpu["discount_amount"] == "0.0234375"
    assert vcpu["amount"] == "0.16"
    assert vcpu["segment_start"] == "2024-05-01T00:00:00.000000Z"
    assert vcpu["hours"] == ["2024-05-03T01:00:00.000000Z"]
    assert vcpu["plan_kind"] == "per_unit"
    assert document["positions"] == [[0, 11], [1, 9], [2, 2]]
    assert len(invoice_hash(invoice)) == 64


def test_mixed_invoice_total_by_hand() -> None:
    # given
    invoice = draft(mixed_usage(), mixed_catalog(), MIXED_CONTRACT)

    # then:
    # disk 60 graduated = 31 (May 1-25) -> 31.00
    # egress 250 package -> 3 x 2.5 = 7.50
    # vcpu May 1-16: 1.5 x 0.125 = 0.1875 - 12.5% = 0.1640625 -> 0.16
    # vcpu May 16-25: 2.25 x 0.25 = 0.5625 - 12.5% = 0.4921875 -> 0.49
    # lines 31 + 7.50 + 0.16 + 0.49 = 39.15; commitment 60 -> true-up 20.85
    assert [(line.sku, str(line.amount)) for line in invoice.lines] == [
        ("disk", "31.00"),
        ("egress", "7.50"),
        ("vcpu", "0.16"),
        ("vcpu", "0.49"),
        ("", "20.85"),
    ]
    assert invoice.total == D(60)
    assert invoice.unpriced == (
        UnpricedUsage("gpu.h100", "hour", D(1), "SKU gpu.h100 is not in the catalog"),
    )


def test_correction_of_a_late_pulse_is_a_debit_note() -> None:
    # given: the finalized draft; then a late pulse adds 0.75 vcpu-hour to the May 20 hour
    products = catalog(
        product("vcpu", (LONG_AGO, per_unit("1")), (date(2024, 5, 16), per_unit("2")))
    )
    before = [row("vcpu", at(3), "10", offset=1), row("vcpu", at(20), "5", offset=2)]
    after = [row("vcpu", at(3), "10", offset=1), row("vcpu", at(20), "5.75", offset=8)]
    original, revised = draft(before, products), draft(after, products)

    # when
    lines = correction(original, revised)

    # then: 0.75 x 2 = 1.50 more on the second segment only
    assert lines == (CorrectionLine("vcpu", at(16), "usage", D("0.75"), D("1.50")),)
    assert total_delta(lines) == revised.total - original.total == D("1.5")
    assert note_kind(total_delta(lines)) == "debit"
    assert invoice_hash(original) != invoice_hash(revised)


def test_correction_counts_lines_on_one_side_fully_and_can_credit() -> None:
    # given: volume tiers (10 at 1.00, then 0.50); late usage moves 10 into the cheaper
    # tier and a late pulse lands in a new SKU
    products = catalog(
        product("disk", (LONG_AGO, VOLUME)), product("vcpu", (LONG_AGO, per_unit("1")))
    )
    original = draft([row("disk", at(3), "10")], products)
    revised = draft([row("disk", at(3), "11"), row("vcpu", at(4), "2")], products)

    # when
    lines = correction(original, revised)

    # then: disk 10 x 1 = 10 -> 11 x 0.5 = 5.50: -4.50; vcpu new: +2.00; total -2.50
    assert lines == (
        CorrectionLine("disk", MAY_1, "usage", D(1), D("-4.50")),
        CorrectionLine("vcpu", MAY_1, "usage", D(2), D("2.00")),
    )
    assert total_delta(lines) == D("-2.5")
    assert note_kind(total_delta(lines)) == "credit"
    assert correction(revised, original)[0].amount_delta == D("4.50")
    assert correction(original, original) == ()
    assert note_kind(total_delta(())) == "none"


def test_correction_refuses_drafts_of_different_invoices() -> None:
    # given
    products = catalog(product("vcpu", (LONG_AGO, per_unit("1"))))
    may = draft([], products)
    june = draft_invoice(TENANT, "2024-06", [], products, None)

    # when / then
    with pytest.raises(ValueError, match="period"):
        correction(may, june)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ([row("vcpu", at(2), "1", tenant="other")], "belongs to 'other'"),
        ([row("vcpu", datetime(2024, 6, 1, tzinfo=UTC), "1")], "outside the period 2024-05"),
        ([row("vcpu", datetime(2024, 4, 30, 23, tzinfo=UTC), "1")], "outside the period"),
        ([row("vcpu", at(2), "1"), row("vcpu", at(2), "2")], "given twice"),
        ([row("vcpu", at(2), "-1")], "quantity -1"),
    ],
)
def test_rows_that_do_not_belong_to_the_invoice_are_refused(
    usage: list[HourlyUsage], message: str
) -> None:
    # given
    products = catalog(product("vcpu", (LONG_AGO, per_unit("1"))))

    # when / then
    with pytest.raises(ValueError, match=message):
        draft(usage, products)


@pytest.mark.parametrize("period", ["2024-13", "2024-5", "24-05", "2024-05-01", ""])
def test_period_must_be_a_calendar_month(period: str) -> None:
    # when / then
    with pytest.raises(ValueError, match="YYYY-MM"):
        period_bounds(period)


def test_december_ends_at_the_next_new_year() -> None:
    # when / then
    assert period_bounds("2024-12") == (
        datetime(2024, 12, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )


def test_contract_of_another_tenant_or_versions_out_of_order_are_refused() -> None:
    # given
    products = catalog(product("vcpu", (LONG_AGO, per_unit("1"))))
    out_of_order = contract(ContractVersion(date(2024, 5, 2)), ContractVersion(date(2024, 5, 1)))

    # when / then
    with pytest.raises(ValueError, match="contract of 'beta'"):
        draft([], products, ContractTerms("beta"))
    with pytest.raises(ValueError, match="strictly ascending"):
        draft([], products, out_of_order)


def test_mixed_currencies_are_refused() -> None:
    # given
    products = catalog(
        product("vcpu", (LONG_AGO, per_unit("1"))),
        product("disk", (LONG_AGO, per_unit("1")), currency="USD"),
    )

    # when / then
    with pytest.raises(ValueError, match="mixes"):
        draft([row("vcpu", at(2), "1"), row("disk", at(2), "1")], products)


def test_charge_refuses_malformed_plans() -> None:
    # given
    bad = [
        tiered(PlanKind.GRADUATED),
        tiered(PlanKind.VOLUME, (None, "1"), ("10", "1")),
        tiered(PlanKind.GRADUATED, ("10", "1"), ("5", "1")),
        package("0", "1"),
        per_unit("-1"),
    ]

    # when / then
    for plan in bad:
        with pytest.raises(ValueError):
            charge(plan, D(1))


def test_pricing_modules_import_no_io_library() -> None:
    # when
    found = io_imports_of(["catalog.pricing", "catalog.invoice"])

    # then
    assert found == set()
