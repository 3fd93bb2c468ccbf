"""GET /v1/tenants/{t}/usage through the real app, on the SQLite and the Cassandra stores:
usage projected from ledger events by the projector's own path, grouped, bucketed, as JSON
and as CSV (the same rows), and every bad parameter answered 422 naming it."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.model import LedgerEvent
from ledger.ports import LedgerStore
from projections.hourly import UnitsAt, derive_hour
from projections.ports import UsageStore
from projections.runner import project_hours
from query.app import create_app
from tests.unit.helpers import catalog, event, pulse

BILLING = catalog().billing_unit
SAME_BACKEND = [
    ("sqlite", "sqlite"),
    pytest.param("cassandra", "cassandra", marks=pytest.mark.servers),
]
NOVEMBER = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}


@dataclass
class Api:
    http: TestClient
    tenant: str

    @property
    def usage(self) -> str:
        return f"/v1/tenants/{self.tenant}/usage"

    def get(self, params: dict[str, Any], **headers: str) -> Any:
        response = self.http.get(self.usage, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response


# (time, sku, amount, unit, region, resource): one tenant's November, 23:00 and 00:00 on both
# sides of the month ends, pulses without region or resource, and a SKU the catalog lacks.
PULSES = [
    ("2026-10-31T23:30", "network.egress", "100", "GB", "br-se1", "vm-1"),
    ("2026-11-01T00:10", "network.egress", "1500", "MB", "br-se1", "vm-1"),
    ("2026-11-01T00:20", "network.egress", "0.25", "GB", "br-ne1", "vm-2"),
    ("2026-11-01T23:59:59", "network.egress", "2", "GB", "br-se1", "vm-1"),
    ("2026-11-02T00:00", "storage.block", "720", "GB-hour", "br-se1", "disk-1"),
    ("2026-11-02T05:00", "network.egress", "1", "GB", "", ""),
    ("2026-11-15T12:00", "gpu.h100", "3", "hour", "br-se1", "gpu-1"),
    ("2026-11-30T23:00", "network.egress", "0.000000000000000001", "GB", "br-ne1", "vm-2"),
    ("2026-12-01T00:00", "network.egress", "1000", "GB", "br-se1", "vm-1"),
]


def ledger_events(tenant: str) -> list[LedgerEvent]:
    return [
        event(
            pulse(
                f"p-{i}",
                tenant=tenant,
                sku=sku,
                amount=amount,
                unit=unit,
                at=datetime.fromisoformat(t).replace(tzinfo=UTC),
                region=region,
                resource_id=resource,
            ),
            offset=i,
        )
        for i, (t, sku, amount, unit, region, resource) in enumerate(PULSES)
    ]


@pytest.fixture
def api(ledger_store: LedgerStore, usage_store: UsageStore) -> Iterator[Api]:
    """The app over one backend's stores, with PULSES written and projected for a fresh
    tenant (the Cassandra keyspace is shared by the test session)."""
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    events = ledger_events(tenant)
    ledger_store.append(events)
    project_hours(
        {(tenant, e.hour) for e in events}, ledger_store, usage_store, UnitsAt(BILLING, 0)
    )
    app = create_app(ledger_store, usage_store, auth=None, billing_unit_of=BILLING)
    with TestClient(app) as http:
        yield Api(http, tenant)


def rows(body: dict[str, Any], *fields: str) -> list[tuple[Any, ...]]:
    return [tuple(r[f] for f in fields) for r in body["rows"]]


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_by_day_and_sku_with_totals_per_unit(api: Api) -> None:
    # given / when
    body = api.get({**NOVEMBER, "granularity": "day"}).json()

    # then
    assert rows(body, "period_start", "product_sku", "unit", "quantity", "pulse_count") == [
        ("2026-11-01T00:00:00+00:00", "network.egress", "GB", "3.75", 3),
        ("2026-11-02T00:00:00+00:00", "network.egress", "GB", "1", 1),
        ("2026-11-02T00:00:00+00:00", "storage.block", "GB-hour", "720", 1),
        ("2026-11-15T00:00:00+00:00", "gpu.h100", "hour", "3", 1),
        ("2026-11-30T00:00:00+00:00", "network.egress", "GB", "0.000000000000000001", 1),
    ]
    assert body["rows"][0]["period_end"] == "2026-11-02T00:00:00+00:00"
    assert all(r["region"] is None and r["resource_id"] is None for r in body["rows"])
    assert [(t["product_sku"], t["unit"], t["quantity"]) for t in body["totals"]] == [
        ("gpu.h100", "hour", "3"),
        ("network.egress", "GB", "4.750000000000000001"),
        ("storage.block", "GB-hour", "720"),
    ]
    assert [(t["unit"], t["quantity"], t["pulse_count"]) for t in body["overall"]] == [
        ("GB", "4.750000000000000001", 5),
        ("GB-hour", "720", 1),
        ("hour", "3", 1),
    ]
    assert (body["granularity"], body["group_by"], body["as_of"]) == ("day", ["sku"], None)


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_unpriced_usage_is_marked_with_its_reason_not_dropped(api: Api) -> None:
    # given / when
    body = api.get({**NOVEMBER, "granularity": "month", "sku": "gpu.h100"}).json()

    # then
    [row] = body["rows"]
    assert (row["unit"], row["quantity"], row["priced"]) == ("hour", "3", False)
    assert "gpu.h100" in row["unpriced_reason"]
    assert [t["priced"] for t in body["overall"]] == [False]


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_by_month_region_and_resource_from_the_detail_rows(api: Api) -> None:
    # given / when: October's last hour, November and December's first hour
    params = {
        "start": "2026-10-31T23:00:00Z",
        "end": "2026-12-01T01:00:00Z",
        "granularity": "month",
        "group_by": "region,resource_id",
        "sku": "network.egress",
    }
    body = api.get(params).json()

    # then
    assert rows(body, "period_start", "resource_id", "region", "quantity") == [
        ("2026-10-01T00:00:00+00:00", "vm-1", "br-se1", "100"),
        ("2026-11-01T00:00:00+00:00", "", "", "1"),
        ("2026-11-01T00:00:00+00:00", "vm-1", "br-se1", "3.5"),
        ("2026-11-01T00:00:00+00:00", "vm-2", "br-ne1", "0.250000000000000001"),
        ("2026-12-01T00:00:00+00:00", "vm-1", "br-se1", "1000"),
    ]
    assert all(r["product_sku"] is None for r in body["rows"])
    assert body["group_by"] == ["resource_id", "region"]


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_filters_by_region_and_resource_with_repeated_group_by(api: Api) -> None:
    # given / when
    in_ne1 = api.get({**NOVEMBER, "group_by": ["sku", "region"], "region": "br-ne1"}).json()
    vm1 = api.get({**NOVEMBER, "granularity": "day", "resource_id": "vm-1"}).json()
    nowhere = api.get({**NOVEMBER, "granularity": "month", "region": ""}).json()

    # then
    assert rows(in_ne1, "period_start", "product_sku", "region", "quantity") == [
        ("2026-11-01T00:00:00+00:00", "network.egress", "br-ne1", "0.25"),
        ("2026-11-30T23:00:00+00:00", "network.egress", "br-ne1", "0.000000000000000001"),
    ]
    assert rows(vm1, "period_start", "product_sku", "quantity") == [
        ("2026-11-01T00:00:00+00:00", "network.egress", "3.5")
    ]
    assert rows(nowhere, "product_sku", "quantity") == [("network.egress", "1")]


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_as_of_positions_derives_grouped_usage_from_the_ledger(api: Api) -> None:
    # given / when: only the first three pulses (offsets 0-2 of partition 0)
    params = {**NOVEMBER, "granularity": "day", "group_by": "region", "as_of": "0:2"}
    body = api.get(params).json()

    # then
    assert rows(body, "period_start", "region", "quantity") == [
        ("2026-11-01T00:00:00+00:00", "br-ne1", "0.25"),
        ("2026-11-01T00:00:00+00:00", "br-se1", "1.5"),
    ]
    assert body["as_of"] == "0:2"


def csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    found = list(reader)
    return list(reader.fieldnames or []), found


def as_text(row: dict[str, Any], columns: list[str]) -> dict[str, str]:
    """A JSON row as CSV writes it: booleans true/false, numbers in decimal."""
    shown = {True: "true", False: "false"}
    return {c: shown[row[c]] if isinstance(row[c], bool) else str(row[c]) for c in columns}


CSV_QUERIES = [
    {**NOVEMBER},
    {**NOVEMBER, "granularity": "day", "group_by": "sku,region,resource_id"},
    {**NOVEMBER, "granularity": "month", "group_by": "resource_id", "region": "br-se1"},
]


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
@pytest.mark.parametrize("params", CSV_QUERIES, ids=["hour-sku", "day-all", "month-resource"])
def test_csv_holds_the_same_rows_as_json(api: Api, params: dict[str, str]) -> None:
    # given / when: CSV asked for by format= and by Accept
    body = api.get(params).json()
    by_format = api.get({**params, "format": "csv"})
    by_accept = api.get(params, accept="text/csv")

    # then
    assert by_format.headers["content-type"].startswith("text/csv")
    assert by_accept.text == by_format.text
    columns, found = csv_rows(by_format.text)
    grouped = {"sku": "product_sku"}
    wanted_groups = [grouped.get(g, g) for g in body["group_by"]]
    assert columns == [
        "period_start",
        "period_end",
        *[c for c in ("product_sku", "resource_id", "region") if c in wanted_groups],
        "unit",
        "quantity",
        "pulse_count",
        "priced",
        "unpriced_reason",
        "ledger_position",
        *(["attributed"] if {"resource_id", "region"} & set(wanted_groups) else []),
    ]
    assert found == [as_text(r, columns) for r in body["rows"]]
    assert len(found) == len(body["rows"]) > 0


@pytest.mark.parametrize(("ledger_store", "usage_store"), [("sqlite", "sqlite")], indirect=True)
def test_json_wins_when_accept_prefers_it_and_format_json_overrides_accept(api: Api) -> None:
    first_json = api.get(NOVEMBER, accept="application/json, text/csv")
    forced = api.get({**NOVEMBER, "format": "json"}, accept="text/csv")
    assert first_json.headers["content-type"] == "application/json"
    assert forced.headers["content-type"] == "application/json"


HOSTILE: list[tuple[dict[str, Any], str]] = [
    ({**NOVEMBER, "granularity": "week"}, "granularity"),
    ({**NOVEMBER, "granularity": ""}, "granularity"),
    ({**NOVEMBER, "group_by": "sku,tenant_id"}, "group_by"),
    ({**NOVEMBER, "group_by": ["sku", "x" * 5000]}, "group_by"),
    ({**NOVEMBER, "group_by": ["sku"] * 13}, "group_by"),
    ({"start": NOVEMBER["end"], "end": NOVEMBER["start"]}, "end"),
    ({"start": NOVEMBER["start"], "end": NOVEMBER["start"]}, "end"),
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T01:00:00Z"}, "end"),
    (
        {"start": "2016-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "granularity": "month"},
        "end",
    ),
    ({"start": "2026-11-01T00:00:00", "end": NOVEMBER["end"]}, "start"),
    ({"start": NOVEMBER["start"], "end": "2026-12-01"}, "end"),
    ({**NOVEMBER, "sku": "a\x1b[2Jb"}, "sku"),
    ({**NOVEMBER, "sku": ""}, "sku"),
    ({**NOVEMBER, "region": "br\u202ese1"}, "region"),
    ({**NOVEMBER, "resource_id": "vm\r\n1"}, "resource_id"),
    ({**NOVEMBER, "group_by": "region\x00"}, "group_by"),
    ({**NOVEMBER, "format": "xml"}, "format"),
    ({**NOVEMBER, "as_of": ""}, "as_of"),
    ({**NOVEMBER, "as_of": "0:1,x"}, "as_of"),
]


@pytest.mark.parametrize(("ledger_store", "usage_store"), [("sqlite", "sqlite")], indirect=True)
@pytest.mark.parametrize(("params", "field"), HOSTILE)
def test_a_bad_parameter_is_a_422_problem_naming_it(
    api: Api, params: dict[str, Any], field: str
) -> None:
    # given / when: asked as CSV too, an error still comes as problem+json
    response = api.http.get(api.usage, params=params, headers={"accept": "text/csv"})

    # then
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}: "), detail
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not any(c in detail for c in "\x00\x1b\r\n\u202e")
    assert len(detail) < 1000


@pytest.mark.parametrize(("ledger_store", "usage_store"), [("sqlite", "sqlite")], indirect=True)
def test_the_openapi_document_shows_csv_and_examples(api: Api) -> None:
    # given / when
    schema = api.http.get("/openapi.json").json()
    route = schema["paths"]["/v1/tenants/{tenant_id}/usage"]["get"]

    # then
    content = route["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    assert content["text/csv"]["example"].startswith("period_start,period_end,")
    params = {p["name"]: p for p in route["parameters"]}
    assert {"start", "end", "granularity", "group_by", "sku", "region", "resource_id"} <= set(
        params
    )
    assert {"as_of", "format"} <= set(params)
    assert all("examples" in params[n] for n in ("start", "end", "granularity", "group_by"))
    assert schema["components"]["schemas"]["UsageResponse"]["examples"]


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_an_hour_projected_before_detail_was_kept_is_counted_and_named(
    api: Api, ledger_store: LedgerStore, usage_store: UsageStore
) -> None:
    # given: an hour of November written as the projector wrote it before this version
    # (SKU rows only), after the same hour had been projected with its detail
    hour = datetime(2026, 11, 2, 5, tzinfo=UTC)
    late = event(pulse("p-late", tenant=api.tenant, amount="10", at=hour), offset=99)
    ledger_store.append([late])
    sku_rows = derive_hour(ledger_store.events_in_hour(api.tenant, hour), BILLING)
    usage_store.replace_hour(api.tenant, hour, sku_rows)

    # when
    params = {**NOVEMBER, "granularity": "month", "group_by": "region"}
    body = api.get(params).json()
    as_csv = api.get({**params, "format": "csv"})

    # then: its 11 GB (1 of before + 10) are in a region-null row; the GB total is unchanged
    assert body["unattributed_hours"] == ["2026-11-02T05:00:00+00:00"]
    assert rows(body, "region", "unit", "quantity") == [
        (None, "GB", "11"),
        ("br-ne1", "GB", "0.250000000000000001"),
        ("br-se1", "GB", "3.5"),
        ("br-se1", "GB-hour", "720"),
        ("br-se1", "hour", "3"),
    ]
    by_sku = api.get({**NOVEMBER, "granularity": "month"}).json()
    assert body["overall"] == by_sku["overall"]
    assert as_csv.headers["x-unattributed-hours"] == "1"


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_a_tenant_without_usage_gets_empty_lists_and_a_csv_header_only(api: Api) -> None:
    # given: a tenant id that sent nothing
    empty = f"/v1/tenants/t-none-{uuid.uuid4().hex[:6]}/usage"
    params = {**NOVEMBER, "group_by": "region"}

    # when
    body = api.http.get(empty, params=params).json()
    as_csv = api.http.get(empty, params={**params, "format": "csv"}).text

    # then
    assert (body["rows"], body["totals"], body["overall"]) == ([], [], [])
    assert body["unattributed_hours"] == []
    assert as_csv == (
        "period_start,period_end,region,unit,quantity,pulse_count,priced,unpriced_reason,"
        "ledger_position,attributed\n"
    )
