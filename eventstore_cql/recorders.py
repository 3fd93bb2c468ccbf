"""eventsourcing on CQL, the recorders' core: the locked write protocol (README.md, "Writes").

ScyllaAggregateRecorder holds the write protocol; the recorders of application.py extend it.
Driver errors become the library's PersistenceError classes in datastore.translated.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from cassandra.query import BatchStatement, BatchType
from eventsourcing.persistence import (
    AggregateRecorder,
    IntegrityError,
    OperationalError,
    Recorder,
    StoredEvent,
    Tracking,
)

from eventstore_cql.datastore import (
    HOST,
    LOGS_TABLE,
    Head,
    Key,
    LogLock,
    PendingTracking,
    Request,
    ScyllaDatastore,
    applied,
    checked_name,
    chunked,
    event_size,
    now_ms,
    to_ms,
)

log = logging.getLogger(__name__)


class ScyllaRecorder(Recorder):
    def __init__(self, datastore: ScyllaDatastore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datastore = datastore
        self.create_table_statements = self.construct_create_table_statements()

    def construct_create_table_statements(self) -> list[str]:
        return []

    def create_table(self) -> None:
        self.datastore.ensure_keyspace()
        for statement in self.create_table_statements:
            self.datastore.execute(statement)


class ScyllaAggregateRecorder(ScyllaRecorder, AggregateRecorder):
    def __init__(
        self, datastore: ScyllaDatastore, *, events_table_name: str = "stored_events", **kw: Any
    ) -> None:
        self.events_table_name = checked_name(events_table_name)
        self.events_table = datastore.qualified(events_table_name)
        self.logs_table = datastore.qualified(LOGS_TABLE)
        super().__init__(datastore, **kw)
        t, logs = self.events_table, self.logs_table
        self._insert_event = (
            f"INSERT INTO {t} (originator_id, originator_version, topic, state, txn) "
            "VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        self._read_versions = (
            f"SELECT originator_version, txn FROM {t} "
            "WHERE originator_id = ? AND originator_version IN ?"
        )
        self._delete_event = (
            f"DELETE FROM {t} WHERE originator_id = ? AND originator_version = ? IF txn = ?"
        )
        self._read_head = (
            f"SELECT epoch, last_id, holder, expires, pending_txn, pending_keys, "
            f"pending_tracking FROM {logs} WHERE log = ?"
        )
        self._init_head = f"INSERT INTO {logs} (log, epoch, last_id) VALUES (?, 0, 0) IF NOT EXISTS"
        self._acquire_head = (
            f"UPDATE {logs} SET epoch = ?, holder = ?, expires = ?, pending_txn = ?, "
            "pending_keys = ?, pending_tracking = ? WHERE log = ? IF epoch = ? AND holder = null"
        )
        self._take_over_head = (
            f"UPDATE {logs} SET epoch = ?, holder = ?, expires = ? WHERE log = ? IF epoch = ?"
        )
        free = "holder = null, expires = null, pending_txn = null, pending_keys = null"
        self._release_head = (
            f"UPDATE {logs} SET {free}, pending_tracking = null "
            "WHERE log = ? IF epoch = ? AND holder = ?"
        )
        self._commit_head = (
            f"UPDATE {logs} SET last_id = ?, {free}, pending_tracking = null "
            "WHERE log = ? IF epoch = ? AND holder = ?"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.events_table} ("
            "originator_id text, originator_version bigint, topic text, state blob, txn bigint, "
            "PRIMARY KEY ((originator_id), originator_version)) "
            "WITH CLUSTERING ORDER BY (originator_version ASC) AND comment = "
            "'eventsourcing aggregate sequences; txn = epoch of the locked write that added it'",
            f"CREATE TABLE IF NOT EXISTS {self.logs_table} ("
            "log text PRIMARY KEY, last_id bigint, epoch bigint, holder text, expires timestamp, "
            "pending_txn bigint, pending_keys frozen<list<frozen<tuple<text, bigint>>>>, "
            "pending_tracking frozen<tuple<text, text, bigint>>) WITH comment = "
            "'eventsourcing: committed last notification id and write lock per events table'",
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return None
        groups = self._grouped(stored_events)
        batches = self._event_batches(groups, txn=None)
        if len(batches) > 1:  # atomic only under the log's lock
            self._transaction(stored_events, groups, count=0, tracking=None)
            return None
        if not applied(self.datastore.execute(batches[0])):
            raise IntegrityError(f"{self.events_table}: an event already exists: {stored_events}")
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        cql = f"SELECT originator_version, topic, state FROM {self.events_table} "
        cql += "WHERE originator_id = ?"
        params: list[Any] = [str(originator_id)]
        if gt is not None:
            cql += " AND originator_version > ?"
            params.append(gt)
        if lte is not None:
            cql += " AND originator_version <= ?"
            params.append(lte)
        cql += " ORDER BY originator_version " + ("DESC" if desc else "ASC")
        if limit is not None:
            cql += " LIMIT ?"
            params.append(limit)
        oid = self.datastore.originator_id(str(originator_id))
        return [
            StoredEvent(originator_id=oid, originator_version=v, topic=topic, state=state)
            for v, topic, state in self.datastore.rows(cql, params)
        ]

    # -- building blocks -------------------------------------------------------------------

    def _grouped(self, events: Sequence[StoredEvent]) -> dict[str, list[StoredEvent]]:
        groups: dict[str, list[StoredEvent]] = {}
        seen: set[Key] = set()
        for event in events:
            key = (str(event.originator_id), event.originator_version)
            if key in seen:
                raise IntegrityError(f"{self.events_table}: event {key} twice in one write")
            seen.add(key)
            groups.setdefault(key[0], []).append(event)
        return groups

    def _event_batches(self, groups: dict[str, list[StoredEvent]], txn: int | None) -> list[Any]:
        """Single-partition conditional batches: one per aggregate unless it exceeds BATCH_BYTES."""
        insert = self.datastore.prepare(self._insert_event)
        batches = []
        for oid, events in groups.items():
            for chunk in chunked(events, event_size):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for e in chunk:
                    batch.add(insert, (oid, e.originator_version, e.topic, e.state, txn))
                batches.append(batch)
        return batches

    def _existing(self, groups: dict[str, list[StoredEvent]]) -> list[tuple[str, int, Any]]:
        """(originator_id, version, txn) of the rows that exist among the given events' keys."""
        read = self.datastore.prepare(self._read_versions)
        requests = [(read, (oid, [e.originator_version for e in es])) for oid, es in groups.items()]
        results = self.datastore.execute_all(requests)
        return [(oid, v, txn) for oid, rows in zip(groups, results, strict=True) for v, txn in rows]

    # -- the locked write (module docstring, steps 1-4) --------------------------------------

    def _transaction(
        self,
        events: Sequence[StoredEvent],
        groups: dict[str, list[StoredEvent]],
        count: int,
        tracking: Tracking | None,
    ) -> int:
        """Writes events, `count` notifications and tracking atomically (module docstring,
        steps 1-4); returns the first notification id assigned."""
        keys = [(oid, e.originator_version) for oid, es in groups.items() for e in es]
        pending_tracking = self._pending_tracking(tracking)
        with self.datastore.local_lock(self.events_table_name):
            lock = self._acquire(keys, pending_tracking)
            sent = False
            try:
                cas, plain = self._writes(lock, events, groups, count, tracking)
                if len(cas) > 1:  # conflicts found now cost no undo
                    self._check(groups)
                sent = True
                results = self.datastore.execute_all([*cas, *plain])
                if not all(applied(r) for r in results[: len(cas)]):
                    raise IntegrityError(f"{self.events_table}: conflicting write of {keys}")
            except Exception:
                self._abort(lock, keys, pending_tracking, undo=sent)
                raise
            self._commit(lock, count, keys, pending_tracking)
        return lock.last_id + 1

    def _pending_tracking(self, tracking: Tracking | None) -> PendingTracking | None:
        return None

    def _check(self, groups: dict[str, list[StoredEvent]]) -> None:
        existing = self._existing(groups)
        if existing:
            found = [(oid, v) for oid, v, _ in existing]
            raise IntegrityError(f"{self.events_table}: events already exist: {found}")

    def _writes(
        self,
        lock: LogLock,
        events: Sequence[StoredEvent],
        groups: dict[str, list[StoredEvent]],
        count: int,
        tracking: Tracking | None,
    ) -> tuple[list[Request], list[Request]]:
        """The statements of step 3: (conditional ones, plain ones)."""
        return [(batch, None) for batch in self._event_batches(groups, txn=lock.epoch)], []

    def _acquire(self, keys: list[Key], pending_tracking: PendingTracking | None) -> LogLock:
        ds, name = self.datastore, self.events_table_name
        deadline = time.monotonic() + ds.lock_timeout
        head = ds.heads.pop(name, None)  # as this process left it; the CAS checks it is current
        pause = 0.002
        while True:
            if head is None:
                head = self._head()
            now = now_ms()
            epoch = max(head.epoch + 1, now * 1000)  # increasing, and a write timestamp
            holder = f"{HOST}:{os.getpid()}:{threading.get_native_id()}:{epoch}"
            expires = now + ds.lock_lease_ms
            if head.holder is None:
                acquire = (epoch, holder, expires, epoch, keys, pending_tracking, name, head.epoch)
                if self._swap_head(self._acquire_head, acquire, holder, deadline):
                    return LogLock(epoch, holder, head.last_id)
            elif head.expires_ms is None or now > head.expires_ms:
                # The holder died or stalled past its lease: take over its intent and undo it.
                log.warning("%s: taking over the write lock of %s", name, head.holder)
                take_over = (epoch, holder, expires, name, head.epoch)
                if self._swap_head(self._take_over_head, take_over, holder, deadline):
                    if head.pending_txn is not None:
                        stale_keys = list(head.pending_keys)
                        self._undo(head.pending_txn, stale_keys, head.pending_tracking)
                    self._release(LogLock(epoch, holder, head.last_id))
            elif time.monotonic() > deadline:
                raise OperationalError(
                    f"timed out after {ds.lock_timeout}s waiting for the write lock of "
                    f"{name} held by {head.holder}"
                )
            else:
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.1)
            head = None

    def _swap_head(self, cql: str, params: tuple[Any, ...], holder: str, deadline: float) -> bool:
        """An LWT on the log row; an unknown outcome (e.g. a CAS contention timeout) is settled
        by a linearizable read, so a lock is never held without its holder knowing."""
        try:
            return applied(self.datastore.execute(cql, params))
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            log.warning("%s: lock LWT outcome unknown, reading it back", self.events_table_name)
            return self._head().holder == holder

    def write_mark(self) -> tuple[int, int] | None:
        """(epoch, last_id) of the log head, or None while a writer holds its lock. Rows are
        written (and undone) only under the lock, and each acquisition changes the epoch: equal
        marks around some reads mean they saw committed events only. A plain read suffices:
        the acquisition's CAS completes before any row is written."""
        row = self.datastore.one(self._read_head, (self.events_table_name,))
        if row is None:
            return (0, 0)  # no head yet: nothing was ever written
        epoch, last_id, holder, *_pending = row
        return None if holder is not None else (epoch, last_id)

    def _head(self) -> Head:
        name = self.events_table_name
        row = self.datastore.one(self._read_head, (name,), serial=True)
        if row is None:
            self.datastore.execute(self._init_head, (name,))
            row = self.datastore.one(self._read_head, (name,), serial=True)
        epoch, last_id, holder, expires, txn, keys, tracking = row
        pending_tracking = tuple(tracking) if tracking else None
        return Head(
            epoch, last_id, holder, to_ms(expires), txn, tuple(keys or ()), pending_tracking
        )

    def _commit(
        self, lock: LogLock, count: int, keys: list[Key], pending_tracking: PendingTracking | None
    ) -> None:
        name = self.events_table_name
        try:
            done = applied(
                self.datastore.execute(
                    self._commit_head, (lock.last_id + count, name, lock.epoch, lock.holder)
                )
            )
        except OperationalError:
            # Outcome unknown (e.g. a CAS write timeout): a linearizable read settles it.
            head = self._head()
            if head.epoch == lock.epoch and head.holder is None:
                done = True
            elif head.epoch == lock.epoch and head.holder == lock.holder:
                self._abort(lock, keys, pending_tracking)
                raise
            else:
                raise
        if not done:
            # Another writer took the lock over (our lease expired) and undid this write;
            # undo again in case a write of ours landed after its undo.
            self._undo(lock.epoch, keys, pending_tracking)
            raise OperationalError(f"{name}: write lock lost before commit; nothing written")
        self.datastore.heads[name] = Head(lock.epoch, lock.last_id + count)
        self._committed()

    def _committed(self) -> None:
        """Called after each commit (subscriptions of this process are woken here)."""

    def _abort(
        self,
        lock: LogLock,
        keys: list[Key],
        pending_tracking: PendingTracking | None,
        *,
        undo: bool = True,
    ) -> None:
        """Best effort: if it fails, the intent stays on the log row for the next writer."""
        try:
            if undo:  # else nothing was sent: freeing the lock is enough
                self._undo(lock.epoch, keys, pending_tracking)
            self._release(lock)
        except Exception:
            log.exception("%s: undo of epoch %s failed", self.events_table_name, lock.epoch)

    def _release(self, lock: LogLock) -> None:
        name = self.events_table_name
        params = (name, lock.epoch, lock.holder)
        if applied(self.datastore.execute(self._release_head, params)):
            self.datastore.heads[name] = Head(lock.epoch, lock.last_id)

    def _undo(self, txn: int, keys: list[Key], pending_tracking: PendingTracking | None) -> None:
        """Deletes the event rows and restores the tracking row written with stamp `txn`."""
        groups: dict[str, list[StoredEvent]] = {}
        for oid, version in keys:
            groups.setdefault(oid, []).append(StoredEvent(oid, version, "", b""))
        delete = self.datastore.prepare(self._delete_event)
        ours = [(oid, v) for oid, v, stamp in self._existing(groups) if stamp == txn]
        batches = []
        for oid in {oid for oid, _ in ours}:
            versions = [v for o, v in ours if o == oid]
            for chunk in chunked(versions, lambda _: 0):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for v in chunk:
                    batch.add(delete, (oid, v, txn))
                batches.append(batch)
        self.datastore.execute_all([(batch, None) for batch in batches])
        if pending_tracking is not None:
            self._undo_tracking(txn, *pending_tracking)

    def _undo_tracking(self, txn: int, table: str, application_name: str, _new: int) -> None:
        ds, t = self.datastore, self.datastore.qualified(table)
        select = f"SELECT previous_id, txn FROM {t} WHERE application_name = ?"
        row = ds.one(select, (application_name,), serial=True)
        if row is None or row[1] != txn:
            return  # not written by that transaction
        if row[0] is None:
            delete = f"DELETE FROM {t} WHERE application_name = ? IF txn = ?"
            ds.execute(delete, (application_name, txn))
        else:
            restore = (
                f"UPDATE {t} SET notification_id = ?, previous_id = null, txn = null "
                "WHERE application_name = ? IF txn = ?"
            )
            ds.execute(restore, (row[0], application_name, txn))
