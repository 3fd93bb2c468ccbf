"""Contract of KeyStore, run against every backend (SQLite and Cassandra/ScyllaDB CQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from access.keys import KeyRecord, Role, new_key, parse, secret_matches
from access.ports import KeyStore
from kernel.errors import Conflict, NotFound

NOW = datetime(2026, 11, 3, 10, 15, 30, 123456, tzinfo=UTC)


def made(role: Role = Role.TENANT, tenants: tuple[str, ...] = ("acme",)) -> tuple[KeyRecord, str]:
    key = new_key(role, tenants, f"{role} key", NOW, cost=2**10)
    return key.record, key.token


def test_a_stored_key_reads_back_whole_and_its_secret_still_matches(key_store: KeyStore) -> None:
    # given
    record, token = made(Role.TENANT, ("acme", "acme:eu"))
    # when
    key_store.add(record)
    found = key_store.get(record.key_id)
    # then: every field, times at millisecond precision (a CQL timestamp)
    assert found == record
    assert found.created == datetime(2026, 11, 3, 10, 15, 30, 123000, tzinfo=UTC)
    parsed = parse(token)
    assert parsed is not None and secret_matches(parsed[1], found.secret_hash)


def test_no_tenants_reads_back_as_an_empty_set(key_store: KeyStore) -> None:
    # given: a producer for every tenant (CQL stores an empty set as null)
    record, _ = made(Role.PRODUCER, ())
    # when
    key_store.add(record)
    # then
    found = key_store.get(record.key_id)
    assert found is not None and found.tenants == frozenset()


def test_an_unknown_id_is_none(key_store: KeyStore) -> None:
    assert key_store.get("0123456789abcdef") is None


def test_a_taken_id_is_a_conflict_and_keeps_the_first_key(key_store: KeyStore) -> None:
    # given
    first, _ = made(Role.TENANT)
    key_store.add(first)
    second = replace(first, role=Role.OPERATOR, tenants=frozenset(), secret_hash="other")
    # when / then
    with pytest.raises(Conflict, match=first.key_id):
        key_store.add(second)
    assert key_store.get(first.key_id) == first


def test_all_lists_every_key_oldest_first(key_store: KeyStore) -> None:
    # given
    older, _ = made(Role.OPERATOR, ())
    newer, _ = made(Role.PRODUCER, ("acme",))
    newer = replace(newer, created=older.created + timedelta(seconds=1))
    key_store.add(newer)
    key_store.add(older)
    # when
    listed = [r for r in key_store.all() if r.key_id in (older.key_id, newer.key_id)]
    # then
    assert listed == [older, newer]


def test_revoke_marks_the_key_and_keeps_the_first_time(key_store: KeyStore) -> None:
    # given
    record, _ = made()
    key_store.add(record)
    # when
    first = key_store.revoke(record.key_id, NOW + timedelta(hours=1))
    again = key_store.revoke(record.key_id, NOW + timedelta(hours=2))
    # then
    expected = replace(record, revoked=datetime(2026, 11, 3, 11, 15, 30, 123000, tzinfo=UTC))
    assert first == again == key_store.get(record.key_id) == expected


def test_revoking_an_unknown_id_is_not_found(key_store: KeyStore) -> None:
    with pytest.raises(NotFound, match="0123456789abcdee"):
        key_store.revoke("0123456789abcdee", NOW)
