"""eventsourcing on CQL: the application, subscription, tracking and process recorders.

They extend the locked write of recorders.py (README.md, "Writes") with the application
sequence (notifications in buckets of BUCKET_SIZE ids) and tracking rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from threading import Event, Lock, Thread
from typing import Any, cast

from cassandra.query import BatchStatement, BatchType
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from eventstore_cql.datastore import (
    BUCKET_SIZE,
    LogLock,
    PendingTracking,
    Request,
    ScyllaDatastore,
    applied,
    checked_name,
    chunked,
    event_size,
)
from eventstore_cql.recorders import ScyllaAggregateRecorder, ScyllaRecorder


class ScyllaApplicationRecorder(ScyllaAggregateRecorder, ApplicationRecorder):
    def __init__(
        self, datastore: ScyllaDatastore, *, events_table_name: str = "stored_events", **kw: Any
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name, **kw)
        self.notifications_table_name = checked_name(f"{self.events_table_name}_notifications")
        n = self.notifications_table = datastore.qualified(self.notifications_table_name)
        self.create_table_statements.append(
            f"CREATE TABLE IF NOT EXISTS {n} (bucket bigint, notification_id bigint, "
            "originator_id text, originator_version bigint, topic text, state blob, "
            "PRIMARY KEY ((bucket), notification_id)) "
            "WITH CLUSTERING ORDER BY (notification_id ASC) AND comment = "
            f"'eventsourcing application sequence; bucket = notification_id / {BUCKET_SIZE}; "
            "rows above eventsourcing_logs.last_id are uncommitted'"
        )
        self._insert_notification = (
            f"INSERT INTO {n} (bucket, notification_id, originator_id, originator_version, "
            "topic, state) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._select_notifications = (
            f"SELECT notification_id, originator_id, originator_version, topic, state FROM {n} "
            "WHERE bucket = ? AND notification_id >= ? AND notification_id <= ?"
        )
        self._select_last_id = f"SELECT last_id FROM {self.logs_table} WHERE log = ?"
        self._listeners: set[Event] = set()
        self._listeners_lock = Lock()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert(stored_events, tracking=None)

    def _insert(self, events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        if not events:
            return []
        groups = self._grouped(events)
        first = self._transaction(events, groups, count=len(events), tracking=tracking)
        return list(range(first, first + len(events)))

    def _writes(
        self,
        lock: LogLock,
        events: Sequence[StoredEvent],
        groups: dict[str, list[StoredEvent]],
        count: int,
        tracking: Tracking | None,
    ) -> tuple[list[Request], list[Request]]:
        cas, plain = super()._writes(lock, events, groups, count, tracking)
        insert = self.datastore.prepare(self._insert_notification)
        numbered = list(enumerate(events, start=lock.last_id + 1))
        for bucket, in_bucket in groupby(numbered, key=lambda n: n[0] // BUCKET_SIZE):
            for chunk in chunked(list(in_bucket), lambda n: event_size(n[1])):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for nid, e in chunk:
                    row = (bucket, nid, str(e.originator_id), e.originator_version, e.topic)
                    # The epoch as write timestamp: a later transaction always overwrites
                    # rows an aborted one left above last_id, whatever the clocks say.
                    batch.add(insert, (*row, e.state, lock.epoch))
                plain.append((batch, None))
        return cas, plain

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        last_id = self.max_notification_id() or 0  # never read past what is committed
        low = 1 if start is None else start if inclusive_of_start else start + 1
        low, high = max(low, 1), last_id if stop is None else min(stop, last_id)
        wanted = set(topics)
        found: list[Notification] = []
        for bucket in range(low // BUCKET_SIZE, high // BUCKET_SIZE + 1):
            if len(found) >= limit or low > high:
                break
            cql, params = self._select_notifications, [bucket, low, high]
            if not wanted:
                cql += " LIMIT ?"
                params.append(limit - len(found))
            for nid, oid, version, topic, state in self.datastore.iter_rows(
                cql, params, fetch_size=max(limit, 100)
            ):
                if wanted and topic not in wanted:
                    continue
                originator_id = self.datastore.originator_id(oid)
                found.append(Notification(originator_id, version, topic, state, id=nid))
                if len(found) == limit:
                    break
        return found

    def max_notification_id(self) -> int | None:
        row = self.datastore.one(self._select_last_id, (self.events_table_name,))
        return (row[0] or None) if row else None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return ScyllaSubscription(recorder=self, gt=gt, topics=topics)

    def listen(self, event: Event) -> None:
        with self._listeners_lock:
            self._listeners.add(event)

    def unlisten(self, event: Event) -> None:
        with self._listeners_lock:
            self._listeners.discard(event)

    def _committed(self) -> None:
        with self._listeners_lock:
            for listener in self._listeners:
                listener.set()


class ScyllaSubscription(ListenNotifySubscription[ScyllaApplicationRecorder]):
    """CQL has no LISTEN/NOTIFY: polls the log, and commits of this process wake it at once."""

    poll_interval = 0.2

    def __init__(
        self, recorder: ScyllaApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()
    ) -> None:
        self._stopping = Event()
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        recorder.listen(self._has_been_notified)
        self._poller = Thread(target=self._poll, daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.wait(self.poll_interval):
            self._has_been_notified.set()

    def stop(self) -> None:
        self._stopping.set()
        super().stop()
        self._recorder.unlisten(self._has_been_notified)


class ScyllaTrackingRecorder(ScyllaRecorder, TrackingRecorder):
    def __init__(
        self,
        datastore: ScyllaDatastore,
        *,
        tracking_table_name: str = "notification_tracking",
        **kw: Any,
    ) -> None:
        self.tracking_table_name = checked_name(tracking_table_name)
        t = self.tracking_table = datastore.qualified(tracking_table_name)
        super().__init__(datastore, **kw)
        self.create_table_statements.append(
            f"CREATE TABLE IF NOT EXISTS {t} (application_name text PRIMARY KEY, "
            "notification_id bigint, previous_id bigint, txn bigint) WITH comment = "
            "'eventsourcing: last notification id processed per upstream application'"
        )
        self._advance = (
            f"UPDATE {t} SET notification_id = ?, previous_id = null, txn = null "
            "WHERE application_name = ? IF notification_id < ?"
        )
        self._first = (
            f"INSERT INTO {t} (application_name, notification_id) VALUES (?, ?) IF NOT EXISTS"
        )
        self._select_tracking = f"SELECT notification_id FROM {t} WHERE application_name = ?"

    def insert_tracking(self, tracking: Tracking) -> None:
        name, nid = tracking.application_name, tracking.notification_id
        while True:
            if applied(self.datastore.execute(self._advance, (nid, name, nid))):
                return
            current = self.datastore.one(self._select_tracking, (name,), serial=True)
            if current is not None:
                raise IntegrityError(f"tracking {name} {nid}: not after {current[0]}")
            if applied(self.datastore.execute(self._first, (name, nid))):
                return  # else another writer created the row meanwhile: compare again

    def max_tracking_id(self, application_name: str) -> int | None:
        row = self.datastore.one(self._select_tracking, (application_name,))
        return None if row is None else cast(int, row[0])


class ScyllaProcessRecorder(ScyllaTrackingRecorder, ScyllaApplicationRecorder, ProcessRecorder):
    def __init__(
        self,
        datastore: ScyllaDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(
            datastore, events_table_name=events_table_name, tracking_table_name=tracking_table_name
        )
        t = self.tracking_table
        self._first_in_txn = (
            f"INSERT INTO {t} (application_name, notification_id, txn) VALUES (?, ?, ?) "
            "IF NOT EXISTS"
        )
        self._next_in_txn = (
            f"UPDATE {t} SET notification_id = ?, previous_id = ?, txn = ? "
            "WHERE application_name = ? IF notification_id = ?"
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None and not stored_events:
            self.insert_tracking(tracking)  # one LWT is atomic by itself
            return []
        return self._insert(stored_events, tracking)

    def _pending_tracking(self, tracking: Tracking | None) -> PendingTracking | None:
        if tracking is None:
            return None
        return self.tracking_table_name, tracking.application_name, tracking.notification_id

    def _writes(
        self,
        lock: LogLock,
        events: Sequence[StoredEvent],
        groups: dict[str, list[StoredEvent]],
        count: int,
        tracking: Tracking | None,
    ) -> tuple[list[Request], list[Request]]:
        cas, plain = super()._writes(lock, events, groups, count, tracking)
        if tracking is not None:
            name, nid = tracking.application_name, tracking.notification_id
            previous = self.max_tracking_id(name)
            if previous is not None and previous >= nid:
                raise IntegrityError(f"tracking {name} {nid}: not after {previous}")
            # An exact compare-and-set that remembers the previous id, so an undo can restore it.
            if previous is None:
                cas.append((self.datastore.prepare(self._first_in_txn), (name, nid, lock.epoch)))
            else:
                params = (nid, previous, lock.epoch, name, previous)
                cas.append((self.datastore.prepare(self._next_in_txn), params))
        return cas, plain
