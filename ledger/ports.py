"""Ports of the ledger: the pulse log (Kafka, SQLite) and the ledger store (ScyllaDB, SQLite)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ledger.model import LedgerEvent, LogRecord, Position


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A record to publish: key (tenant id) and encoded pulse."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A log record that cannot enter the ledger, and why (carried as record headers)."""

    record: LogRecord
    reason: str
    detail: str


class PulseLog(Protocol):
    """The ordered, partitioned, durable log of accepted pulses (topic resource-consumption)."""

    def publish(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        """Returns only once every record is durably stored, stamped with `arrival` as its
        timestamp; raises Unavailable if any could not be confirmed (the caller reports none
        of them accepted, and a retry is safe because the ledger deduplicates)."""
        ...

    async def publish_async(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        """`publish` awaited on the caller's event loop: returns once every record is durably
        stored, raises Unavailable otherwise. Many calls may wait at once without a thread
        each, and the records of all of them travel together (the async ingestor's path)."""
        ...

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Durably appends records to the dead-letter log with reason headers. Idempotent per
        (origin position, reason): a record dead-lettered again is listed once."""
        ...

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """The first `limit` dead-lettered records, oldest first."""
        ...

    def consumer(self, group: str) -> LogConsumer:
        """A consumer in `group` that resumes after the group's committed offsets."""
        ...

    def committed(self, group: str) -> dict[int, int]:
        """Next offset to read per partition for `group` (partitions never committed: absent)."""
        ...

    def end_offsets(self) -> dict[int, int]:
        """Offset one past the last record, per partition."""
        ...

    def close(self) -> None: ...


class LogConsumer(Protocol):
    """Reads the pulse log in offset order per partition for one consumer group."""

    def poll(
        self, max_records: int, timeout: float, below: Mapping[int, int] | None = None
    ) -> list[LogRecord]:
        """Up to `max_records` next records; with `below`, none at or past below[partition]
        (those are read again by a later poll), and none of a partition missing from it."""
        ...

    def commit(self, records: Sequence[LogRecord]) -> None:
        """Durably records that everything up to these records is processed."""
        ...

    def seek(self, positions: Sequence[Position]) -> None:
        """Next poll starts at these positions (replay)."""
        ...

    def close(self) -> None: ...


class LogHistory(Protocol):
    """The pulse log read as history, outside every consumer group: replay, reconcile, audits.

    Reading never commits offsets and never joins a group, so it cannot disturb the live
    writer or projector.
    """

    def bounds(self) -> dict[int, tuple[int, int]]:
        """Per partition: (first offset still kept after retention, one past the last)."""
        ...

    def offsets_at(self, moment: datetime) -> dict[int, int]:
        """Per partition, the first offset whose arrival time is at or after `moment` (the end
        offset when there is none)."""
        ...

    def read(
        self, start: Mapping[int, int], end: Mapping[int, int], batch: int = 5000
    ) -> Iterator[list[LogRecord]]:
        """Records from start[p] (inclusive) to end[p] (exclusive) of each partition in
        `start`, in offset order per partition, a batch at a time; ends when every partition
        reached its end or its last record (a partition absent from `end` is read to the end
        as it was when reading began)."""
        ...

    def close(self) -> None: ...


# (pulse_id, partition, offset): where a conflict sits in the order conflicts are listed in.
ConflictKey = tuple[str, int, int]

# (tenant_id, pulse_id, partition, offset): the same across tenants, tenant first.
TenantConflictKey = tuple[str, str, int, int]

# (UTC hour of event time, pulse_id): the order pulses are listed in, which is the clustering
# order of the CQL table pulses_by_hour, so a page is a slice of one partition after another.
PulseKey = tuple[datetime, str]


@dataclass(frozen=True, slots=True)
class ConflictRecord:
    """A pulse id reused with a different payload: the first stays, this one is kept aside."""

    event: LedgerEvent
    existing_hash: str


class LedgerStore(Protocol):
    """Immutable pulse events with an exact, permanent (tenant_id, pulse_id) dedup index."""

    def seen(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Payload hash of each (tenant_id, pulse_id) already in the ledger."""
        ...

    def append(self, events: Sequence[LedgerEvent]) -> None:
        """Durably stores new events; the dedup mark of each is written only after, or
        atomically with, its event row. Re-appending the same events is a no-op."""
        ...

    def record_conflicts(self, conflicts: Sequence[ConflictRecord]) -> None:
        """Durably records rejected reuses of pulse ids (idempotent)."""
        ...

    def events_in_hour(self, tenant_id: str, hour: datetime) -> list[LedgerEvent]:
        """Every event of the tenant whose event time falls in that UTC hour."""
        ...

    def get(self, tenant_id: str, pulse_id: str) -> LedgerEvent | None:
        """The stored event for that id, or None."""
        ...

    def hours(self, tenant_id: str) -> list[datetime]:
        """The UTC hours that hold at least one event of the tenant, ascending."""
        ...

    def tenants(self) -> list[str]:
        """Every tenant with at least one event, sorted."""
        ...

    def conflicts(
        self, tenant_id: str, after: ConflictKey | None = None, limit: int | None = None
    ) -> list[ConflictRecord]:
        """Recorded conflicts of the tenant ordered by ConflictKey (pulse id in UTF-8 byte
        order, then position), only those after `after`, at most `limit` of them."""
        ...

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
        """Events of the tenant with start <= event time < end (and of `sku` when given),
        ordered by PulseKey (hour, then pulse id in UTF-8 byte order), only those after
        `after`, at most `limit`. Events appended meanwhile never move the ones already
        stored, so paging by the last key lists each of those exactly once."""
        ...

    def tenants_between(
        self, start: datetime, end: datetime, *, limit: int, after: str | None = None
    ) -> list[str]:
        """Tenants with at least one event in a UTC hour h with start <= h < end, in UTF-8
        byte order of the id, only those after `after`, at most `limit`."""
        ...

    def all_conflicts(
        self, *, limit: int, after: TenantConflictKey | None = None
    ) -> list[ConflictRecord]:
        """Recorded conflicts of every tenant ordered by TenantConflictKey (tenant id, then
        as `conflicts`), only those after `after`, at most `limit`."""
        ...

    def close(self) -> None: ...
