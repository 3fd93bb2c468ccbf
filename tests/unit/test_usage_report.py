"""Usage by region and resource (derive_detail) and the usage report: UTC buckets, groups,
units never added together, unpriced usage kept apart, and every bad parameter named."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.errors import Invalid
from ledger.model import LedgerEvent
from projections.hourly import HourlyUsage, UsageDetail, derive_detail, derive_hour
from projections.usage_report import (
    UsageReport,
    bucket,
    fill_unattributed,
    parse_group_by,
    summarize,
    usage_query,
)
from tests.unit.helpers import catalog, event, pulse

BILLING = catalog().billing_unit
NEW_YEAR = datetime(2025, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def events(*specs: tuple[str, str, str, str, str, str]) -> list[LedgerEvent]:
    """(time, sku, amount, unit, region, resource) -> one event each, offsets in order."""
    return [
        event(
            pulse(f"p-{i}", sku=sku, amount=amount, unit=unit, at=at(t), region=g, resource_id=r),
            offset=i,
        )
        for i, (t, sku, amount, unit, g, r) in enumerate(specs)
    ]


def detail_of(evs: list[LedgerEvent]) -> list[UsageDetail]:
    """derive_detail per hour, as the projector derives each tenant-hour on its own."""
    hours: dict[datetime, list[LedgerEvent]] = defaultdict(list)
    for e in evs:
        hours[e.hour].append(e)
    return [row for hour in sorted(hours) for row in derive_detail(hours[hour], BILLING)]


def rows_of(report: UsageReport) -> list[tuple[str, str | None, str | None, str | None, str, str]]:
    return [
        (
            r.period_start.isoformat()[:16],
            r.product_sku,
            r.resource_id,
            r.region,
            r.unit,
            str(r.quantity),
        )
        for r in report.rows
    ]


# --- derive_detail ---------------------------------------------------------------------------


def test_detail_splits_an_hour_by_region_and_resource_in_the_billing_unit() -> None:
    # given: 1500 MB + 0.5 GB on vm-1 in br-se1, 2 GB on vm-2, 1 GB with no region/resource
    evs = events(
        ("2024-05-01T10:05", "network.egress", "1500", "MB", "br-se1", "vm-1"),
        ("2024-05-01T10:10", "network.egress", "0.5", "GB", "br-se1", "vm-1"),
        ("2024-05-01T10:20", "network.egress", "2", "GB", "br-se1", "vm-2"),
        ("2024-05-01T10:30", "network.egress", "1", "GB", "", ""),
    )

    # when
    rows = derive_detail(evs, BILLING)

    # then
    assert [(r.region, r.resource_id, r.unit, r.quantity, r.pulse_count) for r in rows] == [
        ("", "", "GB", Decimal(1), 1),
        ("br-se1", "vm-1", "GB", Decimal(2), 2),
        ("br-se1", "vm-2", "GB", Decimal(2), 1),
    ]
    assert [str(r.position) for r in rows] == ["0:3", "0:1", "0:2"]


def test_detail_keeps_unpriced_usage_in_its_own_unit_with_the_reason() -> None:
    # given: a SKU the catalog does not know, and egress sent in a unit of time
    evs = events(
        ("2024-05-01T10:05", "gpu.h100", "2", "hour", "br-se1", "gpu-1"),
        ("2024-05-01T10:06", "network.egress", "3", "vCPU-hour", "br-se1", "vm-1"),
    )

    # when
    rows = derive_detail(evs, BILLING)

    # then
    assert [(r.product_sku, r.unit, r.quantity, r.priced) for r in rows] == [
        ("gpu.h100", "hour", Decimal(2), False),
        ("network.egress", "vCPU-hour", Decimal(3), False),
    ]
    assert "gpu.h100" in rows[0].unpriced_reason
    assert rows[1].unpriced_reason


AMOUNTS = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False)
PULSES = st.lists(
    st.tuples(
        st.sampled_from(["network.egress", "storage.block", "unknown.sku"]),
        st.sampled_from(["GB", "MB", "GB-hour", "request"]),
        st.sampled_from(["", "br-se1", "br-ne1"]),
        st.sampled_from(["", "vm-1", "vm-2", "disk-1"]),
        AMOUNTS,
    ),
    max_size=30,
)


@given(PULSES)
def test_detail_summed_over_region_and_resource_is_the_hourly_usage(
    specs: list[tuple[str, str, str, str, Decimal]],
) -> None:
    # given: any pulses of one tenant-hour
    evs = [
        event(pulse(f"p-{i}", sku=s, amount=str(a), unit=u, region=g, resource_id=r), offset=i)
        for i, (s, u, g, r, a) in enumerate(specs)
    ]

    # when
    summed: dict[tuple[str, str], tuple[Decimal, int]] = {}
    for d in derive_detail(evs, BILLING):
        quantity, count = summed.get((d.product_sku, d.unit), (Decimal(0), 0))
        summed[(d.product_sku, d.unit)] = (quantity + d.quantity, count + d.pulse_count)

    # then: the same buckets, quantities and counts (so the same events_covered version)
    hourly = {
        (h.product_sku, h.unit): (h.quantity, h.pulse_count) for h in derive_hour(evs, BILLING)
    }
    assert summed == hourly


# --- buckets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "granularity", "expected"),
    [
        ("2024-12-31T23:00", "hour", ("2024-12-31T23:00", "2025-01-01T00:00")),
        ("2024-12-31T23:00", "day", ("2024-12-31T00:00", "2025-01-01T00:00")),
        ("2024-12-31T23:00", "month", ("2024-12-01T00:00", "2025-01-01T00:00")),
        ("2025-01-01T00:00", "day", ("2025-01-01T00:00", "2025-01-02T00:00")),
        ("2025-01-01T00:00", "month", ("2025-01-01T00:00", "2025-02-01T00:00")),
        ("2024-02-29T05:00", "day", ("2024-02-29T00:00", "2024-03-01T00:00")),
        ("2024-02-29T05:00", "month", ("2024-02-01T00:00", "2024-03-01T00:00")),
        ("2023-02-28T23:00", "month", ("2023-02-01T00:00", "2023-03-01T00:00")),
    ],
)
def test_buckets_are_utc_calendar_periods(
    hour: str, granularity: str, expected: tuple[str, str]
) -> None:
    assert bucket(at(hour), granularity) == (at(expected[0]), at(expected[1]))


def test_an_hour_given_at_another_offset_falls_in_its_utc_day() -> None:
    # 2025-01-01T01:00+03:00 is 2024-12-31T22:00Z: still December 31st in UTC
    local = datetime.fromisoformat("2025-01-01T01:00:00+03:00")
    assert bucket(local, "day") == (at("2024-12-31T00:00"), at("2025-01-01T00:00"))


# --- the report ------------------------------------------------------------------------------

ACROSS_NEW_YEAR = events(
    ("2024-12-31T22:10", "network.egress", "1", "GB", "br-se1", "vm-1"),
    ("2024-12-31T23:59:59", "network.egress", "2", "GB", "br-ne1", "vm-2"),
    ("2025-01-01T00:00", "network.egress", "4", "GB", "br-se1", "vm-1"),
    ("2025-01-01T00:30", "storage.block", "8", "GB-hour", "br-se1", "disk-1"),
    ("2025-01-01T01:00", "gpu.h100", "16", "hour", "br-se1", "gpu-1"),
)
AROUND = (at("2024-12-31T00:00"), at("2025-01-02T00:00"))


def test_days_split_at_utc_midnight_and_each_row_is_one_sku_in_one_unit() -> None:
    # given / when
    report = summarize(detail_of(ACROSS_NEW_YEAR), usage_query(*AROUND, "day"))

    # then
    assert rows_of(report) == [
        ("2024-12-31T00:00", "network.egress", None, None, "GB", "3"),
        ("2025-01-01T00:00", "gpu.h100", None, None, "hour", "16"),
        ("2025-01-01T00:00", "network.egress", None, None, "GB", "4"),
        ("2025-01-01T00:00", "storage.block", None, None, "GB-hour", "8"),
    ]
    assert [r.period_end.isoformat()[:10] for r in report.rows] == ["2025-01-01"] + [
        "2025-01-02"
    ] * 3


def test_months_split_at_the_year_end() -> None:
    # given / when
    query = usage_query(*AROUND, "month", ["sku"], sku="network.egress")
    report = summarize(detail_of(ACROSS_NEW_YEAR), query)

    # then
    assert rows_of(report) == [
        ("2024-12-01T00:00", "network.egress", None, None, "GB", "3"),
        ("2025-01-01T00:00", "network.egress", None, None, "GB", "4"),
    ]
    assert [(t.product_sku, t.quantity, t.pulse_count) for t in report.totals] == [
        ("network.egress", Decimal(7), 3)
    ]


def test_grouped_by_region_quantities_of_different_units_are_never_added() -> None:
    # given / when: br-se1 holds GB, GB-hour and (unpriced) hours
    query = usage_query(*AROUND, "month", ["region"])
    report = summarize(detail_of(ACROSS_NEW_YEAR), query)

    # then: one total per region and unit; the overall total is per unit
    assert [(t.region, t.unit, str(t.quantity), t.priced) for t in report.totals] == [
        ("br-ne1", "GB", "2", True),
        ("br-se1", "GB", "5", True),
        ("br-se1", "GB-hour", "8", True),
        ("br-se1", "hour", "16", False),
    ]
    assert [(t.unit, str(t.quantity), t.pulse_count) for t in report.overall] == [
        ("GB", "7", 3),
        ("GB-hour", "8", 1),
        ("hour", "16", 1),
    ]
    assert all(t.product_sku is None and t.resource_id is None for t in report.overall)


def test_unpriced_usage_is_a_row_of_its_own_with_its_reason_never_dropped() -> None:
    # given: egress in GB (priced) and in a unit it cannot convert from (unpriced) in one hour
    evs = events(
        ("2025-01-01T00:10", "network.egress", "1", "GB", "br-se1", "vm-1"),
        ("2025-01-01T00:20", "network.egress", "5", "request", "br-se1", "vm-1"),
    )

    # when
    report = summarize(detail_of(evs), usage_query(*AROUND, "day", ["sku", "resource_id"]))

    # then
    assert [(r.resource_id, r.unit, str(r.quantity), r.priced) for r in report.rows] == [
        ("vm-1", "GB", "1", True),
        ("vm-1", "request", "5", False),
    ]
    assert report.rows[1].unpriced_reason and not report.rows[0].unpriced_reason
    assert [(t.unit, t.priced) for t in report.overall] == [("GB", True), ("request", False)]


def test_grouping_by_every_field_and_filtering_by_region_and_resource() -> None:
    # given
    detail = detail_of(ACROSS_NEW_YEAR)

    # when
    by_all = summarize(detail, usage_query(*AROUND, "month", ["sku,resource_id", "region"]))
    vm1 = summarize(detail, usage_query(*AROUND, "hour", ["resource_id"], resource_id="vm-1"))
    ne1 = summarize(detail, usage_query(*AROUND, "day", None, region="br-ne1"))

    # then
    assert rows_of(by_all) == [
        ("2024-12-01T00:00", "network.egress", "vm-1", "br-se1", "GB", "1"),
        ("2024-12-01T00:00", "network.egress", "vm-2", "br-ne1", "GB", "2"),
        ("2025-01-01T00:00", "gpu.h100", "gpu-1", "br-se1", "hour", "16"),
        ("2025-01-01T00:00", "network.egress", "vm-1", "br-se1", "GB", "4"),
        ("2025-01-01T00:00", "storage.block", "disk-1", "br-se1", "GB-hour", "8"),
    ]
    assert rows_of(vm1) == [
        ("2024-12-31T22:00", None, "vm-1", None, "GB", "1"),
        ("2025-01-01T00:00", None, "vm-1", None, "GB", "4"),
    ]
    assert rows_of(ne1) == [("2024-12-31T00:00", "network.egress", None, None, "GB", "2")]


def test_an_empty_region_filter_selects_usage_sent_without_one() -> None:
    # given
    evs = events(
        ("2025-01-01T00:10", "network.egress", "1", "GB", "", "vm-1"),
        ("2025-01-01T00:20", "network.egress", "2", "GB", "br-se1", "vm-1"),
    )

    # when
    report = summarize(detail_of(evs), usage_query(*AROUND, "day", ["region"], region=""))

    # then
    assert rows_of(report) == [("2025-01-01T00:00", None, None, "", "GB", "1")]


def test_the_sku_rows_of_the_projection_answer_grouping_by_sku_exactly() -> None:
    # given: 38 significant digits in two hours of one day
    big = "12345678901234567890.123456789012345678"
    hours = [
        HourlyUsage(
            "acme", h, "network.egress", "GB", Decimal(big), 1, h, h, event(pulse()).position
        )
        for h in (at("2025-01-01T03:00"), at("2025-01-01T04:00"))
    ]

    # when
    query = usage_query(*AROUND, "day")
    report = summarize(hours, query)

    # then
    assert not query.needs_detail
    assert [str(r.quantity) for r in report.rows] == ["24691357802469135780.246913578024691356"]


@pytest.mark.parametrize(
    ("group_by", "region", "resource_id", "needs"),
    [
        (None, None, None, False),
        (["sku"], None, None, False),
        (["region"], None, None, True),
        (["sku"], "br-se1", None, True),
        (["sku"], None, "", True),
    ],
)
def test_only_region_or_resource_needs_the_detail_rows(
    group_by: list[str] | None, region: str | None, resource_id: str | None, needs: bool
) -> None:
    query = usage_query(*AROUND, "day", group_by, region=region, resource_id=resource_id)
    assert query.needs_detail is needs


# --- validation ------------------------------------------------------------------------------


def test_group_by_takes_repeats_and_commas_in_a_fixed_order() -> None:
    assert parse_group_by(None) == ("sku",)
    assert parse_group_by(["region", "sku"]) == ("sku", "region")
    assert parse_group_by(["region,resource_id", "region"]) == ("resource_id", "region")
    assert parse_group_by([" sku , region "]) == ("sku", "region")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": datetime(2025, 1, 1), "end": NEW_YEAR}, "start"),  # noqa: DTZ001
        ({"end": datetime(2025, 1, 2)}, "end"),  # noqa: DTZ001
        ({"end": NEW_YEAR}, "end"),
        ({"end": NEW_YEAR - timedelta(hours=1)}, "end"),
        ({"granularity": "week"}, "granularity"),
        ({"granularity": "HOUR"}, "granularity"),
        ({"granularity": "hour\x1b[2J"}, "granularity"),
        ({"group_by": ["sku", "tenant_id"]}, "group_by"),
        ({"group_by": ["sku,"]}, "group_by"),
        ({"group_by": [""]}, "group_by"),
        ({"sku": ""}, "sku"),
        ({"sku": "a\x00b"}, "sku"),
        ({"region": "br\u202ese1"}, "region"),
        ({"resource_id": "vm\n1"}, "resource_id"),
        ({"resource_id": "x" * 257}, "resource_id"),
    ],
)
def test_every_bad_parameter_is_invalid_naming_its_field(
    kwargs: dict[str, object], field: str
) -> None:
    # given
    args: dict[str, object] = {"start": NEW_YEAR, "end": NEW_YEAR + timedelta(days=1)}
    args.update(kwargs)

    # when / then
    with pytest.raises(Invalid) as raised:
        usage_query(**args)  # type: ignore[arg-type]
    assert str(raised.value).startswith(f"{field}: ")
    assert "\x1b" not in str(raised.value) and "\x00" not in str(raised.value)


@pytest.mark.parametrize(
    ("granularity", "longest"),
    [("hour", timedelta(days=31)), ("day", timedelta(days=366)), ("month", timedelta(days=1827))],
)
def test_a_range_longer_than_its_granularity_allows_is_invalid(
    granularity: str, longest: timedelta
) -> None:
    # given / when: the longest range passes; one hour more is refused, naming end
    usage_query(NEW_YEAR, NEW_YEAR + longest, granularity)
    with pytest.raises(Invalid, match=r"^end: .*at most"):
        usage_query(NEW_YEAR, NEW_YEAR + longest + timedelta(hours=1), granularity)


# --- hours whose detail does not match their SKU rows ----------------------------------------


def test_hours_without_matching_detail_are_answered_by_their_sku_rows_and_named() -> None:
    # given: 00:00 has detail of the same events; 01:00 was projected before detail was kept;
    # 02:00's detail is of an older read (1 event) than its SKU rows (2 events)
    evs = events(
        ("2025-01-01T00:10", "network.egress", "1", "GB", "br-se1", "vm-1"),
        ("2025-01-01T01:10", "network.egress", "2", "GB", "br-se1", "vm-1"),
        ("2025-01-01T02:10", "network.egress", "4", "GB", "br-ne1", "vm-2"),
        ("2025-01-01T02:20", "network.egress", "8", "GB", "br-ne1", "vm-2"),
    )
    by_hour = {h: [e for e in evs if e.hour == h] for h in sorted({e.hour for e in evs})}
    hourly = [r for hour_events in by_hour.values() for r in derive_hour(hour_events, BILLING)]
    first, _, third = by_hour
    detail = derive_detail(by_hour[first], BILLING) + derive_detail(by_hour[third][:1], BILLING)

    # when
    rows, unattributed = fill_unattributed(hourly, detail)
    report = summarize(rows, usage_query(*AROUND, "day", ["region"]))

    # then: the day's total is all 15 GB, 14 of them with region unknown
    assert unattributed == [at("2025-01-01T01:00"), at("2025-01-01T02:00")]
    assert rows_of(report) == [
        ("2025-01-01T00:00", None, None, None, "GB", "14"),
        ("2025-01-01T00:00", None, None, "br-se1", "GB", "1"),
    ]
