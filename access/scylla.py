"""ScyllaKeyStore: the API keys on ScyllaDB/Cassandra (table api_keys), on the shared session.

Creation and revocation are lightweight transactions (rare, off the hot path): a new key never
overwrites another with the same id, and a second revocation keeps the first time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cassandra.cluster import Session

from access.keys import KeyRecord, Role, to_ms
from kernel.errors import Conflict, NotFound
from storage.cql import translated

_COLUMNS = "key_id, role, tenants, name, created, revoked, secret_hash"


def _utc(moment: datetime | None) -> datetime | None:
    # The driver returns CQL timestamps as naive UTC datetimes.
    return None if moment is None else moment.replace(tzinfo=UTC)


def _record(row: Any) -> KeyRecord:
    created = _utc(row.created)
    assert created is not None  # written with every key
    return KeyRecord(
        key_id=row.key_id,
        role=Role(row.role),
        tenants=frozenset(row.tenants or ()),  # CQL stores an empty set as null
        name=row.name,
        created=created,
        secret_hash=row.secret_hash,
        revoked=_utc(row.revoked),
    )


class ScyllaKeyStore:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        ks = keyspace
        with translated("preparing key statements"):
            self._insert = session.prepare(
                f"INSERT INTO {ks}.api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            )
            self._select = session.prepare(f"SELECT {_COLUMNS} FROM {ks}.api_keys WHERE key_id = ?")
            self._revoke = session.prepare(
                f"UPDATE {ks}.api_keys SET revoked = ? WHERE key_id = ? IF revoked = null"
            )
            self._scan = session.prepare(f"SELECT {_COLUMNS} FROM {ks}.api_keys")

    def add(self, record: KeyRecord) -> None:
        revoked = None if record.revoked is None else to_ms(record.revoked)
        with translated(f"storing key {record.key_id!r}"):
            result = self._session.execute(
                self._insert,
                (
                    record.key_id,
                    record.role.value,
                    set(record.tenants),
                    record.name,
                    to_ms(record.created),
                    revoked,
                    record.secret_hash,
                ),
            )
        if not result.was_applied:
            raise Conflict(f"key id {record.key_id!r} is already taken")

    def get(self, key_id: str) -> KeyRecord | None:
        with translated(f"reading key {key_id!r}"):
            row = self._session.execute(self._select, (key_id,)).one()
        return None if row is None else _record(row)

    def all(self) -> list[KeyRecord]:
        with translated("listing keys"):
            rows = list(self._session.execute(self._scan))
        return sorted((_record(r) for r in rows), key=lambda r: (r.created, r.key_id))

    def revoke(self, key_id: str, at: datetime) -> KeyRecord:
        if self.get(key_id) is None:
            raise NotFound(f"no key with id {key_id!r}")
        with translated(f"revoking key {key_id!r}"):
            # Not applied when already revoked: the first revocation time stays.
            self._session.execute(self._revoke, (to_ms(at), key_id))
        found = self.get(key_id)
        if found is None:
            raise NotFound(f"no key with id {key_id!r}")
        return found

    def close(self) -> None:
        """The session is shared (storage.cql.connect); its owner closes it."""
