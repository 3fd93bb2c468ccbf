"""The read API (the real FastAPI app) over the SQLite ledger and usage stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger.model import Position
from ledger.ports import ConflictRecord
from ledger.sqlite_store import SQLiteLedgerStore
from projections.hourly import HourlyUsage
from projections.sqlite import SQLiteUsageStore
from query.app import create_app
from tests.unit.helpers import T0, event, pulse

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
    assert [(r["hour"], r["product_sku"], r["quantity"]) for r in body["rows"]] == [
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
    assert response.json() == [
        {
            "pulse_id": "p-1",
            "ledger_position": "0:8",
            "payload_hash": reused.payload_hash,
            "existing_hash": kept.payload_hash,
            "used_amount": "2.5",
            "occurred_at": "2024-05-01T10:00:00+00:00",
        }
    ]
    assert api.http.get("/v1/tenants/globex/conflicts").json() == []


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
