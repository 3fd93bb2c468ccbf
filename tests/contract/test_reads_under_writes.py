"""Reads racing writes: catalog and contract reads kept by BillingApp while a transaction of the
CQL event store writes its events and is then undone, and Cassandra pulse pages compared with
the SQLite store's over random, dense and very sparse ledgers."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from catalog.billing import BillingApp
from catalog.files import read_catalog
from catalog.terms import ContractTerms, ContractVersion
from kernel.errors import Unavailable
from ledger.model import LedgerEvent, Position, Pulse
from pulse.bootstrap import SAMPLE_CATALOG
from tests.contract.test_ledger_store import read_all


@pytest.fixture
def cql_billing_env(cql_endpoint: tuple[str, int], cql_session: Any) -> Iterator[dict[str, str]]:
    """A billing event store of its own (the catalog is one per store)."""
    from tests import servers

    host, port = cql_endpoint
    keyspace = servers.new_test_keyspace(cql_session)
    yield {
        "PERSISTENCE_MODULE": "eventstore_cql",
        "CQL_CONTACT_POINTS": host,
        "CQL_PORT": str(port),
        "CQL_KEYSPACE": keyspace,
    }
    servers.drop_keyspace(cql_session, keyspace)


def failing_after_its_writes(app: BillingApp, meanwhile: Callable[[], None]) -> Callable[[], None]:
    """Makes `app`'s next transaction write its rows, run `meanwhile` (another process reads),
    then fail as a write timeout would (recorders._transaction undoes the rows); returns the
    function that puts the datastore back."""
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    real_execute_all = datastore.execute_all

    def written_then_times_out(requests: Any) -> Any:
        real_execute_all(requests)
        datastore.execute_all = real_execute_all
        meanwhile()
        raise OperationalError("write timeout on one of the transaction's requests")

    datastore.execute_all = written_then_times_out

    def restore() -> None:
        datastore.execute_all = real_execute_all

    return restore


def contract_of(tenant: str, *commitments: tuple[date, str]) -> ContractTerms:
    versions = tuple(ContractVersion(day, commitment=Decimal(c)) for day, c in commitments)
    return ContractTerms(tenant, versions)


def commitments(found: tuple[ContractTerms, int] | None) -> list[str]:
    assert found is not None
    return [str(v.commitment) for v in found[0].versions]


@pytest.mark.servers
def test_a_read_during_a_write_that_is_then_undone_is_not_kept_on_cassandra(
    cql_billing_env: dict[str, str],
) -> None:
    # given: a tenant's contract, an operator's process and an API process on one event store
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    operator = BillingApp(env=cql_billing_env)
    operator.apply_contracts([contract_of(tenant, (date(2026, 1, 1), "100"))])
    api = BillingApp(env=cql_billing_env)  # has not read this contract since it was opened
    seen_during_write: list[list[str]] = []
    restore = failing_after_its_writes(
        operator, lambda: seen_during_write.append(commitments(api.contract(tenant)))
    )
    # when: the operator's amendment is written, read by the API, and undone
    with pytest.raises(Unavailable):
        operator.apply_contracts(
            [contract_of(tenant, (date(2026, 1, 1), "100"), (date(2026, 3, 1), "999"))]
        )
    restore()
    assert seen_during_write == [["100", "999"]]  # the uncommitted rows were visible
    assert commitments(BillingApp(env=cql_billing_env).contract(tenant)) == ["100"]
    # then: the API no longer serves the amendment that was never recorded
    assert commitments(api.contract(tenant)) == ["100"]
    _products, found = api.terms_of(tenant)
    assert commitments(found) == ["100"]


# ----- ScyllaLedgerStore.pulses against the SQLite reference ---------------------------------

HOUR0 = datetime(2026, 10, 5, 14, tzinfo=UTC)
ARRIVED = datetime(2026, 10, 5, 15, 0, 1, 250000, tzinfo=UTC)
IDS = ["a", "B", "é", "Z", "z", "\U0001f600", "\uffff", "ab", "a b", "0", "~", "ä"]


def pulse(tenant: str, pulse_id: str, at: datetime, sku: str, offset: int) -> LedgerEvent:
    return LedgerEvent.of(
        Pulse(pulse_id, tenant, sku, Decimal(1), "GB-hour", at), Position(0, offset), ARRIVED
    )


@pytest.fixture
def both_ledgers(tmp_path: Any, request: pytest.FixtureRequest) -> Any:
    from ledger.scylla import ScyllaLedgerStore
    from ledger.sqlite_store import SQLiteLedgerStore

    reference = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    keyspace = request.getfixturevalue("migrated_keyspace")
    yield reference, ScyllaLedgerStore(request.getfixturevalue("cql_session"), keyspace)
    reference.close()


@pytest.mark.servers
@pytest.mark.parametrize("seed", range(6))
def test_cassandra_pulse_pages_equal_the_sqlite_reference_for_random_ledgers(
    both_ledgers: Any, seed: int
) -> None:
    # given: the same random ledger in both stores: dense and empty hours, two SKUs, ids
    # whose byte order is not their look, minutes that the range's bounds cut through
    reference, cassandra = both_ledgers
    rng = random.Random(seed)
    t = f"tenant-{uuid.uuid4().hex[:8]}"
    stored, offset = [], 0
    for h in range(12):
        for n in range(rng.choice([0, 0, 1, 2, 5, 30])):
            pid = rng.choice(IDS) + str(n) + rng.choice(IDS)
            at = HOUR0 + timedelta(hours=h, minutes=rng.randrange(60))
            product = rng.choice(["storage.block", "api.requests"])
            stored.append(pulse(t, pid, at, product, offset))
            offset += 1
    unique = {e.pulse.pulse_id: e for e in stored}  # one hour per id, as dedup keeps it
    for store in (reference, cassandra):
        store.append(list(unique.values()))
    # when/then: every page of every range, SKU and page size is the reference's
    for _ in range(12):
        start = HOUR0 + timedelta(minutes=rng.randrange(0, 200))
        end = start + timedelta(minutes=rng.randrange(1, 800))
        limit = rng.choice([1, 2, 3, 7, 31, 100])
        sku: str | None = rng.choice([None, "storage.block", "api.requests"])
        expected = read_all(reference, t, start, end, limit, sku)
        assert read_all(cassandra, t, start, end, limit, sku) == expected, (start, end, limit, sku)


@pytest.mark.servers
@pytest.mark.parametrize(("limit", "sku"), [(9000, None), (9000, "api.requests"), (2500, None)])
def test_cassandra_pulse_pages_of_hours_denser_than_a_driver_page_equal_the_reference(
    both_ledgers: Any, limit: int, sku: str | None
) -> None:
    # given: three hours of 4,000 pulses each, half of each SKU (a request then spans more
    # rows than the driver's page of 5,000)
    reference, cassandra = both_ledgers
    t = f"tenant-{uuid.uuid4().hex[:8]}"
    stored = [
        pulse(
            t,
            f"p{n:05d}",
            HOUR0 + timedelta(hours=h, seconds=n % 3600),
            "api.requests" if n % 2 else "storage.block",
            h * 4000 + n,
        )
        for h in range(3)
        for n in range(h * 4000, h * 4000 + 4000)
    ]
    for store in (reference, cassandra):
        store.append(stored)
    start, end = HOUR0 + timedelta(minutes=1), HOUR0 + timedelta(hours=2, minutes=59)
    # when/then
    expected = read_all(reference, t, start, end, limit, sku)
    assert read_all(cassandra, t, start, end, limit, sku) == expected


@pytest.mark.servers
def test_a_catalog_read_during_an_undone_write_does_not_pin_versions_that_were_never_recorded(
    cql_billing_env: dict[str, str],
) -> None:
    # given: the sample catalog, and an API process that has not read it yet
    text = SAMPLE_CATALOG.read_text()
    operator = BillingApp(env=cql_billing_env)
    operator.apply_catalog(read_catalog(text))
    api = BillingApp(env=cql_billing_env)
    recorded = operator.versioned_products()["compute.memory"]
    seen: list[tuple[Any, int]] = []
    restore = failing_after_its_writes(
        operator, lambda: seen.append(api.versioned_products()["compute.memory"])
    )
    # when: a repricing is written, read by the API (a finalize), and undone
    with pytest.raises(Unavailable):
        operator.apply_catalog(
            read_catalog(text.replace('unit_price: "0.0061"', 'unit_price: "0.007"'))
        )
    restore()
    assert seen[0][1] == recorded[1] + 1  # the API saw the version being written
    # then: what the API prices with and would pin is what the store holds
    assert BillingApp(env=cql_billing_env).versioned_products()["compute.memory"] == recorded
    terms, version = api.versioned_products()["compute.memory"]
    assert (terms, version) == recorded
    assert api.products_at({"compute.memory": version})["compute.memory"] == terms
    _terms, epoch = api.metering_terms()
    assert epoch == operator.metering_terms()[1]


@pytest.mark.servers
@pytest.mark.parametrize("limit", [1, 5, 70, 500])
def test_cassandra_pulse_pages_over_more_hours_than_one_request_asks_equal_the_reference(
    both_ledgers: Any, limit: int
) -> None:
    # given: 150 hours of one or two pulses each, a rare SKU in every 11th (pages then span
    # more hours than MAX_HOURS_AHEAD, most of them without a row of the SKU asked)
    reference, cassandra = both_ledgers
    t = f"tenant-{uuid.uuid4().hex[:8]}"
    stored = []
    for h in range(150):
        at = HOUR0 + timedelta(hours=h, minutes=h % 60)
        stored.append(pulse(t, f"h{h:03d}", at, "storage.block", 2 * h))
        if h % 11 == 0:
            stored.append(pulse(t, f"r{h:03d}", at, "api.requests", 2 * h + 1))
    for store in (reference, cassandra):
        store.append(stored)
    start, end = HOUR0 + timedelta(minutes=30), HOUR0 + timedelta(hours=149, minutes=10)
    # when/then
    for sku in (None, "api.requests"):
        expected = read_all(reference, t, start, end, limit, sku)
        assert read_all(cassandra, t, start, end, limit, sku) == expected, sku
