"""SQLiteKeyStore: the API keys of the embedded default, in their own SQLite file."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

from access.keys import KeyRecord, Role, to_ms
from kernel.errors import Conflict, NotFound
from storage.sqlite import SQLiteDb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
  key_id TEXT PRIMARY KEY, role TEXT NOT NULL, tenants TEXT NOT NULL, name TEXT NOT NULL,
  created TEXT NOT NULL, revoked TEXT, secret_hash TEXT NOT NULL);
"""
_COLUMNS = "key_id, role, tenants, name, created, revoked, secret_hash"


def _record(row: tuple[object, ...]) -> KeyRecord:
    key_id, role, tenants, name, created, revoked, secret_hash = row
    return KeyRecord(
        key_id=str(key_id),
        role=Role(str(role)),
        tenants=frozenset(json.loads(str(tenants))),
        name=str(name),
        created=datetime.fromisoformat(str(created)),
        secret_hash=str(secret_hash),
        revoked=None if revoked is None else datetime.fromisoformat(str(revoked)),
    )


class SQLiteKeyStore:
    def __init__(self, path: Path) -> None:
        self._db = SQLiteDb(path, _SCHEMA)

    def add(self, record: KeyRecord) -> None:
        try:
            with self._db.tx() as conn:
                conn.execute(
                    f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.key_id,
                        record.role.value,
                        json.dumps(sorted(record.tenants)),
                        record.name,
                        to_ms(record.created).isoformat(),
                        None if record.revoked is None else to_ms(record.revoked).isoformat(),
                        record.secret_hash,
                    ),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"key id {record.key_id!r} is already taken") from None

    def get(self, key_id: str) -> KeyRecord | None:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
        return _record(rows[0]) if rows else None

    def all(self) -> list[KeyRecord]:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, key_id")
        return [_record(r) for r in rows]

    def revoke(self, key_id: str, at: datetime) -> KeyRecord:
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL",
                (to_ms(at).isoformat(), key_id),
            )
        found = self.get(key_id)
        if found is None:
            raise NotFound(f"no key with id {key_id!r}")
        return found

    def close(self) -> None:
        self._db.close()
