"""Tenant isolation through the real read API, with the key store of each backend.

Every tenant route x {own key, another tenant's key, no key, a revoked key, malformed keys,
an operator key, a producer key} (DESIGN invariant 13).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from access.keys import Role, new_key
from access.ports import KeyStore
from access.verifier import KeyVerifier
from catalog.billing import BillingApp
from catalog.files import read_catalog
from ledger.model import LedgerEvent, Position, Pulse
from ledger.sqlite_store import SQLiteLedgerStore
from projections.hourly import UnitsAt
from projections.invoices import Invoicing
from projections.runner import project_hours
from projections.sqlite import SQLiteUsageStore
from pulse.bootstrap import SAMPLE_CATALOG
from query.app import create_app
from tests.backends import STORE_BACKENDS

HOUR = datetime(2026, 10, 7, 9, tzinfo=UTC)
TENANTS = ("acme", "globex")
ROUTES = {
    "usage": "/v1/tenants/{t}/usage?start=2026-10-07T00:00:00Z&end=2026-10-08T00:00:00Z",
    "pulse": "/v1/tenants/{t}/pulses/p-{t}",
    "conflicts": "/v1/tenants/{t}/conflicts",
    "draft": "/v1/tenants/{t}/invoices/2026-10/draft",
    "invoice": "/v1/tenants/{t}/invoices/2026-10",
    "lineage": "/v1/tenants/{t}/invoices/2026-10/lines/compute.vcpu/lineage",
    "invoice list": "/v1/tenants/{t}/invoices",
    "pulse page": "/v1/tenants/{t}/pulses?start=2026-10-07T00:00:00Z&end=2026-10-08T00:00:00Z",
}
COST = 2**10  # scrypt cost of the test keys: the same code, a faster hash


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    http: TestClient
    keys: KeyStore
    clock: Clock
    tokens: dict[str, str]  # case -> key


def key_store_of(backend: str, request: pytest.FixtureRequest, root: Path) -> KeyStore:
    if backend == "sqlite":
        from access.sqlite import SQLiteKeyStore

        return SQLiteKeyStore(root / "keys.sqlite")
    from access.scylla import ScyllaKeyStore

    return ScyllaKeyStore(
        request.getfixturevalue("cql_session"), request.getfixturevalue("migrated_keyspace")
    )


def add_key(store: KeyStore, role: Role, *tenants: str) -> str:
    made = new_key(role, tenants, f"test {role}", datetime.now(UTC), cost=COST)
    store.add(made.record)
    return made.token


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Two tenants with a pulse, hourly usage and a finalized invoice each; keys of every kind."""
    root = tmp_path_factory.mktemp(f"access-{request.param}")
    ledger = SQLiteLedgerStore(root / "ledger.sqlite")
    usage = SQLiteUsageStore(root / "usage.sqlite")
    billing = BillingApp(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(root / "b.db")}
    )
    products = read_catalog(SAMPLE_CATALOG.read_text())
    billing.apply_catalog(products)
    units = {p.sku: p.billing_unit for p in products}
    for offset, tenant in enumerate(TENANTS):
        pulse = Pulse(f"p-{tenant}", tenant, "compute.vcpu", Decimal(100), "vCPU-hour", HOUR)
        ledger.append([LedgerEvent.of(pulse, Position(0, offset), HOUR + timedelta(minutes=1))])
    project_hours([(t, HOUR) for t in TENANTS], ledger, usage, UnitsAt(units.get, 0))
    invoicing = Invoicing(billing, ledger, usage, lambda: {0: len(TENANTS)})
    for tenant in TENANTS:
        invoicing.finalize(tenant, "2026-10")
    keys = key_store_of(request.param, request, root)
    revoked = add_key(keys, Role.TENANT, "acme")
    revoked_id = revoked.split("_")[1]
    keys.revoke(revoked_id, datetime.now(UTC))
    own = add_key(keys, Role.TENANT, "acme")
    tokens = {
        "own": own,
        "other tenant": add_key(keys, Role.TENANT, "globex"),
        "operator": add_key(keys, Role.OPERATOR),
        "producer": add_key(keys, Role.PRODUCER, "acme"),
        "revoked": revoked,
        "wrong secret": own[:-4] + ("AAAA" if not own.endswith("AAAA") else "BBBB"),
        "unknown id": "pl_0000000000000000_" + own.split("_", 2)[2],
        "malformed": "pl_not-a-key",
    }
    clock = Clock()
    app = create_app(ledger, usage, invoicing, auth=KeyVerifier(keys, ttl=5.0, clock=clock))
    with TestClient(app) as http:
        yield World(http, keys, clock, tokens)
    keys.close()
    billing.close()
    ledger.close()
    usage.close()


