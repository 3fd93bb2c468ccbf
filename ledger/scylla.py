"""ScyllaLedgerStore: the ledger on ScyllaDB/Cassandra (CQL), on the session of storage.cql."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from math import ceil
from typing import Any

from cassandra.cluster import Session
from cassandra.query import PreparedStatement

from ledger.model import LedgerEvent, Position, Pulse, from_micros, hour_of, to_micros
from ledger.ports import ConflictKey, ConflictRecord, PulseKey, TenantConflictKey
from storage.cql import execute_all, run_concurrent, text_size, translated, unlogged_batches

# Rows per unlogged batch (each batch also stays under storage.cql.BATCH_BYTES), and pulse
# ids per dedup look-up: one request then serves many pulses.
BATCH_ROWS = 100
SEEN_CHUNK = 100
# Hour partitions of a tenant asked in the first request of a page of `pulses` (then as many
# as the rows per hour seen so far say the page needs).
HOURS_AHEAD = 8
MAX_HOURS_AHEAD = 64  # hours in one request of a pulse page, at most
# Tenants probed at once by the cross-tenant listings (one small request each, concurrently).
TENANT_CHUNK = 100


class ScyllaLedgerStore:
    """Ledger tables of cql/tables/001_ledger.cql."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._keyspace = keyspace
        ks = keyspace
        p = session.prepare
        with translated("preparing ledger statements"):
            # IN on the last partition-key column: one request per tenant and 100 ids.
            self._seen = p(
                f"SELECT pulse_id, payload_hash FROM {ks}.pulses_by_id "
                "WHERE tenant_id=? AND pulse_id IN ?"
            )
            self._insert_event = p(
                f"INSERT INTO {ks}.pulses_by_hour (tenant_id, hour, pulse_id, product_sku, "
                "used_amount, use_unit, occurred_at, occurred_at_us, arrival, kafka_partition, "
                "kafka_offset, resource_id, region, source, attributes, payload_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )
            self._insert_hour = p(f"INSERT INTO {ks}.ledger_hours (tenant_id, hour) VALUES (?, ?)")
            self._insert_tenant = p(
                f"INSERT INTO {ks}.ledger_tenants (bucket, tenant_id) VALUES (0, ?)"
            )
            self._insert_mark = p(
                f"INSERT INTO {ks}.pulses_by_id (tenant_id, pulse_id, hour, payload_hash, "
                "kafka_partition, kafka_offset, arrival) VALUES (?, ?, ?, ?, ?, ?, ?)"
            )
            self._insert_conflict = p(
                f"INSERT INTO {ks}.pulse_conflicts (tenant_id, pulse_id, kafka_partition, "
                "kafka_offset, payload_hash, existing_hash, product_sku, used_amount, use_unit, "
                "occurred_at_us, arrival, resource_id, region, source, attributes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )
            cols = (
                "tenant_id, pulse_id, product_sku, used_amount, use_unit, occurred_at_us, "
                "resource_id, region, source, attributes, payload_hash, kafka_partition, "
                "kafka_offset, arrival"
            )
            self._hour_events = p(
                f"SELECT {cols} FROM {ks}.pulses_by_hour WHERE tenant_id=? AND hour=?"
            )
            self._get_mark = p(
                f"SELECT hour FROM {ks}.pulses_by_id WHERE tenant_id=? AND pulse_id=?"
            )
            self._get_event = p(
                f"SELECT {cols} FROM {ks}.pulses_by_hour "
                "WHERE tenant_id=? AND hour=? AND pulse_id=?"
            )
            self._hours = p(f"SELECT hour FROM {ks}.ledger_hours WHERE tenant_id=?")
            self._hours_between = p(
                f"SELECT hour FROM {ks}.ledger_hours WHERE tenant_id=? AND hour >= ? AND hour < ?"
            )
            self._any_hour_between = p(
                f"SELECT hour FROM {ks}.ledger_hours WHERE tenant_id=? AND hour >= ? AND hour < ? "
                "LIMIT 1"
            )
            # ALLOW FILTERING inside one partition (tenant, hour) only: the server skips the
            # rows outside the event-time range or of another SKU while it reads the slice,
            # instead of sending them to be dropped here; never a scan across partitions.
            page = (
                f"SELECT {cols} FROM {ks}.pulses_by_hour WHERE tenant_id=? AND hour=? "
                "AND pulse_id > ? AND occurred_at_us >= ? AND occurred_at_us < ?"
            )
            self._hour_slice = p(f"{page} LIMIT ? ALLOW FILTERING")
            self._hour_slice_of_sku = p(f"{page} AND product_sku = ? LIMIT ? ALLOW FILTERING")
            # The hours after a page's first, several partitions in one request (the
            # coordinator reads them concurrently), at most `limit` rows from each; their
            # order is set here, by (hour, pulse_id), not taken from the reply.
            hours_page = (
                f"SELECT hour, {cols} FROM {ks}.pulses_by_hour WHERE tenant_id=? AND hour IN ? "
                "AND occurred_at_us >= ? AND occurred_at_us < ?"
            )
            self._hours_slice = p(f"{hours_page} PER PARTITION LIMIT ? ALLOW FILTERING")
            self._hours_slice_of_sku = p(
                f"{hours_page} AND product_sku = ? PER PARTITION LIMIT ? ALLOW FILTERING"
            )
            self._tenants_after = p(
                f"SELECT tenant_id FROM {ks}.ledger_tenants WHERE bucket=0 AND tenant_id > ? "
                "LIMIT ?"
            )
            self._tenants = p(f"SELECT tenant_id FROM {ks}.ledger_tenants WHERE bucket=0")
            self._conflicts = p(
                "SELECT tenant_id, pulse_id, product_sku, used_amount, use_unit, occurred_at_us, "
                "resource_id, region, source, attributes, payload_hash, kafka_partition, "
                f"kafka_offset, arrival, existing_hash FROM {ks}.pulse_conflicts WHERE tenant_id=? "
                "AND (pulse_id, kafka_partition, kafka_offset) > (?, ?, ?) LIMIT ?"
            )

    def seen(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for tenant, pulse_id in keys:
            by_tenant[tenant].append(pulse_id)
        args = [
            (tenant, ids[i : i + SEEN_CHUNK])
            for tenant, ids in by_tenant.items()
            for i in range(0, len(ids), SEEN_CHUNK)
        ]
        with translated("reading the dedup index"):
            results = run_concurrent(self._session, self._seen, args)
            return {
                (tenant, row.pulse_id): row.payload_hash
                for (tenant, _ids), rows in zip(args, results, strict=True)
                for row in rows
            }

    def append(self, events: Sequence[LedgerEvent]) -> None:
        if not events:
            return
        hours = sorted({(e.pulse.tenant_id, e.hour) for e in events})
        marks = [
            (
                e.pulse.tenant_id,
                e.pulse.pulse_id,
                e.hour,
                e.payload_hash,
                e.position.partition,
                e.position.offset,
                e.arrival,
            )
            for e in events
        ]
        with translated("writing ledger events"):
            # 1. event rows, and the hour and tenant listings (idempotent upserts), in
            #    unlogged batches of partitions that share their replicas (atomic per
            #    partition); a crash here leaves no mark, so the batch is written again;
            self._write(self._insert_event, [self._event_values(e) for e in events])
            self._write(self._insert_hour, hours)
            self._write(self._insert_tenant, [(t,) for t in sorted({t for t, _ in hours})])
            # 2. only now the dedup marks: a crash before this line leaves ids unmarked, so the
            #    redelivered batch writes the same rows again instead of skipping them.
            self._write(self._insert_mark, marks)

    def _write(self, statement: PreparedStatement, rows: Sequence[Sequence[object]]) -> None:
        batches = unlogged_batches(
            self._session, self._keyspace, statement, rows, max_rows=BATCH_ROWS, size_of=text_size
        )
        execute_all(self._session, batches)

    def record_conflicts(self, conflicts: Sequence[ConflictRecord]) -> None:
        args = []
        for c in conflicts:
            p = c.event.pulse
            args.append(
                (
                    p.tenant_id,
                    p.pulse_id,
                    c.event.position.partition,
                    c.event.position.offset,
                    c.event.payload_hash,
                    c.existing_hash,
                    p.product_sku,
                    p.used_amount,
                    p.use_unit,
                    to_micros(p.occurred_at),
                    c.event.arrival,
                    p.resource_id,
                    p.region,
                    p.source,
                    dict(p.attributes),
                )
            )
        with translated("recording conflicts"):
            run_concurrent(self._session, self._insert_conflict, args)

    def events_in_hour(self, tenant_id: str, hour: datetime) -> list[LedgerEvent]:
        with translated("reading a ledger hour"):
            rows = self._session.execute(self._hour_events, (tenant_id, hour_of(hour)))
            return [_event(r) for r in rows]

    def get(self, tenant_id: str, pulse_id: str) -> LedgerEvent | None:
        with translated("reading a pulse"):
            mark = self._session.execute(self._get_mark, (tenant_id, pulse_id)).one()
            if mark is None:
                return None
            row = self._session.execute(self._get_event, (tenant_id, mark.hour, pulse_id)).one()
            return _event(row) if row is not None else None

    def hours(self, tenant_id: str) -> list[datetime]:
        with translated("listing ledger hours"):
            return [_aware(r.hour) for r in self._session.execute(self._hours, (tenant_id,))]

    def tenants(self) -> list[str]:
        with translated("listing tenants"):
            return sorted(r.tenant_id for r in self._session.execute(self._tenants))

    def conflicts(
        self, tenant_id: str, after: ConflictKey | None = None, limit: int | None = None
    ) -> list[ConflictRecord]:
        # Clustering order (pulse_id, kafka_partition, kafka_offset) is the listing order; no
        # stored id is empty, so ("", -1, -1) is before every row.
        start = after or ("", -1, -1)
        count = 2**31 - 1 if limit is None else limit
        with translated("reading conflicts"):
            rows = self._session.execute(self._conflicts, (tenant_id, *start, count))
            return [ConflictRecord(_event(r), r.existing_hash) for r in rows]

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
        # Hour partitions in clustering order. The page's first hour is read as a slice
        # after the cursor's id; the hours after it in requests of several hours each (IN on
        # the last partition-key column), as many as the rows per hour seen so far say the
        # page still needs, and taken in (hour, pulse_id) order until the page is full.
        first, after_id = after or (hour_of(start), "")
        low, high = to_micros(start), to_micros(end)
        out: list[LedgerEvent] = []
        with translated(f"reading pulses of {tenant_id}"):
            hours = [
                _aware(r.hour)
                for r in self._session.execute(
                    self._hours_between, (tenant_id, max(first, hour_of(start)), end)
                )
            ]
            if hours and hours[0] == first and after_id:
                bounds = (tenant_id, first, after_id, low, high)
                if sku is None:
                    rows = self._session.execute(self._hour_slice, (*bounds, limit))
                else:
                    rows = self._session.execute(self._hour_slice_of_sku, (*bounds, sku, limit))
                out.extend(_event(r) for r in rows)
                hours = hours[1:]
            ahead, read_hours, read_rows = HOURS_AHEAD, 0, 0
            while len(out) < limit and hours:
                batch, hours = hours[:ahead], hours[ahead:]
                want = limit - len(out)
                if sku is None:
                    args: tuple[object, ...] = (tenant_id, batch, low, high, want)
                    rows = self._session.execute(self._hours_slice, args)
                else:
                    args = (tenant_id, batch, low, high, sku, want)
                    rows = self._session.execute(self._hours_slice_of_sku, args)
                found = sorted(rows, key=lambda r: (r.hour, r.pulse_id))
                out.extend(_event(r) for r in found[:want])
                read_hours, read_rows = read_hours + len(batch), read_rows + len(found)
                per_hour = max(read_rows / read_hours, 1.0)
                ahead = min(max(ceil((limit - len(out)) / per_hour), HOURS_AHEAD), MAX_HOURS_AHEAD)
        return out

    def tenants_between(
        self, start: datetime, end: datetime, *, limit: int, after: str | None = None
    ) -> list[str]:
        # ledger_tenants in id order, a chunk at a time; each tenant of a chunk is asked
        # concurrently for one hour in the range.
        found: list[str] = []
        last = after or ""
        with translated("listing tenants with usage"):
            while len(found) < limit:
                chunk = [
                    r.tenant_id
                    for r in self._session.execute(self._tenants_after, (last, TENANT_CHUNK))
                ]
                if not chunk:
                    break
                probes = [(t, start, end) for t in chunk]
                results = run_concurrent(self._session, self._any_hour_between, probes)
                found.extend(t for t, rows in zip(chunk, results, strict=True) if list(rows))
                last = chunk[-1]
        return found[:limit]

    def all_conflicts(
        self, *, limit: int, after: TenantConflictKey | None = None
    ) -> list[ConflictRecord]:
        # A conflict's tenant always has its first pulse in the ledger, so ledger_tenants
        # lists every tenant that can have conflicts.
        out: list[ConflictRecord] = []
        last = ""
        if after is not None:
            last = after[0]
            out = self.conflicts(after[0], after=after[1:], limit=limit)
        with translated("reading conflicts of every tenant"):
            while len(out) < limit:
                chunk = [
                    r.tenant_id
                    for r in self._session.execute(self._tenants_after, (last, TENANT_CHUNK))
                ]
                if not chunk:
                    break
                need = limit - len(out)
                probes = [(t, "", -1, -1, need) for t in chunk]
                for rows in run_concurrent(self._session, self._conflicts, probes):
                    out.extend(ConflictRecord(_event(r), r.existing_hash) for r in rows)
                last = chunk[-1]
        return out[:limit]

    def close(self) -> None:
        pass  # the session belongs to the process's CqlConnection (storage.cql), closed once

    def _event_values(self, e: LedgerEvent) -> tuple[object, ...]:
        p = e.pulse
        return (
            p.tenant_id,
            e.hour,
            p.pulse_id,
            p.product_sku,
            p.used_amount,
            p.use_unit,
            p.occurred_at,
            to_micros(p.occurred_at),
            e.arrival,
            e.position.partition,
            e.position.offset,
            p.resource_id,
            p.region,
            p.source,
            dict(p.attributes),
            e.payload_hash,
        )


def _aware(moment: datetime) -> datetime:
    """The driver returns naive UTC datetimes; the domain only knows aware ones."""
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _event(row: Any) -> LedgerEvent:
    pulse = Pulse(
        pulse_id=row.pulse_id,
        tenant_id=row.tenant_id,
        product_sku=row.product_sku,
        used_amount=Decimal(row.used_amount),
        use_unit=row.use_unit,
        occurred_at=from_micros(row.occurred_at_us),
        resource_id=row.resource_id or "",
        region=row.region or "",
        source=row.source or "",
        attributes=tuple(sorted((row.attributes or {}).items())),
    )
    # arrival is stored at millisecond precision (CQL timestamp), as stamped on the Kafka record
    return LedgerEvent(
        pulse,
        row.payload_hash,
        Position(row.kafka_partition, row.kafka_offset),
        _aware(row.arrival),
    )
