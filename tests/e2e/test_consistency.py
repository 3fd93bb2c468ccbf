"""Ledger and projection statements run at LOCAL_QUORUM by default (DESIGN invariant 12).

A keyspace with replication factor 3 on our one-node Cassandra is the lever: at LOCAL_QUORUM
a write needs 2 of 3 replicas and must fail with Unavailable; at LOCAL_ONE (the driver's own
default, which the ledger used before) the same write would succeed and a later quorum read on
a real ring could miss it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kernel.errors import Unavailable
from ledger.scylla import ScyllaLedgerStore
from pulse.migrate import migrate_cql
from pulse.settings import CqlSettings
from storage.cql import CqlConnection, connect
from tests.unit.helpers import event, pulse

pytestmark = pytest.mark.servers


@pytest.fixture
def rf3_keyspace(cql_endpoint: tuple[str, int]) -> Iterator[tuple[CqlSettings, str]]:
    host, port = cql_endpoint
    keyspace = f"rf3_{uuid.uuid4().hex[:12]}"
    settings = CqlSettings(contact_points=host, port=port, keyspace=keyspace, replication_factor=3)
    admin = connect(settings.model_copy(update={"consistency": "ONE"}).config())
    try:
        list(migrate_cql(admin.session, settings))
        yield settings, keyspace
        admin.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    finally:
        admin.close()


def _store(settings: CqlSettings, keyspace: str) -> tuple[CqlConnection, ScyllaLedgerStore]:
    connection = connect(settings.config())
    return connection, ScyllaLedgerStore(connection.session, keyspace)


def test_the_default_consistency_is_local_quorum(rf3_keyspace: tuple[CqlSettings, str]) -> None:
    # given: default settings (no PULSE_CQL__CONSISTENCY), RF 3 on one node
    settings, keyspace = rf3_keyspace
    assert settings.consistency == "LOCAL_QUORUM"
    connection, store = _store(settings, keyspace)
    try:
        # when / then: a quorum of 3 replicas cannot be reached, so the write is refused
        with pytest.raises(Unavailable):
            store.append([event(pulse("q-1"))])
    finally:
        connection.close()


def test_the_consistency_is_settable(rf3_keyspace: tuple[CqlSettings, str]) -> None:
    # given: an operator who chose ONE on purpose
    settings, keyspace = rf3_keyspace
    connection, store = _store(settings.model_copy(update={"consistency": "ONE"}), keyspace)
    try:
        # when
        store.append([event(pulse("q-2"))])

        # then
        found = store.get("acme", "q-2")
        assert found is not None and found.pulse.pulse_id == "q-2"
    finally:
        connection.close()