def get(world: World, route: str, tenant: str, token: str | None) -> tuple[int, dict[str, str]]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = world.http.get(ROUTES[route].format(t=tenant), headers=headers)
    return response.status_code, response.json() if response.content else {}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", ["own", "operator"])
def test_own_and_operator_keys_read_the_tenant(world: World, route: str, case: str) -> None:
    # given / when
    status, body = get(world, route, "acme", world.tokens[case])
    # then
    assert status == 200, body


@pytest.mark.parametrize("route", ROUTES)
def test_an_operator_key_reads_every_tenant(world: World, route: str) -> None:
    assert get(world, route, "globex", world.tokens["operator"])[0] == 200


@pytest.mark.parametrize("route", ROUTES)
def test_another_tenants_key_gets_the_404_of_a_tenant_that_does_not_exist(
    world: World, route: str
) -> None:
    # given: acme exists with data; "nobody" never sent a pulse
    token = world.tokens["other tenant"]
    # when
    existing = world.http.get(ROUTES[route].format(t="acme"), headers=_bearer(token))
    unknown = world.http.get(ROUTES[route].format(t="nobody"), headers=_bearer(token))
    # then: same status, headers and body (but for the id asked for): nothing to probe
    assert existing.status_code == unknown.status_code == 404
    assert existing.headers["content-type"] == unknown.headers["content-type"]
    assert existing.headers["content-type"] == "application/problem+json"
    assert existing.text.replace("acme", "nobody") == unknown.text


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "case", [None, "revoked", "wrong secret", "unknown id", "malformed", "Basic-scheme"]
)
def test_no_key_or_a_bad_one_is_401_with_a_bearer_challenge(
    world: World, route: str, case: str | None
) -> None:
    # given
    if case == "Basic-scheme":
        headers = {"Authorization": "Basic YWNtZTphY21l"}
    else:
        headers = {} if case is None else _bearer(world.tokens[case])
    # when
    response = world.http.get(ROUTES[route].format(t="acme"), headers=headers)
    # then
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


@pytest.mark.parametrize("route", ROUTES)
def test_a_producer_key_may_not_read(world: World, route: str) -> None:
    status, body = get(world, route, "acme", world.tokens["producer"])
    assert (status, body["title"]) == (403, "Forbidden")


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json"])
def test_health_and_the_schema_need_no_key(world: World, path: str) -> None:
    assert world.http.get(path).status_code == 200


def test_a_revoked_key_is_refused_once_the_cache_ttl_has_passed(world: World) -> None:
    # given: a key in use (verified and cached)
    token = add_key(world.keys, Role.TENANT, "acme")
    assert get(world, "usage", "acme", token)[0] == 200
    # when: it is revoked while the process runs
    world.keys.revoke(token.split("_")[1], datetime.now(UTC))
    within = get(world, "usage", "acme", token)[0]
    world.clock.now += 5.001
    after = get(world, "usage", "acme", token)[0]
    # then: trusted at most for the TTL, refused after it
    assert (within, after) == (200, 401)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
