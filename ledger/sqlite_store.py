"""SQLiteLedgerStore: the embedded ledger; an event and its dedup mark commit in one transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from ledger.model import LedgerEvent, Position, Pulse, from_micros, hour_of, to_micros
from ledger.ports import ConflictKey, ConflictRecord, PulseKey, TenantConflictKey
from storage.sqlite import SQLiteDb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pulses (
  tenant_id TEXT NOT NULL, pulse_id TEXT NOT NULL, hour_us INTEGER NOT NULL,
  product_sku TEXT NOT NULL, used_amount TEXT NOT NULL, use_unit TEXT NOT NULL,
  occurred_at_us INTEGER NOT NULL, resource_id TEXT NOT NULL, region TEXT NOT NULL,
  source TEXT NOT NULL, attributes TEXT NOT NULL, payload_hash TEXT NOT NULL,
  log_partition INTEGER NOT NULL, log_offset INTEGER NOT NULL, arrival_us INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, pulse_id));
CREATE INDEX IF NOT EXISTS pulses_by_hour_id ON pulses (tenant_id, hour_us, pulse_id);
DROP INDEX IF EXISTS pulses_by_hour;
CREATE TABLE IF NOT EXISTS conflicts (
  tenant_id TEXT NOT NULL, pulse_id TEXT NOT NULL, log_partition INTEGER NOT NULL,
  log_offset INTEGER NOT NULL, payload_hash TEXT NOT NULL, existing_hash TEXT NOT NULL,
  event TEXT NOT NULL, PRIMARY KEY (tenant_id, pulse_id, log_partition, log_offset));
"""

_COLUMNS = (
    "tenant_id, pulse_id, product_sku, used_amount, use_unit, occurred_at_us, resource_id, "
    "region, source, attributes, payload_hash, log_partition, log_offset, arrival_us"
)


def _row_values(event: LedgerEvent) -> tuple[object, ...]:
    p = event.pulse
    return (
        p.tenant_id,
        p.pulse_id,
        p.product_sku,
        str(p.used_amount),
        p.use_unit,
        to_micros(p.occurred_at),
        p.resource_id,
        p.region,
        p.source,
        json.dumps(list(p.attributes)),
        event.payload_hash,
        event.position.partition,
        event.position.offset,
        to_micros(event.arrival),
    )


def _event(row: Sequence[object]) -> LedgerEvent:
    (tenant, pid, sku, amount, unit, occ, res, region, source, attrs, digest, part, off, arr) = row
    pulse = Pulse(
        pulse_id=str(pid),
        tenant_id=str(tenant),
        product_sku=str(sku),
        used_amount=Decimal(str(amount)),
        use_unit=str(unit),
        occurred_at=from_micros(int(str(occ))),
        resource_id=str(res),
        region=str(region),
        source=str(source),
        attributes=tuple((str(k), str(v)) for k, v in json.loads(str(attrs))),
    )
    return LedgerEvent(
        pulse, str(digest), Position(int(str(part)), int(str(off))), from_micros(int(str(arr)))
    )


