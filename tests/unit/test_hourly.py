"""derive_hour(): exact sums per tenant-hour-SKU-unit, with unpriced usage kept visible."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ledger.model import LedgerEvent, Position
from projections.hourly import HourlyUsage, derive_hour
from tests.unit.helpers import BYTE_FACTORS, T0, WIDE, catalog, event, pulse

BILLING = catalog().billing_unit


def only(rows: list[HourlyUsage]) -> HourlyUsage:
    assert len(rows) == 1, rows
    return rows[0]


def test_mb_pulses_sum_exactly_into_a_gb_bucket() -> None:
    # given: 250 MB + 750.5 MB + 1 GB = 0.25 + 0.7505 + 1 GB
    events = [
        event(pulse("a", amount="250", unit="MB", at=T0 + timedelta(minutes=30)), offset=4),
        event(pulse("b", amount="750.5", unit="MB", at=T0 + timedelta(minutes=5)), offset=9),
        event(pulse("c", amount="1", unit="GB", at=T0 + timedelta(minutes=59)), offset=2),
    ]

    # when
    row = only(derive_hour(events, BILLING))

    # then
    assert (row.tenant_id, row.hour, row.product_sku, row.unit) == (
        "acme",
        T0,
        "network.egress",
        "GB",
    )
    assert row.quantity == Decimal("2.0005")
    assert row.pulse_count == 3
    assert row.first_event == T0 + timedelta(minutes=5)
    assert row.last_event == T0 + timedelta(minutes=59)
    assert row.position == Position(0, 9)
    assert row.priced and row.unpriced_reason == ""


def test_unknown_sku_stays_in_its_own_unit_and_says_why() -> None:
    # given
    events = [
        event(pulse("a", sku="gpu.h100", amount="2", unit="hour"), 0),
        event(pulse("b", sku="gpu.h100", amount="3", unit="hour"), 1),
    ]

    # when
    row = only(derive_hour(events, BILLING))

    # then
    assert (row.product_sku, row.unit, row.quantity, row.pulse_count) == (
        "gpu.h100",
        "hour",
        Decimal(5),
        2,
    )
    assert not row.priced
    assert "gpu.h100" in row.unpriced_reason


def test_an_inexact_conversion_stays_in_its_own_unit_beside_the_priced_bucket() -> None:
    # given: 60 vCPU-minute is 1 vCPU-hour; 7 vCPU-minute is not expressible exactly
    events = [
        event(pulse("a", sku="compute.vcpu", amount="60", unit="vCPU-minute"), 0),
        event(pulse("b", sku="compute.vcpu", amount="7", unit="vCPU-minute"), 1),
    ]

    # when
    rows = {r.unit: r for r in derive_hour(events, BILLING)}

    # then
    assert set(rows) == {"vCPU-hour", "vCPU-minute"}
    assert (rows["vCPU-hour"].quantity, rows["vCPU-hour"].priced) == (Decimal(1), True)
    assert rows["vCPU-minute"].quantity == Decimal(7)
    assert "vCPU-minute" in rows["vCPU-minute"].unpriced_reason


def test_an_incompatible_unit_in_the_ledger_stays_unpriced() -> None:
    # given: accepted before the catalog billed this SKU in GB
    events = [event(pulse("a", sku="network.egress", amount="4", unit="vCPU-hour"), 0)]

    # when
    row = only(derive_hour(events, BILLING))

    # then
    assert (row.unit, row.quantity, row.priced) == ("vCPU-hour", Decimal(4), False)


def test_one_vcpu_second_is_not_rounded_into_vcpu_hours() -> None:
    # given
    events = [event(pulse("a", sku="compute.vcpu", amount="1", unit="vCPU-second"), 0)]

    # when
    row = only(derive_hour(events, BILLING))

    # then: 1/3600 does not terminate, so it must stay in vCPU-second, unpriced
    assert (row.unit, row.quantity, row.priced) == ("vCPU-second", Decimal(1), False)


def test_a_38_digit_sum_is_not_rounded() -> None:
    # given: the default decimal context (28 digits) would round this sum
    amount = "12345678901234567890.123456789012345678"
    events = [event(pulse("a", amount=amount), 0), event(pulse("b", amount=amount), 1)]

    # when
    row = only(derive_hour(events, BILLING))

    # then
    assert row.quantity == Decimal("24691357802469135780.246913578024691356")


def test_rows_are_split_by_tenant_sku_and_hour_and_sorted() -> None:
    # given
    later = T0 + timedelta(hours=1)
    events = [
        event(pulse("a", tenant="globex", amount="1"), 0),
        event(pulse("b", sku="api.requests", amount="3", unit="1k-requests"), 1),
        event(pulse("c", amount="2", at=later), 2),
        event(pulse("d", amount="5"), 3),
    ]

    # when
    rows = derive_hour(events, BILLING)

    # then
    summary = [(r.tenant_id, r.product_sku, r.hour, r.unit, r.quantity) for r in rows]
    assert summary == [
        ("acme", "api.requests", T0, "request", Decimal(3000)),
        ("acme", "network.egress", T0, "GB", Decimal(5)),
        ("acme", "network.egress", later, "GB", Decimal(2)),
        ("globex", "network.egress", T0, "GB", Decimal(1)),
    ]


def test_no_events_no_rows() -> None:
    # given / when / then
    assert derive_hour([], BILLING) == []


# --- property: nothing is lost or invented in conversion ------------------------------------

byte_pulses = st.lists(
    st.tuples(
        st.sampled_from(["network.egress", "unknown.sku"]),
        st.sampled_from(sorted(BYTE_FACTORS)),
        st.integers(0, 10**28 - 1),
        st.integers(0, 18),
        st.integers(0, 3599),
    ),
    min_size=1,
    max_size=25,
)


@given(specs=byte_pulses)
def test_bucket_totals_in_bytes_equal_the_inputs_in_bytes(
    specs: list[tuple[str, str, int, int, int]],
) -> None:
    # given
    events: list[LedgerEvent] = []
    expected = {"network.egress": Decimal(0), "unknown.sku": Decimal(0)}
    for offset, (sku, unit, digits, places, second) in enumerate(specs):
        amount = Decimal(digits).scaleb(-places)
        at = T0 + timedelta(seconds=second)
        events.append(
            event(pulse(f"p{offset}", sku=sku, amount=str(amount), unit=unit, at=at), offset)
        )
        expected[sku] = WIDE.add(expected[sku], WIDE.multiply(amount, BYTE_FACTORS[unit]))

    # when
    rows = derive_hour(events, BILLING)

    # then
    actual = {"network.egress": Decimal(0), "unknown.sku": Decimal(0)}
    for row in rows:
        actual[row.product_sku] = WIDE.add(
            actual[row.product_sku], WIDE.multiply(row.quantity, BYTE_FACTORS[row.unit])
        )
    assert actual == expected
    assert sum(r.pulse_count for r in rows) == len(specs)
    assert all(r.unit == "GB" for r in rows if r.product_sku == "network.egress")
