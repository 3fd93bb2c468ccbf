"""Operator routes (reconcile, dead letters) and usage as of positions through the real app,
with real keys: only operator keys reach the operator routes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from access.keys import Role
from access.sqlite import SQLiteKeyStore
from access.verifier import KeyVerifier
from ledger.ports import OutgoingRecord
from ledger.sqlite import partition_of
from projections.reconcile import Reconciliation
from query.app import create_app
from query.operations import OperatorTools
from tests.unit.helpers import catalog
from tests.unit.test_access_http import add_key
from tests.unit.test_replay import NOW, OCT, World, egress, world

__all__ = ["world"]


@pytest.fixture
def api(world: World) -> Iterator[tuple[TestClient, dict[str, str]]]:
    world.publish([egress("acme", "a", "1"), egress("acme", "b", "2"), egress("acme", "c", "4")])
    world.publish([egress("acme", "a", "999")])  # a reused id: a conflict, dead-lettered
    world.write_all()
    keys = SQLiteKeyStore(world.root / "keys.sqlite")
    tokens = {
        "operator": add_key(keys, Role.OPERATOR),
        "tenant": add_key(keys, Role.TENANT, "acme"),
    }
    invoicing = world.invoicing()
    units = catalog().billing_unit
    tools = OperatorTools(
        Reconciliation(world.history, world.log, world.ledger, world.usage, invoicing, units),
        world.log,
    )
    app = create_app(
        world.ledger,
        world.usage,
        invoicing,
        auth=KeyVerifier(keys, ttl=5.0),
        billing_unit_of=units,
        operator_tools=tools,
    )
    with TestClient(app) as http:
        yield http, tokens
    keys.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_operator_reconciles_a_month_over_http(api: tuple[TestClient, dict[str, str]]) -> None:
    http, tokens = api
    response = http.get(
        "/v1/operator/reconcile?period=2026-10", headers=_bearer(tokens["operator"])
    )
    assert response.status_code == 200
    body = response.json()
    assert body["clean"] is True and body["counts"]["conflicts"] == 1
    assert [(r["tenant_id"], r["log"], r["invoiced"]) for r in body["rows"]] == [("acme", "7", "7")]


@pytest.mark.parametrize("who", ["tenant", None])
def test_operator_routes_refuse_other_keys(
    api: tuple[TestClient, dict[str, str]], who: str | None
) -> None:
    http, tokens = api
    headers = _bearer(tokens[who]) if who else {}
    for route in ("/v1/operator/reconcile?period=2026-10", "/v1/operator/dead-letters"):
        response = http.get(route, headers=headers)
        assert response.status_code == (403 if who else 401), route
        assert response.headers["content-type"] == "application/problem+json"


def test_an_operator_lists_dead_letters_by_reason(api: tuple[TestClient, dict[str, str]]) -> None:
    http, tokens = api
    response = http.get(
        "/v1/operator/dead-letters?reason=conflict", headers=_bearer(tokens["operator"])
    )
    assert response.status_code == 200
    body = response.json()
    assert [(d["reason"], d["key"]) for d in body["items"]] == [("conflict", "acme")]
    assert body["next_cursor"] is None


def test_dead_letters_page_by_arrival_then_position_filtered_by_reason(
    world: World, api: tuple[TestClient, dict[str, str]]
) -> None:
    # given: besides the fixture's conflict, 3 undecodable records and 4 more conflicts
    http, tokens = api
    world.log.publish([OutgoingRecord(b"acme", b"\xff\xfe not a pulse") for _ in range(3)], NOW)
    world.publish([egress("acme", pid, "77") for pid in ("a", "b", "c")])
    world.publish([egress("acme", "b", "78")])
    world.write_all()
    # when: two at a time, conflicts only, following next_cursor
    seen: list[dict[str, str]] = []
    params: dict[str, str] = {"reason": "conflict", "limit": "2"}
    for _ in range(10):
        body = http.get(
            "/v1/operator/dead-letters", params=params, headers=_bearer(tokens["operator"])
        ).json()
        seen.extend(body["items"])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    everything = http.get("/v1/operator/dead-letters", headers=_bearer(tokens["operator"])).json()[
        "items"
    ]
    # then
    assert len(seen) == 5 and {d["reason"] for d in seen} == {"conflict"}
    assert len({d["position"] for d in seen}) == 5
    keys = [(d["arrival"], *map(int, d["position"].split(":"))) for d in seen]
    assert keys == sorted(keys)
    assert sorted(d["reason"] for d in everything) == ["conflict"] * 5 + ["undecodable"] * 3


def test_a_dead_letter_cursor_is_bound_to_its_filters(
    world: World, api: tuple[TestClient, dict[str, str]]
) -> None:
    # given
    http, tokens = api
    world.publish([egress("acme", pid, "77") for pid in ("b", "c")])
    world.write_all()
    first = http.get(
        "/v1/operator/dead-letters?reason=conflict&limit=1", headers=_bearer(tokens["operator"])
    ).json()
    # when: the same cursor with another reason
    response = http.get(
        "/v1/operator/dead-letters",
        params={"reason": "undecodable", "cursor": first["next_cursor"]},
        headers=_bearer(tokens["operator"]),
    )
    # then
    assert response.status_code == 422 and response.json()["detail"].startswith("cursor")


def test_usage_as_of_a_position_counts_only_what_was_at_or_below_it(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    http, tokens = api
    p = partition_of(b"acme", 3)
    day = {"start": OCT.isoformat(), "end": (OCT + timedelta(days=1)).isoformat()}
    response = http.get(
        "/v1/tenants/acme/usage",
        params={**day, "as_of": f"{p}:1"},
        headers=_bearer(tokens["tenant"]),
    )
    assert response.status_code == 200
    assert [r["quantity"] for r in response.json()["rows"]] == ["3"]
    bad = http.get(
        "/v1/tenants/acme/usage", params={**day, "as_of": "x"}, headers=_bearer(tokens["tenant"])
    )
    assert bad.status_code == 422 and "as_of" in bad.json()["detail"]
