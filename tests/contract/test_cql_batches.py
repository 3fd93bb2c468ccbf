"""Unlogged batches never mix partitions of different replicas, and skip routing rows when
every partition has the same replicas (storage.cql.unlogged_batches)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from cassandra.query import BatchStatement

from storage import cql
from storage.cql import shared_replicas, text_size, unlogged_batches

pytestmark = pytest.mark.servers


def token_map(replicas_by_token: dict[int, list[str]]) -> Any:
    """A driver token map whose keyspace "ks" has these replicas per token."""

    class Map:
        def __init__(self) -> None:
            self.tokens_to_hosts_by_ks: dict[str, dict[int, list[str]]] = {}

        def rebuild_keyspace(self, keyspace: str, build_if_absent: bool) -> None:
            if build_if_absent and keyspace == "ks":
                self.tokens_to_hosts_by_ks.setdefault(keyspace, replicas_by_token)

    return Map()


def test_replicas_are_shared_on_one_node_or_as_many_replicas_as_nodes() -> None:
    one_node = SimpleNamespace(token_map=token_map({1: ["a"], 2: ["a"], 3: ["a"]}))
    rf3_on_3 = SimpleNamespace(token_map=token_map({1: ["a", "b", "c"], 2: ["b", "c", "a"]}))
    assert shared_replicas(one_node, "ks") and shared_replicas(rf3_on_3, "ks")


def test_replicas_are_not_shared_when_partitions_differ_or_the_map_is_unknown() -> None:
    rf2_on_3 = SimpleNamespace(token_map=token_map({1: ["a", "b"], 2: ["b", "c"]}))
    assert not shared_replicas(rf2_on_3, "ks")
    assert not shared_replicas(SimpleNamespace(token_map=None), "ks")
    assert not shared_replicas(SimpleNamespace(token_map=token_map({})), "ks")


@pytest.fixture
def dedup_insert(cql_session: Any, migrated_keyspace: str) -> Any:
    return cql_session.prepare(
        f"INSERT INTO {migrated_keyspace}.pulses_by_id (tenant_id, pulse_id, hour, "
        "payload_hash, kafka_partition, kafka_offset, arrival) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )


class Recording(BatchStatement):  # type: ignore[misc]  # the driver is untyped
    """A batch that remembers the statements added to it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members: list[Any] = []

    def add(self, statement: Any, parameters: Any = None) -> Any:
        self.members.append(statement)
        return super().add(statement, parameters)


def rows(count: int) -> list[tuple[object, ...]]:
    return [(f"t-{i % 7}", f"p-{i}", None, "h", 0, i, None) for i in range(count)]


def test_on_shared_replicas_every_row_is_batched_once_without_routing_each(
    cql_session: Any, migrated_keyspace: str, dedup_insert: Any, monkeypatch: Any
) -> None:
    # given: the test node (one node: every partition has the same replica)
    assert shared_replicas(cql_session.cluster.metadata, migrated_keyspace)
    routed: list[object] = []
    real = cql_session.cluster.metadata.get_replicas

    def get_replicas(*args: Any) -> Any:
        routed.append(args)
        return real(*args)

    monkeypatch.setattr(cql_session.cluster.metadata, "get_replicas", get_replicas)
    # when
    batches = unlogged_batches(
        cql_session, migrated_keyspace, dedup_insert, rows(250), max_rows=100, size_of=text_size
    )
    # then: 100 + 100 + 50 rows, none looked up one by one, and the batches run
    assert [len(b) for b in batches] == [100, 100, 50]
    assert routed == []
    for batch in batches:
        cql_session.execute(batch)


def test_rows_of_different_replicas_never_share_a_batch(
    cql_session: Any, migrated_keyspace: str, dedup_insert: Any, monkeypatch: Any
) -> None:
    # given: a ring where a partition's replicas depend on its tenant (two replica sets)
    monkeypatch.setattr(cql, "shared_replicas", lambda *_: False)
    hosts = {0: [SimpleNamespace(endpoint="a")], 1: [SimpleNamespace(endpoint="b")]}
    tenant_of: dict[bytes, int] = {}

    def replicas(_keyspace: str, routing: bytes) -> list[Any]:
        return hosts[tenant_of.setdefault(routing, len(tenant_of) % 2)]

    monkeypatch.setattr(cql_session.cluster.metadata, "get_replicas", replicas)
    monkeypatch.setattr(cql, "BatchStatement", Recording)
    # when
    batches = unlogged_batches(
        cql_session, migrated_keyspace, dedup_insert, rows(250), max_rows=100, size_of=text_size
    )
    # then: every row once, and each batch's rows on one replica set
    assert sum(len(b) for b in batches) == 250
    assert all(isinstance(b, Recording) for b in batches)
    for batch in batches:
        assert len({tenant_of[s.routing_key] % 2 for s in batch.members}) == 1
