"""The list routes of the read API (invoices, pulses, lineage, operator lists) through the real
app, with real keys, on the SQLite and the Cassandra ledger, usage and event stores."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from access.keys import Role
from access.verifier import KeyVerifier
from catalog.billing import BillingApp
from catalog.files import read_catalog, read_contracts
from ledger.model import LedgerEvent, Position, Pulse
from ledger.ports import ConflictRecord, LedgerStore
from projections.hourly import MeteringUnits, UnitsAt
from projections.invoices import Invoicing
from projections.ports import UsageStore
from projections.runner import project_hours
from pulse.bootstrap import SAMPLE_CATALOG
from query.app import create_app
from tests.backends import STORE_BACKENDS, billing_env
from tests.unit.test_access_http import add_key, key_store_of

SEP = datetime(2026, 9, 3, 8, tzinfo=UTC)
OCT = datetime(2026, 10, 7, 9, tzinfo=UTC)  # three hours of October usage start here
NOV = datetime(2026, 11, 2, 8, tzinfo=UTC)
NOW = datetime(2026, 12, 15, tzinfo=UTC)  # September to November have ended
ARRIVAL = datetime(2026, 12, 1, tzinfo=UTC)
OCT_DAY = {"start": "2026-10-07T00:00:00Z", "end": "2026-10-08T00:00:00Z"}


@dataclass
class World:
    http: TestClient
    ledger: LedgerStore
    acme: str
    globex: str
    tokens: dict[str, str]
    # pulse ids of acme in October in (hour, id bytes) order: all, and by SKU
    october: list[str]
    vcpu: list[str]
    egress: list[str]

    def get(self, path: str, who: str | None = "operator", **params: Any) -> Any:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.http.get(path, params=params or None, headers=headers)


def _pulse(tenant: str, pulse_id: str, sku: str, amount: str, at: datetime) -> Pulse:
    unit = {"compute.vcpu": "vCPU-hour", "network.egress": "GB"}[sku]
    return Pulse(pulse_id, tenant, sku, Decimal(amount), unit, at)


class Writer:
    """Appends to the ledger at increasing offsets and says how far it has committed."""

    def __init__(self, ledger: LedgerStore, usage: UsageStore, units: MeteringUnits) -> None:
        self.ledger, self.usage, self.units = ledger, usage, units
        self.next = 0

    def append(self, pulses: list[Pulse]) -> None:
        events = []
        for p in pulses:
            events.append(LedgerEvent.of(p, Position(0, self.next), ARRIVAL))
            self.next += 1
        self.ledger.append(events)
        project_hours(
            {(e.pulse.tenant_id, e.hour) for e in events}, self.ledger, self.usage, self.units
        )

    def committed(self) -> dict[int, int]:
        return {0: self.next}


def stores(
    backend: str, request: pytest.FixtureRequest, root: Path
) -> tuple[LedgerStore, UsageStore]:
    if backend == "sqlite":
        from ledger.sqlite_store import SQLiteLedgerStore
        from projections.sqlite import SQLiteUsageStore

        return SQLiteLedgerStore(root / "ledger.sqlite"), SQLiteUsageStore(root / "usage.sqlite")
    from ledger.scylla import ScyllaLedgerStore
    from projections.scylla import ScyllaUsageStore

    session = request.getfixturevalue("cql_session")
    keyspace = request.getfixturevalue("migrated_keyspace")
    return ScyllaLedgerStore(session, keyspace), ScyllaUsageStore(session, keyspace)


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """acme: September and October finalized (October with a correction note), November a
    draft, 10% off everything by contract; globex: one pulse in October; conflicts of both."""
    root = tmp_path_factory.mktemp(f"lists-{request.param}")
    run = uuid.uuid4().hex[:8]  # the Cassandra keyspace is shared by the whole test session
    acme, globex = f"acme-{run}", f"globex-{run}"
    ledger, usage = stores(request.param, request, root)
    billing = BillingApp(env=billing_env(request.param, request, root))
    products = read_catalog(SAMPLE_CATALOG.read_text())
    billing.apply_catalog(products)
    billing.apply_contracts(
        read_contracts(
            f"""contracts:
  - tenant_id: {acme}
    amendments:
      - effective_from: "2026-01-01"
        discounts: [{{percent: "10"}}]
