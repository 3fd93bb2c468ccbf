"""Properties of the pricing engine, each checked against a formula computed independently here."""

from __future__ import annotations

import random
from bisect import bisect_left
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from catalog.invoice import canonical_json, correction, invoice_hash, total_delta
from catalog.lines import round_line
from catalog.pricing import draft_invoice
from catalog.terms import (
    ContractTerms,
    ContractVersion,
    Discount,
    PlanKind,
    PricePlan,
    Tier,
)
from projections.hourly import HourlyUsage
from tests.unit.test_pricing import (
    LONG_AGO,
    MAY_1,
    PERIOD,
    TENANT,
    at,
    catalog,
    package,
    per_unit,
    product,
    row,
)

# Quantities and prices with a few decimals, spread over several hour rows of one SKU.
quantities = st.decimals(min_value=0, max_value=10**6, places=3)
prices = st.decimals(min_value=0, max_value=1000, places=4)
bounds = st.lists(
    st.decimals(min_value=Decimal("0.001"), max_value=10**5, places=3),
    max_size=4,
    unique=True,
).map(sorted)
percents = st.decimals(min_value=0, max_value=100, places=2)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[list[Decimal], list[Decimal]]:
    """Ascending bounds of the closed tiers and one price per tier (the last tier is open)."""
    closed = draw(bounds)
    return closed, draw(st.lists(prices, min_size=len(closed) + 1, max_size=len(closed) + 1))


def plan_of(kind: PlanKind, closed: list[Decimal], tier_prices: list[Decimal]) -> PricePlan:
    ups: list[Decimal | None] = [*closed, None]
    return PricePlan(kind, tiers=tuple(Tier(up, p) for up, p in zip(ups, tier_prices, strict=True)))


def hours_of(parts: list[Decimal]) -> list[HourlyUsage]:
    return [row("disk", MAY_1 + timedelta(hours=i), str(q)) for i, q in enumerate(parts)]


def priced_once(plan: PricePlan, parts: list[Decimal]) -> tuple[Decimal, Decimal]:
    """(subtotal, amount) of the one line of `parts` of usage under `plan`."""
    invoice = draft_invoice(
        TENANT, PERIOD, hours_of(parts), catalog(product("disk", (LONG_AGO, plan))), None
    )
    (line,) = invoice.lines
    return line.subtotal, line.amount


def exact(parts: list[Decimal]) -> Fraction:
    return sum((Fraction(q) for q in parts), Fraction(0))


@given(tier_lists(), st.lists(quantities, min_size=1, max_size=4))
def test_graduated_equals_the_piecewise_sum(
    tiers: tuple[list[Decimal], list[Decimal]], parts: list[Decimal]
) -> None:
    # given
    closed, tier_prices = tiers
    q = exact(parts)

    # when
    subtotal, _ = priced_once(plan_of(PlanKind.GRADUATED, closed, tier_prices), parts)

    # then: written as marginal steps: each tier start adds (its price - the price below)
    # for every unit above that start
    starts = [Fraction(0), *(Fraction(b) for b in closed)]
    steps = [Fraction(tier_prices[0])] + [
        Fraction(tier_prices[i]) - Fraction(tier_prices[i - 1]) for i in range(1, len(starts))
    ]
    expected = sum(
        (step * max(Fraction(0), q - start) for start, step in zip(starts, steps, strict=True)),
        Fraction(0),
    )
    assert Fraction(subtotal) == expected


@given(tier_lists(), st.lists(quantities, min_size=1, max_size=4))
def test_volume_prices_everything_at_the_tier_of_the_total(
    tiers: tuple[list[Decimal], list[Decimal]], parts: list[Decimal]
) -> None:
    # given
    closed, tier_prices = tiers
    q = exact(parts)

    # when
    subtotal, _ = priced_once(plan_of(PlanKind.VOLUME, closed, tier_prices), parts)

    # then: the tier of q is the number of closed bounds strictly below q (up_to inclusive)
    tier = bisect_left([Fraction(b) for b in closed], q)
    assert Fraction(subtotal) == q * Fraction(tier_prices[tier])