class SQLiteLedgerStore:
    """The ledger in one SQLite file; the primary key (tenant_id, pulse_id) is the dedup index."""

    def __init__(self, path: Path) -> None:
        self._db = SQLiteDb(path, _SCHEMA)

    def seen(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        # One query per 500 keys rather than one per key: this runs for every writer batch.
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            pairs = ", ".join(["(?, ?)"] * len(chunk))
            rows = self._db.query(
                "SELECT tenant_id, pulse_id, payload_hash FROM pulses "
                f"WHERE (tenant_id, pulse_id) IN (VALUES {pairs})",
                [value for key in chunk for value in key],
            )
            for tenant, pid, digest in rows:
                found[(str(tenant), str(pid))] = str(digest)
        return found

    def append(self, events: Sequence[LedgerEvent]) -> None:
        # One transaction: the row is its own dedup mark, so "seen" can never precede it.
        # INSERT OR IGNORE makes a re-append after a crash a no-op.
        with self._db.tx() as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO pulses ({_COLUMNS}, hour_us) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*_row_values(e), to_micros(e.hour)) for e in events],
            )

    def record_conflicts(self, conflicts: Sequence[ConflictRecord]) -> None:
        with self._db.tx() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO conflicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.event.pulse.tenant_id,
                        c.event.pulse.pulse_id,
                        c.event.position.partition,
                        c.event.position.offset,
                        c.event.payload_hash,
                        c.existing_hash,
                        json.dumps(_row_values(c.event)),
                    )
                    for c in conflicts
                ],
            )

    def events_in_hour(self, tenant_id: str, hour: datetime) -> list[LedgerEvent]:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM pulses WHERE tenant_id = ? AND hour_us = ? ORDER BY pulse_id",
            (tenant_id, to_micros(hour_of(hour))),
        )
        return [_event(r) for r in rows]

    def get(self, tenant_id: str, pulse_id: str) -> LedgerEvent | None:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM pulses WHERE tenant_id = ? AND pulse_id = ?",
            (tenant_id, pulse_id),
        )
        return _event(rows[0]) if rows else None

    def hours(self, tenant_id: str) -> list[datetime]:
        rows = self._db.query(
            "SELECT DISTINCT hour_us FROM pulses WHERE tenant_id = ? ORDER BY hour_us",
            (tenant_id,),
        )
        return [from_micros(int(str(r[0]))) for r in rows]

    def tenants(self) -> list[str]:
        return [
            str(r[0]) for r in self._db.query("SELECT DISTINCT tenant_id FROM pulses ORDER BY 1")
        ]

    def conflicts(
        self, tenant_id: str, after: ConflictKey | None = None, limit: int | None = None
    ) -> list[ConflictRecord]:
        # TEXT compares by memcmp of UTF-8 (BINARY collation): the order CQL clustering has.
        start = after or ("", -1, -1)
        rows = self._db.query(
            "SELECT event, existing_hash FROM conflicts WHERE tenant_id = ? "
            "AND (pulse_id, log_partition, log_offset) > (?, ?, ?) "
            "ORDER BY pulse_id, log_partition, log_offset LIMIT ?",
            (tenant_id, *start, -1 if limit is None else limit),
        )
        return [ConflictRecord(_event(json.loads(str(ev))), str(h)) for ev, h in rows]

    def pulses(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        *,
        limit: int,
        after: PulseKey | None = None,
        sku: str | None = None,
    ) -> list[LedgerEvent]:
        # The hour bounds let the (tenant_id, hour_us, pulse_id) index answer in key order;
        # the event-time bounds cut the first and last hour when start or end is inside one.
        hour, pulse_id = after or (hour_of(start), "")
        sql = (
            f"SELECT {_COLUMNS} FROM pulses WHERE tenant_id = ? AND hour_us >= ? AND hour_us < ? "
            "AND occurred_at_us >= ? AND occurred_at_us < ? AND (hour_us, pulse_id) > (?, ?)"
        )
        args: list[object] = [
            tenant_id,
            to_micros(hour_of(start)),
            to_micros(end),
            to_micros(start),
            to_micros(end),
            to_micros(hour),
            pulse_id,
        ]
        if sku is not None:
            sql += " AND product_sku = ?"
            args.append(sku)
        rows = self._db.query(sql + " ORDER BY hour_us, pulse_id LIMIT ?", [*args, limit])
        return [_event(r) for r in rows]

    def tenants_between(
        self, start: datetime, end: datetime, *, limit: int, after: str | None = None
    ) -> list[str]:
        rows = self._db.query(
            "SELECT DISTINCT tenant_id FROM pulses WHERE tenant_id > ? "
            "AND hour_us >= ? AND hour_us < ? ORDER BY tenant_id LIMIT ?",
            (after or "", to_micros(start), to_micros(end), limit),
        )
        return [str(r[0]) for r in rows]

    def all_conflicts(
        self, *, limit: int, after: TenantConflictKey | None = None
    ) -> list[ConflictRecord]:
        start = after or ("", "", -1, -1)
        rows = self._db.query(
            "SELECT event, existing_hash FROM conflicts "
            "WHERE (tenant_id, pulse_id, log_partition, log_offset) > (?, ?, ?, ?) "
            "ORDER BY tenant_id, pulse_id, log_partition, log_offset LIMIT ?",
            (*start, limit),
        )
        return [ConflictRecord(_event(json.loads(str(ev))), str(h)) for ev, h in rows]

    def close(self) -> None:
        self._db.close()