"""
        )
    )
    units = UnitsAt({p.sku: p.billing_unit for p in products}.get, 0)
    writer = Writer(ledger, usage, units)
    invoicing = Invoicing(billing, ledger, usage, writer.committed, clock=lambda: NOW)
    # October: 20 x 1 vCPU-hour and 10 x 2 GB of egress over three hours
    october = [
        _pulse(acme, f"v{i:02d}", "compute.vcpu", "1", OCT + timedelta(hours=i % 3, minutes=i))
        for i in range(20)
    ]
    october += [
        _pulse(acme, f"e{i}", "network.egress", "2", OCT + timedelta(hours=i % 3, minutes=30))
        for i in range(10)
    ]
    writer.append([_pulse(acme, "s1", "compute.vcpu", "10", SEP), *october])
    writer.append([_pulse(globex, "g1", "compute.vcpu", "1", OCT)])
    invoicing.finalize(acme, "2026-09")
    invoicing.finalize(acme, "2026-10")
    # late October usage: a correction note; then November's usage stays a draft
    late = _pulse(acme, "late", "compute.vcpu", "100", OCT + timedelta(hours=1, minutes=59))
    writer.append([late])
    assert invoicing.correct(acme, "2026-10") is not None
    writer.append([_pulse(acme, "n1", "compute.vcpu", "10", NOV)])
    for tenant in (acme, globex):
        kept = ledger.get(tenant, "v00" if tenant == acme else "g1")
        assert kept is not None
        reused = [
            LedgerEvent.of(_pulse(tenant, pid, "compute.vcpu", "7", OCT), Position(1, n), ARRIVAL)
            for n, pid in enumerate(["v00", "b", "a"])
        ]
        ledger.record_conflicts([ConflictRecord(r, kept.payload_hash) for r in reused])
    keys = key_store_of(request.param, request, root)
    tokens = {
        "acme": add_key(keys, Role.TENANT, acme),
        "globex": add_key(keys, Role.TENANT, globex),
        "operator": add_key(keys, Role.OPERATOR),
        "producer": add_key(keys, Role.PRODUCER, acme),
    }
    app = create_app(ledger, usage, invoicing, auth=KeyVerifier(keys, ttl=5.0))

    def order(pulses: list[Pulse]) -> list[str]:
        return [
            p.pulse_id
            for p in sorted(pulses, key=lambda p: (p.occurred_at.hour, p.pulse_id.encode()))
        ]

    vcpu = order([p for p in [*october, late] if p.product_sku == "compute.vcpu"])
    egress = order([p for p in october if p.product_sku == "network.egress"])
    with TestClient(app) as http:
        yield World(http, ledger, acme, globex, tokens, order([*october, late]), vcpu, egress)
    keys.close()
    billing.close()
    ledger.close()
    usage.close()


def pages(world: World, path: str, who: str = "operator", **params: Any) -> list[dict[str, Any]]:
    """Every page of a list, following next_cursor."""
    out = []
    cursor = None
    while True:
        extra: dict[str, str] = {} if cursor is None else {"cursor": cursor}
        response = world.get(path, who, **params, **extra)
        assert response.status_code == 200, response.text
        out.append(response.json())
        cursor = out[-1]["next_cursor"]
        if cursor is None:
            return out
        assert len(out) < 100, "next_cursor never ends"


# ----- invoices ------------------------------------------------------------------------------


def test_invoices_are_listed_newest_first_with_status_totals_notes_and_hashes(
    world: World,
) -> None:
    # given: hand-computed totals, 10% off: September 10 vCPU-hour x 0.045 = 0.405 -> 0.40;
    # October 20 x 0.045 x 0.9 = 0.81 plus egress (10 GB free tier, 10 x 0.45) x 0.9 = 4.05;
    # November 10 x 0.045 x 0.9 -> 0.40
    finalized = {
        p: world.get(f"/v1/tenants/{world.acme}/invoices/{p}").json()["sha256"]
        for p in ("2026-09", "2026-10")
    }
    # when: one invoice per page
    got = pages(world, f"/v1/tenants/{world.acme}/invoices", "acme", limit=1)
    # then
    items = [i for page in got for i in page["items"]]
    assert [len(page["items"]) for page in got] == [1, 1, 1]
    listed = world.get(f"/v1/tenants/{world.acme}/invoices", "acme")
    assert listed.headers["cache-control"] == "no-store" and "etag" not in listed.headers
    assert items == [
        {
            "period": "2026-11",
            "status": "draft",
            "total": "0.4",
            "currency": "BRL",
            "notes": 0,
            "sha256": None,
        },
        {
            "period": "2026-10",
            "status": "finalized",
            "total": "4.86",
            "currency": "BRL",
            "notes": 1,
            "sha256": finalized["2026-10"],
        },
        {
            "period": "2026-09",
            "status": "finalized",
            "total": "0.4",
            "currency": "BRL",
            "notes": 0,
            "sha256": finalized["2026-09"],
        },
    ]
    assert world.get(f"/v1/tenants/{world.globex}/invoices").json()["items"] == [
        {
            "period": "2026-10",
            "status": "draft",
            "total": "0.04",  # 0.045 rounded half-even
            "currency": "BRL",
            "notes": 0,
            "sha256": None,
        }
    ]


def test_a_finalized_invoice_shows_its_lines_tiers_discounts_and_correction_notes(
    world: World,
) -> None:
    # when
    body = world.get(f"/v1/tenants/{world.acme}/invoices/2026-10", "acme").json()
    # then
    lines = {line["sku"]: line for line in body["invoice"]["lines"]}
    egress = lines["network.egress"]
    assert (egress["quantity"], egress["discount_percent"], egress["amount"]) == (
        "20",
        "10",
        "4.05",
    )
    assert [
        (t["from_qty"], t["to_qty"], t["quantity"], t["unit_price"]) for t in egress["tiers"]
    ] == [
        ("0", "10", "10", "0"),
        ("10", "1000", "10", "0.45"),
    ]
    [note] = body["corrections"]
    assert note["references"] == body["sha256"]
    assert (note["kind"], note["total"]) == ("debit", "4.05")  # 100 vCPU-hour x 0.045 x 0.9
    assert [(n["sku"], n["quantity_delta"]) for n in note["lines"]] == [("compute.vcpu", "100")]


def test_a_finalized_invoice_has_its_newest_sha256_as_etag_and_answers_304(world: World) -> None:
    # given
    path = f"/v1/tenants/{world.acme}/invoices"
    september = world.get(f"{path}/2026-09", "acme")
    october = world.get(f"{path}/2026-10", "acme")
    # then: the invoice's own hash until a note is recorded, then the note's
    assert september.headers["etag"] == f'"{september.json()["sha256"]}"'
    assert october.headers["etag"] == f'"{october.json()["corrections"][-1]["sha256"]}"'
    assert october.headers["etag"] != f'"{october.json()["sha256"]}"'
    assert september.headers["cache-control"] == "private, no-cache"
    for match in (
        september.headers["etag"],
        f"W/{september.headers['etag']}",
        '"x", ' + september.headers["etag"],
        "*",
    ):
        again = world.http.get(
            f"{path}/2026-09",
            headers={"Authorization": f"Bearer {world.tokens['acme']}", "If-None-Match": match},
        )
        assert (again.status_code, again.content) == (304, b""), match
        assert again.headers["etag"] == september.headers["etag"]
    stale = world.http.get(
        f"{path}/2026-10",
        headers={
            "Authorization": f"Bearer {world.tokens['acme']}",
            "If-None-Match": f'"{october.json()["sha256"]}"',
        },
    )
    assert stale.status_code == 200 and stale.json() == october.json()


def test_a_draft_is_never_cached(world: World) -> None:
    for path in ("2026-11/draft", "2026-10/draft"):
        response = world.get(f"/v1/tenants/{world.acme}/invoices/{path}", "acme")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert "etag" not in response.headers


def test_a_304_is_only_for_a_key_that_may_read_the_invoice(world: World) -> None:
    etag = world.get(f"/v1/tenants/{world.acme}/invoices/2026-09", "acme").headers["etag"]
    response = world.http.get(
        f"/v1/tenants/{world.acme}/invoices/2026-09",
        headers={"Authorization": f"Bearer {world.tokens['globex']}", "If-None-Match": etag},
    )
    assert response.status_code == 404


def test_the_lineage_of_a_line_comes_a_page_at_a_time_in_hour_then_id_order(world: World) -> None:
    # when
    path = f"/v1/tenants/{world.acme}/invoices/2026-10/lines/compute.vcpu/lineage"
    got = pages(world, path, "acme", limit=7)
    # then: 21 pulses (20 and the late one) in pages of 7
    ids = [p["pulse_id"] for page in got for hour in page["hours"] for p in hour["pulses"]]
    assert [sum(len(h["pulses"]) for h in page["hours"]) for page in got] == [7, 7, 7]
    assert ids == world.vcpu
    late = [
        p for page in got for h in page["hours"] for p in h["pulses"] if p["pulse_id"] == "late"
    ]
    assert late[0]["ledger_position"].startswith("0:") and late[0]["quantity"] == "100"


def test_the_lineage_of_a_sku_without_usage_is_404(world: World) -> None:
    path = f"/v1/tenants/{world.acme}/invoices/2026-10/lines/storage.block/lineage"
    response = world.get(path, "acme")
    assert response.status_code == 404 and "storage.block" in response.json()["detail"]


# ----- pulses --------------------------------------------------------------------------------


def test_pulses_of_a_day_page_in_hour_then_id_order_each_once(world: World) -> None:
    # when
    got = pages(world, f"/v1/tenants/{world.acme}/pulses", "acme", limit=8, **OCT_DAY)
    egress = pages(
        world, f"/v1/tenants/{world.acme}/pulses", "acme", sku="network.egress", limit=4, **OCT_DAY
    )
    # then
    assert [p["pulse_id"] for page in got for p in page["items"]] == world.october
    assert [len(page["items"]) for page in got] == [8, 8, 8, 7]
    assert [p["pulse_id"] for page in egress for p in page["items"]] == world.egress
    first = got[0]["items"][0]
    assert first["tenant_id"] == world.acme and first["arrival"] == ARRIVAL.isoformat()


def test_pulses_are_cut_at_event_time_not_at_the_hour(world: World) -> None:
    # given: the first October hour holds v00 (09:00), v03 (09:03) ... and e0 (09:30)
    params = {"start": "2026-10-07T09:03:00Z", "end": "2026-10-07T09:30:00Z"}
    # when
    body = world.get(f"/v1/tenants/{world.acme}/pulses", "acme", **params).json()
    # then: 09:03 included, 09:30 excluded
    assert [p["pulse_id"] for p in body["items"]] == ["v03", "v06", "v09", "v12", "v15", "v18"]


def test_one_pulse_by_id_is_still_its_own_route(world: World) -> None:
    one = world.get(f"/v1/tenants/{world.acme}/pulses/v00", "acme")
    many = world.get(f"/v1/tenants/{world.acme}/pulses", "acme", **OCT_DAY)
    assert one.json()["pulse_id"] == "v00"
    assert "items" in many.json()


def test_paging_pulses_while_the_writer_appends_lists_every_stored_pulse_once(
    world: World,
) -> None:
    # given: 120 pulses of a fresh tenant over three hours
    tenant = f"busy-{uuid.uuid4().hex[:8]}"
    start = datetime(2026, 10, 20, 10, tzinfo=UTC)

    def batch(prefix: str, n: int) -> list[LedgerEvent]:
        return [
            LedgerEvent.of(
                _pulse(
                    tenant,
                    f"{prefix}{i:03d}",
                    "compute.vcpu",
                    "1",
                    start + timedelta(minutes=i * 11 % 180),
                ),
                Position(2, i),
                ARRIVAL,
            )
            for i in range(n)
        ]

    stored = batch("m", 120)
    world.ledger.append(stored)
    stop = threading.Event()
    appended: list[int] = []

    def keep_writing() -> None:
        # ids sorting before and after the stored ones, into the hours being paged
        n = 0
        while not stop.is_set():
            world.ledger.append([*batch(f"a{n}-", 3), *batch(f"z{n}-", 3)])
            n += 1
            appended.append(n)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        # when: pages of 9 while the writer appends
        params = {"start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat()}
        got = pages(world, f"/v1/tenants/{tenant}/pulses", limit=9, **params)
    finally:
        stop.set()
        writer.join(timeout=30)
    # then
    ids = [p["pulse_id"] for page in got for p in page["items"]]
    assert len(ids) == len(set(ids)), "a pulse was listed twice"
    assert sorted(i for i in ids if i.startswith("m")) == sorted(e.pulse.pulse_id for e in stored)
    assert appended, "the writer never appended while the pages were read"


# ----- hostile input -------------------------------------------------------------------------


def _routes(world: World) -> dict[str, tuple[str, dict[str, str]]]:
    t = world.acme
    return {
        "pulses": (f"/v1/tenants/{t}/pulses", OCT_DAY),
        "invoices": (f"/v1/tenants/{t}/invoices", {}),
        "lineage": (f"/v1/tenants/{t}/invoices/2026-10/lines/compute.vcpu/lineage", {}),
        "conflicts": (f"/v1/tenants/{t}/conflicts", {}),
        "tenants": ("/v1/operator/tenants", {"period": "2026-10"}),
        "all-conflicts": ("/v1/operator/conflicts", {}),
    }


@pytest.mark.parametrize("limit", ["0", "-1", "1001", str(10**30), "ten", "1.5"])
def test_an_out_of_range_limit_is_422_naming_it(world: World, limit: str) -> None:
    for name, (path, params) in _routes(world).items():
        response = world.get(path, limit=limit, **params)
        assert response.status_code == 422, name
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["limit"], name


def test_the_invoice_list_caps_its_limit_lower(world: World) -> None:
    response = world.get(f"/v1/tenants/{world.acme}/invoices", limit="101")
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "limit"


def _first_cursor(world: World, name: str) -> str:
    path, params = _routes(world)[name]
    cursor = world.get(path, limit=1, **params).json()["next_cursor"]
    assert cursor is not None
    return str(cursor)


@pytest.mark.parametrize(
    "how", ["garbage", "empty", "truncated", "tampered", "other list", "too long"]
)
def test_a_malformed_or_tampered_cursor_is_422_naming_it(world: World, how: str) -> None:
    for name, (path, params) in _routes(world).items():
        good = _first_cursor(world, name)
        flip = "A" if good[10] != "A" else "B"
        other = _first_cursor(world, "pulses" if name != "pulses" else "invoices")
        cursor = {
            "garbage": "not-a-cursor!",
            "empty": "",
            "truncated": good[:-3],
            "tampered": good[:10] + flip + good[11:],
            "other list": other,
            "too long": good * 100,
        }[how]
        response = world.get(path, cursor=cursor, **params)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["detail"].startswith("cursor"), name


def test_a_cursor_is_refused_with_other_filters(world: World) -> None:
    path = f"/v1/tenants/{world.acme}/pulses"
    cursor = world.get(path, limit=1, **OCT_DAY).json()["next_cursor"]
    response = world.get(path, cursor=cursor, sku="compute.vcpu", **OCT_DAY)
    assert response.status_code == 422 and "other filters" in response.json()["detail"]


@pytest.mark.parametrize("sku", ["a\x01b", "line\nbreak", "\x7f", "", "x" * 257])
def test_a_sku_with_control_characters_or_out_of_bounds_is_422(world: World, sku: str) -> None:
    response = world.get(f"/v1/tenants/{world.acme}/pulses", sku=sku, **OCT_DAY)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["sku"]


@pytest.mark.parametrize(
    "params",
    [
        {"start": OCT_DAY["end"], "end": OCT_DAY["start"]},
        {"start": OCT_DAY["start"], "end": OCT_DAY["start"]},
    ],
)
def test_pulses_with_end_not_after_start_is_422(world: World, params: dict[str, str]) -> None:
    response = world.get(f"/v1/tenants/{world.acme}/pulses", **params)
    assert response.status_code == 422 and response.json()["detail"] == "end: must be after start"


def test_a_bad_period_is_422_naming_it(world: World) -> None:
    response = world.get("/v1/operator/tenants", period="2026-13")
    assert response.status_code == 422 and response.json()["detail"].startswith("period")


# ----- keys ----------------------------------------------------------------------------------


TENANT_ROUTES = [
    "/v1/tenants/{t}/invoices",
    "/v1/tenants/{t}/pulses?start=2026-10-07T00:00:00Z&end=2026-10-08T00:00:00Z",
    "/v1/tenants/{t}/invoices/2026-10/lines/compute.vcpu/lineage",
]
OPERATOR_ROUTES = ["/v1/operator/tenants?period=2026-10", "/v1/operator/conflicts"]


def test_tenant_lists_answer_only_keys_that_may_read_the_tenant(world: World) -> None:
    for route in TENANT_ROUTES:
        path = route.format(t=world.acme)
        assert world.get(path, "acme").status_code == 200, route
        assert world.get(path, "operator").status_code == 200, route
        assert world.get(path, "producer").status_code == 403, route
        assert world.get(path, None).status_code == 401, route
        # another tenant's key: the 404 of a tenant that does not exist, nothing to probe
        other = world.get(path, "globex")
        unknown = world.get(route.format(t="nobody"), "globex")
        assert other.status_code == unknown.status_code == 404, route
        assert other.text.replace(world.acme, "nobody") == unknown.text


def test_operator_lists_need_an_operator_key(world: World) -> None:
    for route in OPERATOR_ROUTES:
        assert world.get(route, "operator").status_code == 200, route
        for who in ("acme", "producer"):
            response = world.get(route, who)
            assert response.status_code == 403, (route, who)
        assert world.get(route, None).status_code == 401, route


# ----- operator lists ------------------------------------------------------------------------


def test_tenants_with_usage_in_a_period_page_in_id_order(world: World) -> None:
    # when
    october = pages(world, "/v1/operator/tenants", period="2026-10", limit=1)
    november = pages(world, "/v1/operator/tenants", period="2026-11", limit=50)
    # then: the shared Cassandra keyspace holds other tests' tenants: keep ours
    ours = {world.acme, world.globex}
    listed = [t for page in october for t in page["items"]]
    assert [t for t in listed if t in ours] == sorted(ours)
    assert len(listed) == len(set(listed)) and listed == sorted(listed, key=str.encode)
    assert [t for page in november for t in page["items"] if t in ours] == [world.acme]


def test_conflicts_of_every_tenant_page_by_tenant_then_id(world: World) -> None:
    # when
    got = pages(world, "/v1/operator/conflicts", limit=2)
    # then
    # (other tests' tenants are in the shared Cassandra keyspace too, some reusing an id twice)
    items = [
        (c["tenant_id"], c["pulse_id"], c["ledger_position"]) for page in got for c in page["items"]
    ]
    ours = [i[:2] for i in items if i[0] in (world.acme, world.globex)]
    assert ours == [(world.acme, p) for p in ("a", "b", "v00")] + [
        (world.globex, p) for p in ("a", "b", "v00")
    ]
    assert len(items) == len(set(items))


# ----- the OpenAPI document ------------------------------------------------------------------


def test_every_list_route_is_documented_with_examples(world: World) -> None:
    schema = world.http.get("/openapi.json").json()
    for path in (
        "/v1/tenants/{tenant_id}/invoices",
        "/v1/tenants/{tenant_id}/invoices/{period}",
        "/v1/tenants/{tenant_id}/invoices/{period}/lines/{sku}/lineage",
        "/v1/tenants/{tenant_id}/pulses",
        "/v1/operator/tenants",
        "/v1/operator/conflicts",
        "/v1/operator/dead-letters",
    ):
        operation = schema["paths"][path]["get"]
        assert operation["description"], path
        assert _has_example(schema, operation), path
        for parameter in operation["parameters"]:
            if parameter["name"] in ("start", "end", "period", "sku", "limit"):
                assert "examples" in parameter or "examples" in parameter["schema"], (
                    path,
                    parameter,
                )


def _has_example(schema: dict[str, Any], operation: dict[str, Any]) -> bool:
    content = operation["responses"]["200"]["content"]["application/json"]
    if "example" in content:
        return True
    ref = content["schema"]["$ref"].rsplit("/", 1)[1]
    return "examples" in schema["components"]["schemas"][ref]


def test_a_range_over_all_representable_time_reads_like_any_other(world: World) -> None:
    params = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z", "limit": "1000"}
    response = world.get(f"/v1/tenants/{world.acme}/pulses", "acme", **params)
    assert response.status_code == 200, response.text
    ids = [p["pulse_id"] for p in response.json()["items"]]
    assert ids == ["s1", *world.october, "n1"]