@given(
    st.decimals(min_value=Decimal("0.001"), max_value=10**4, places=3),
    prices,
    st.lists(quantities, min_size=1, max_size=4),
)
def test_package_counts_round_up(size: Decimal, price: Decimal, parts: list[Decimal]) -> None:
    # given
    q = exact(parts)

    # when
    subtotal, _ = priced_once(package(str(size), str(price)), parts)

    # then: ceil(q / size) by integer floor division of the negation
    packages = -(-q // Fraction(size))
    assert Fraction(subtotal) == packages * Fraction(price)
    assert packages * Fraction(size) >= q > (packages - 1) * Fraction(size)


@given(
    st.sampled_from(list(PlanKind)),
    tier_lists(),
    prices,
    percents,
    st.sampled_from(["sku", "category", "all"]),
    st.lists(quantities, min_size=1, max_size=4),
)
def test_a_discount_never_makes_a_line_negative(
    kind: PlanKind,
    tiers: tuple[list[Decimal], list[Decimal]],
    price: Decimal,
    percent: Decimal,
    scope: str,
    parts: list[Decimal],
) -> None:
    # given
    closed, tier_prices = tiers
    plans = {
        PlanKind.PER_UNIT: per_unit(str(price)),
        PlanKind.GRADUATED: plan_of(PlanKind.GRADUATED, closed, tier_prices),
        PlanKind.VOLUME: plan_of(PlanKind.VOLUME, closed, tier_prices),
        PlanKind.PACKAGE: package("7", str(price)),
    }
    discount = {
        "sku": Discount(percent, sku="disk"),
        "category": Discount(percent, category="storage"),
        "all": Discount(percent),
    }[scope]
    terms = ContractTerms(TENANT, (ContractVersion(LONG_AGO, discounts=(discount,)),))

    # when
    invoice = draft_invoice(
        TENANT, PERIOD, hours_of(parts), catalog(product("disk", (LONG_AGO, plans[kind]))), terms
    )

    # then
    (line,) = invoice.lines
    assert line.discount_percent == percent
    assert 0 <= line.amount <= round_line(line.subtotal, "BRL")
    assert Fraction(line.discount_amount) == Fraction(line.subtotal) * Fraction(percent) / 100


SKUS = ["vcpu", "disk", "egress", "gpu.h100"]


@st.composite
def month_of_usage(draw: st.DrawFn) -> list[HourlyUsage]:
    """Rows of distinct (hour, sku) in May 2024, some unpriced, on a few partitions."""
    keys = draw(
        st.lists(
            st.tuples(st.integers(1, 31), st.integers(0, 23), st.sampled_from(SKUS)),
            max_size=12,
            unique=True,
        )
    )
    rows = []
    for offset, (day, hour, sku) in enumerate(keys):
        unpriced = sku == "gpu.h100"
        rows.append(
            row(
                sku,
                at(day, hour),
                str(draw(quantities)),
                unit="hour" if unpriced else "",
                offset=offset,
                partition=draw(st.integers(0, 2)),
                reason="SKU gpu.h100 is not in the catalog" if unpriced else "",
            )
        )
    return rows


PRODUCTS = catalog(
    product("vcpu", (LONG_AGO, per_unit("0.0125", "5")), (date(2024, 5, 16), per_unit("0.03"))),
    product(
        "disk",
        (LONG_AGO, plan_of(PlanKind.GRADUATED, [Decimal(100)], [Decimal("0.1"), Decimal("0.05")])),
    ),
    product("egress", (LONG_AGO, package("100", "2.5"))),
)
TERMS = ContractTerms(
    TENANT,
    (
        ContractVersion(
            LONG_AGO,
            discounts=(Discount(Decimal("7.5"), category="compute"),),
            allowances=(("disk", Decimal(40)),),
        ),
        ContractVersion(
            date(2024, 5, 9),
            discounts=(Discount(Decimal("2.5")),),
            allowances=(("disk", Decimal(60)),),
            commitment=Decimal(50),
        ),
    ),
)


@given(month_of_usage(), st.randoms(use_true_random=False))
def test_repricing_is_deterministic_whatever_the_input_order(
    usage: list[HourlyUsage], rnd: random.Random
) -> None:
    # given
    shuffled = list(usage)
    rnd.shuffle(shuffled)

    # when
    first = draft_invoice(TENANT, PERIOD, usage, PRODUCTS, TERMS)
    second = draft_invoice(TENANT, PERIOD, shuffled, PRODUCTS, TERMS)

    # then
    assert canonical_json(first) == canonical_json(second)
    assert invoice_hash(first) == invoice_hash(second)
    assert first.total == sum((line.amount for line in first.lines), Decimal(0))
    # every row is either on a line (by its hour) or listed unpriced, never dropped
    priced = sum((line.quantity for line in first.lines), Decimal(0))
    listed = sum((u.quantity for u in first.unpriced), Decimal(0))
    assert priced + listed == sum((r.quantity for r in usage), Decimal(0))


@given(month_of_usage(), month_of_usage())
def test_a_correction_adds_up_to_the_difference_of_totals(
    before: list[HourlyUsage], after: list[HourlyUsage]
) -> None:
    # given
    original = draft_invoice(TENANT, PERIOD, before, PRODUCTS, TERMS)
    revised = draft_invoice(TENANT, PERIOD, after, PRODUCTS, TERMS)

    # when
    lines = correction(original, revised)

    # then
    assert total_delta(lines) == revised.total - original.total


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=3, max_value=40))
def test_round_line_is_half_even_on_cents(units: int, places: int) -> None:
    # given: units x 10^-places, exact
    amount = Decimal(units).scaleb(-places)

    # when
    rounded = round_line(amount, "BRL")

    # then: Python's round() of a Fraction rounds half to even
    assert Fraction(rounded) == Fraction(round(Fraction(units, 10**places) * 100), 100)
    assert rounded.as_tuple().exponent == -2
