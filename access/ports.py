"""The port of the key store: records of API keys (salted digests only), by id."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from access.keys import KeyRecord


class KeyStore(Protocol):
    def add(self, record: KeyRecord) -> None:
        """Stores a new key; Conflict if its id is already taken (nothing is overwritten)."""
        ...

    def get(self, key_id: str) -> KeyRecord | None:
        """The key with this id, revoked or not; None when there is none."""
        ...

    def all(self) -> list[KeyRecord]:
        """Every key, revoked ones included, oldest first."""
        ...

    def revoke(self, key_id: str, at: datetime) -> KeyRecord:
        """Marks the key revoked at `at` (a key revoked before keeps its first time) and
        returns it; NotFound for an unknown id."""
        ...

    def close(self) -> None:
        """Releases what the store opened itself (not a shared session)."""
        ...
