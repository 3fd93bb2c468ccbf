"""The read API (the real FastAPI app) over the SQLite ledger and usage stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.model import Position
from ledger.ports import ConflictRecord
from ledger.sqlite_store import SQLiteLedgerStore
from ledger.validation import Rejection, validate
from projections.hourly import HourlyUsage
from projections.sqlite import SQLiteUsageStore
from query.app import create_app
from tests.unit.helpers import NOW, SKEW, T0, event, pulse, raw

USAGE = "/v1/tenants/acme/usage"
DAY = {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}


@dataclass
class Api:
    http: TestClient
    ledger: SQLiteLedgerStore
    usage: SQLiteUsageStore


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    usage = SQLiteUsageStore(tmp_path / "usage.sqlite")
    with TestClient(create_app(ledger, usage, auth=None)) as http:
        yield Api(http, ledger, usage)
    ledger.close()
    usage.close()


def row(
    quantity: str,
    *,
    hour_offset: int = 0,
    sku: str = "network.egress",
    unit: str = "GB",
    reason: str = "",
) -> HourlyUsage:
    hour = T0 + timedelta(hours=hour_offset)
    return HourlyUsage(
        tenant_id="acme",
        hour=hour,
        product_sku=sku,
        unit=unit,
        quantity=Decimal(quantity),
        pulse_count=2,
        first_event=hour + timedelta(minutes=1),
        last_event=hour + timedelta(minutes=2),
        position=Position(1, 41),
        unpriced_reason=reason,
    )


def test_healthz(api: Api) -> None:
    # given / when
    response = api.http.get("/healthz")

    # then
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_usage_rows_carry_exact_decimal_strings(api: Api) -> None:
    # given
    api.usage.replace_hour("acme", T0, [row("12345678.901123456789"), row("7", sku="a.sku")])
    api.usage.replace_hour("acme", T0 + timedelta(hours=1), [row("1.500", hour_offset=1)])
    api.usage.replace_hour("acme", T0 + timedelta(hours=2), [row("1E+3", hour_offset=2)])

    # when
    response = api.http.get(USAGE, params=DAY)

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["tenant_id"] == "acme"
    assert [(r["period_start"], r["product_sku"], r["quantity"]) for r in body["rows"]] == [
        ("2024-05-01T10:00:00+00:00", "a.sku", "7"),
        ("2024-05-01T10:00:00+00:00", "network.egress", "12345678.901123456789"),
        ("2024-05-01T11:00:00+00:00", "network.egress", "1.5"),
        ("2024-05-01T12:00:00+00:00", "network.egress", "1000"),
    ]
    first = body["rows"][1]
    assert (first["unit"], first["pulse_count"], first["ledger_position"]) == ("GB", 2, "1:41")
    assert (first["priced"], first["unpriced_reason"]) == (True, "")


def test_a_38_digit_quantity_is_shown_exactly(api: Api) -> None:
    # given
    api.usage.replace_hour("acme", T0, [row("24691357802469135780.246913578024691356")])

    # when
    response = api.http.get(USAGE, params=DAY)

    # then
    assert response.json()["rows"][0]["quantity"] == "24691357802469135780.246913578024691356"


def test_usage_filters_by_sku_and_range_and_shows_unpriced(api: Api) -> None:
    # given
    api.usage.replace_hour(
        "acme", T0, [row("1"), row("2", sku="gpu.h100", unit="hour", reason="not in catalog")]
    )
    api.usage.replace_hour("acme", T0 + timedelta(hours=1), [row("5", hour_offset=1)])

    # when: the hour after T0 is excluded (end is exclusive)
    response = api.http.get(
        USAGE,
        params={"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z", "sku": "gpu.h100"},
    )

    # then
    rows = response.json()["rows"]
    assert [(r["product_sku"], r["quantity"], r["priced"]) for r in rows] == [
        ("gpu.h100", "2", False)
    ]
    assert rows[0]["unpriced_reason"] == "not in catalog"


def test_usage_times_with_an_offset_are_read_as_utc(api: Api) -> None:
    # given: 10:00 UTC is 13:00 at +03:00
    api.usage.replace_hour("acme", T0, [row("1")])

    # when
    response = api.http.get(
        USAGE, params={"start": "2024-05-01T13:00:00+03:00", "end": "2024-05-01T14:00:00+03:00"}
    )

    # then
    body = response.json()
    assert body["start"] == "2024-05-01T10:00:00+00:00"
    assert [r["quantity"] for r in body["rows"]] == ["1"]


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T10:00:00Z"},
        {"start": "2024-05-02T00:00:00Z", "end": "2024-05-01T00:00:00Z"},
    ],
    ids=["equal", "reversed"],
)
def test_usage_with_end_not_after_start_is_422(api: Api, params: dict[str, str]) -> None:
    # given / when
    response = api.http.get(USAGE, params=params)

    # then
    assert response.status_code == 422
    assert "end" in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [{"end": DAY["end"]}, {"start": "yesterday", "end": DAY["end"]}],
    ids=["no-start", "bad"],
)
def test_usage_with_a_missing_or_bad_start_is_422(api: Api, params: dict[str, str]) -> None:
    # given / when
    response = api.http.get(USAGE, params=params)

    # then
    assert response.status_code == 422
    assert "start" in str(response.json()["detail"])


def test_one_pulse_with_its_position_and_arrival(api: Api) -> None:
    # given
    stored = event(pulse("p-7", amount="1.50"), offset=12, partition=2)
    api.ledger.append([stored])

    # when
    response = api.http.get("/v1/tenants/acme/pulses/p-7")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["used_amount"] == "1.5"
    assert body["ledger_position"] == "2:12"
    assert body["occurred_at"] == "2024-05-01T10:00:00+00:00"
    assert body["arrival"] == "2024-05-01T12:00:00+00:00"
    assert body["payload_hash"] == stored.payload_hash
    assert (body["tenant_id"], body["product_sku"], body["use_unit"]) == (
        "acme",
        "network.egress",
        "GB",
    )


def test_an_unknown_pulse_is_404_naming_it(api: Api) -> None:
    # given: the id exists for another tenant only
    api.ledger.append([event(pulse("p-9", tenant="globex"))])

    # when
    response = api.http.get("/v1/tenants/acme/pulses/p-9")

    # then
    assert response.status_code == 404
    assert "p-9" in response.json()["detail"]
    assert "acme" in response.json()["detail"]


def test_conflicts_list_the_rejected_payload_against_the_kept_one(api: Api) -> None:
    # given
    kept = event(pulse("p-1", amount="1"), offset=3)
    reused = event(pulse("p-1", amount="2.50"), offset=8)
    api.ledger.append([kept])
    api.ledger.record_conflicts([ConflictRecord(reused, kept.payload_hash)])

    # when
    response = api.http.get("/v1/tenants/acme/conflicts")

    # then
    assert response.status_code == 200
    assert response.json()["items"] == [
        {
            "pulse_id": "p-1",
            "ledger_position": "0:8",
            "payload_hash": reused.payload_hash,
            "existing_hash": kept.payload_hash,
            "used_amount": "2.5",
            "occurred_at": "2024-05-01T10:00:00+00:00",
        }
    ]
    assert response.json()["next_cursor"] is None
    assert api.http.get("/v1/tenants/globex/conflicts").json() == {
        "items": [],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/tenants/acme/pulses/nope", {}, 404),
        (USAGE, {"start": "yesterday", "end": DAY["end"]}, 422),
        (USAGE, {"start": DAY["end"], "end": DAY["start"]}, 422),
        ("/v1/tenants/acme/no-such-route", {}, 404),
    ],
    ids=["unknown-pulse", "bad-time", "empty-range", "unknown-route"],
)
def test_every_error_is_problem_json_with_its_status(
    api: Api, path: str, params: dict[str, str], status: int
) -> None:
    # given / when
    response = api.http.get(path, params=params)

    # then
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]


def test_a_bad_query_parameter_is_named_as_the_field(api: Api) -> None:
    # given / when
    response = api.http.get(USAGE, params={"start": "yesterday", "end": DAY["end"]})

    # then
    assert [e["field"] for e in response.json()["errors"]] == ["start"]


def test_conflicts_are_paginated_with_a_bounded_limit_and_an_opaque_cursor(api: Api) -> None:
    # given: 25 conflicts
    kept = event(pulse("p-kept"), offset=1)
    api.ledger.append([kept])
    api.ledger.record_conflicts(
        [
            ConflictRecord(event(pulse(f"p-{i:02d}", amount="2"), offset=10 + i), "h")
            for i in range(25)
        ]
    )

    # when: pages of 10, following next_cursor
    seen: list[str] = []
    params: dict[str, str] = {"limit": "10"}
    pages = 0
    while True:
        body = api.http.get("/v1/tenants/acme/conflicts", params=params).json()
        pages += 1
        seen += [c["pulse_id"] for c in body["items"]]
        if body["next_cursor"] is None:
            break
        params = {"limit": "10", "cursor": body["next_cursor"]}

    # then
    assert pages == 3
    assert seen == [f"p-{i:02d}" for i in range(25)]
    assert len(api.http.get("/v1/tenants/acme/conflicts").json()["items"]) == 25  # default 100


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "-1"},
        {"cursor": "not-a-cursor"},
        {"cursor": ""},
    ],
)
def test_a_bad_limit_or_cursor_is_422_naming_it(api: Api, params: dict[str, str]) -> None:
    # given / when
    response = api.http.get("/v1/tenants/acme/conflicts", params=params)

    # then
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert next(iter(params)) in response.json()["detail"]


@pytest.mark.parametrize(
    "start",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+00:59"],
)
def test_a_time_at_the_edge_of_the_range_with_an_offset_is_422_naming_it(
    api: Api, start: str
) -> None:
    # given / when
    response = api.http.get(USAGE, params={"start": start, "end": DAY["end"]})

    # then
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "start" in response.json()["detail"]


HARD_IDS = ["a/b", "/lead", "trail/", "a//b", "..", "../x", "50%", "%2F", "q?x=1", "h#1", "a b"]
HARD_IDS += ["é/ü", "\\", "&pulse_id=x", "+", "\u200d"]
# Clients remove "." and ".." segments (RFC 3986) and the test client decodes %25 twice:
# those ids read back through the query-parameter route only.
PATH_UNREACHABLE = {"..", "../x", "%2F"}


@pytest.mark.parametrize("pulse_id", HARD_IDS)
def test_every_storable_pulse_id_reads_back(api: Api, pulse_id: str) -> None:
    # given
    api.ledger.append([event(pulse(pulse_id))])

    # when
    by_query = api.http.get("/v1/tenants/acme/pulse", params={"pulse_id": pulse_id})
    by_path = api.http.get(f"/v1/tenants/acme/pulses/{quote(pulse_id, safe='')}")

    # then
    assert by_query.status_code == 200, by_query.text
    assert by_query.json()["pulse_id"] == pulse_id
    if pulse_id not in PATH_UNREACHABLE:
        assert by_path.status_code == 200, by_path.text
        assert by_path.json()["pulse_id"] == pulse_id


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pulse_id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=128))
def test_any_id_validation_accepts_reads_back_by_query(api: Api, pulse_id: str) -> None:
    # given: any id the ingest validation lets into the ledger
    if isinstance(validate(raw(pulse_id=pulse_id), NOW, SKEW), Rejection):
        return
    api.ledger.append([event(pulse(pulse_id))])

    # when
    response = api.http.get("/v1/tenants/acme/pulse", params={"pulse_id": pulse_id})

    # then
    assert response.status_code == 200, response.text
    assert response.json()["pulse_id"] == pulse_id


def test_errors_are_in_the_openapi_schema_as_problem_json(api: Api) -> None:
    # given / when
    schema = api.http.get("/openapi.json").json()

    # then: every route documents its errors with one Problem shape
    assert "Problem" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("404", "422", "503"):
                if path == "/healthz" and status != "503":
                    continue
                content = responses.get(status, {}).get("content", {})
                assert "application/problem+json" in content, f"{method} {path} {status}"
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }


@pytest.mark.parametrize("query", ["skus=storage.block", "grup_by=region", "=0", "SKU=x"])
def test_a_query_parameter_the_route_does_not_take_is_refused_by_name(api: Api, query: str) -> None:
    # given: a misspelt filter would otherwise be ignored and the answer cover every SKU
    # when
    reply = api.http.get(f"{USAGE}?start={DAY['start']}&end={DAY['end']}&{query}")
    # then
    assert reply.status_code == 422
    name = query.split("=", 1)[0]
    assert f"{name}: not a query parameter of this route" in reply.json()["detail"]
    assert "group_by" in reply.json()["detail"]
