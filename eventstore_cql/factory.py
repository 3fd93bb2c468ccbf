"""eventsourcing persistence module on CQL (ScyllaDB, Cassandra 5): eventstore_cql.factory

Application, tracking and process recorders and ScyllaFactory (the one factory class the
library's lookup finds here), built on the datastore and the locked write of
eventstore_cql/recorders.py, which also describes the tables and the write protocol.

Environment (read through the library's Environment, so `<APP>_CQL_KEYSPACE` overrides):
CQL_CONTACT_POINTS (comma-separated, default 127.0.0.1), CQL_PORT (9042), CQL_KEYSPACE
(required; created if missing, SimpleStrategy), CQL_REPLICATION_FACTOR (1), CQL_USERNAME /
CQL_PASSWORD, CQL_REQUEST_TIMEOUT (seconds, 10), CQL_LOCK_LEASE (seconds a crashed writer
blocks its log, 20), CQL_LOCK_TIMEOUT (seconds a writer waits for the lock, 60),
ORIGINATOR_ID_TYPE (uuid|text), CREATE_TABLE (yes). Tables are named like the library's
PostgreSQL module: `<application>_events`, `<application>_snapshots`,
`<application>_events_notifications`, `<application>_tracking`, so application names stay
under 28 characters (Cassandra's 48-character table names).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from itertools import groupby
from threading import Event, Lock, Thread
from typing import Any, Literal, TypeVar, cast

from cassandra.cluster import Cluster
from cassandra.query import BatchStatement, BatchType, tuple_factory
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    OperationalError,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool

from eventstore_cql.datastore import (
    BUCKET_SIZE,
    PROFILE,
    SERIAL,
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
from kernel.errors import Unavailable
from storage.cql import CqlConfig, CqlConnection
from storage.cql import connect as cql_connect

R = TypeVar("R", bound=ScyllaRecorder)

__all__ = [
    "ScyllaAggregateRecorder",
    "ScyllaApplicationRecorder",
    "ScyllaDatastore",
    "ScyllaFactory",
    "ScyllaProcessRecorder",
    "ScyllaSubscription",
    "ScyllaTrackingRecorder",
    "connect",
]


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


def add_profiles(connection: CqlConnection) -> None:
    """Adds this module's profiles to a connection: QUORUM reads and writes, SERIAL for LWT and
    linearizable reads, rows as tuples. Idempotent."""
    profiles = {
        PROFILE: connection.profile("QUORUM", row_factory=tuple_factory),
        SERIAL: connection.profile("SERIAL", row_factory=tuple_factory),
    }
    known = connection.cluster.profile_manager.profiles
    for name, profile in profiles.items():
        if name not in known:
            connection.cluster.add_execution_profile(name, profile)


def connect(
    contact_points: Sequence[str],
    port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    request_timeout: float = 10.0,
) -> tuple[Cluster, Any]:
    """A cluster and session of this module's own, when no connection is shared with it."""
    config = CqlConfig(
        tuple(contact_points),
        port,
        username=username,
        password=password,
        consistency="QUORUM",
        serial_consistency="SERIAL",
        request_timeout=request_timeout,
        reactor="asyncio",
    )
    try:
        connection = cql_connect(config)
    except Unavailable as error:
        raise OperationalError(str(error)) from error
    add_profiles(connection)
    return connection.cluster, connection.session


class ScyllaFactory(InfrastructureFactory[ScyllaTrackingRecorder]):
    CQL_CONTACT_POINTS = "CQL_CONTACT_POINTS"
    CQL_PORT = "CQL_PORT"
    CQL_KEYSPACE = "CQL_KEYSPACE"
    CQL_REPLICATION_FACTOR = "CQL_REPLICATION_FACTOR"
    CQL_USERNAME = "CQL_USERNAME"
    CQL_PASSWORD = "CQL_PASSWORD"
    CQL_REQUEST_TIMEOUT = "CQL_REQUEST_TIMEOUT"
    CQL_LOCK_LEASE = "CQL_LOCK_LEASE"
    CQL_LOCK_TIMEOUT = "CQL_LOCK_TIMEOUT"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"
    CREATE_TABLE = "CREATE_TABLE"

    aggregate_recorder_class = ScyllaAggregateRecorder
    application_recorder_class = ScyllaApplicationRecorder
    tracking_recorder_class = ScyllaTrackingRecorder
    process_recorder_class = ScyllaProcessRecorder

    def __init__(
        self, env: Environment | EnvType | None, connection: CqlConnection | None = None
    ) -> None:
        """`connection`: a session shared with the rest of the process (its owner closes it);
        without one, the factory connects as the environment says and closes what it opened."""
        super().__init__(env)
        keyspace = self.env.get(self.CQL_KEYSPACE)
        if not keyspace:
            keys = ", ".join(self.env.create_keys(self.CQL_KEYSPACE))
            raise OSError(f"CQL keyspace not found in environment with keys: {keys}")
        id_type = self.env.get(self.ORIGINATOR_ID_TYPE, "uuid").lower()
        if id_type not in ("uuid", "text"):
            raise OSError(
                f"Invalid {self.ORIGINATOR_ID_TYPE} {id_type!r}, must be 'uuid' or 'text'"
            )
        if connection is not None:
            add_profiles(connection)
            cluster, session = connection.cluster, connection.session
        else:
            points = self.env.get(self.CQL_CONTACT_POINTS) or "127.0.0.1"
            cluster, session = connect(
                [p.strip() for p in points.split(",") if p.strip()],
                self._number(self.CQL_PORT, 9042, int),
                username=self.env.get(self.CQL_USERNAME),
                password=self.env.get(self.CQL_PASSWORD),
                request_timeout=self._number(self.CQL_REQUEST_TIMEOUT, 10.0, float),
            )
        self.datastore = ScyllaDatastore(
            session,
            keyspace,
            cluster=cluster,
            owns_cluster=connection is None,
            replication_factor=self._number(self.CQL_REPLICATION_FACTOR, 1, int),
            originator_id_type=cast(Literal["uuid", "text"], id_type),
            lock_lease=self._number(self.CQL_LOCK_LEASE, 20.0, float),
            lock_timeout=self._number(self.CQL_LOCK_TIMEOUT, 60.0, float),
        )

    def _number(self, key: str, default: Any, kind: type[Any]) -> Any:
        value = (self.env.get(key) or "").strip()
        try:
            return kind(value) if value else default
        except ValueError:
            msg = f"CQL environment value for key {key!r} is invalid: {value!r} ({kind.__name__})"
            raise OSError(msg) from None

    def _prefix(self, default: str) -> str:
        return re.sub(r"[^a-z0-9_]", "_", self.env.name.lower()) or default

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        recorder = self.aggregate_recorder_class(
            self.datastore, events_table_name=f"{self._prefix('stored')}_{purpose}"
        )
        return self._created(recorder)

    def application_recorder(self) -> ApplicationRecorder:
        cls: type[ScyllaApplicationRecorder] = self.application_recorder_class
        if topic := self.env.get(self.APPLICATION_RECORDER_TOPIC):
            cls = resolve_topic(topic)
            assert issubclass(cls, ScyllaApplicationRecorder)
        events = f"{self._prefix('stored')}_events"
        return self._created(cls(self.datastore, events_table_name=events))

    def tracking_recorder(
        self, tracking_recorder_class: type[ScyllaTrackingRecorder] | None = None
    ) -> ScyllaTrackingRecorder:
        cls = tracking_recorder_class or self.tracking_recorder_class
        if tracking_recorder_class is None and (
            topic := self.env.get(self.TRACKING_RECORDER_TOPIC)
        ):
            cls = resolve_topic(topic)
        assert issubclass(cls, ScyllaTrackingRecorder)
        tracking = f"{self._prefix('notification')}_tracking"
        return self._created(cls(self.datastore, tracking_table_name=tracking))

    def process_recorder(self) -> ProcessRecorder:
        cls: type[ScyllaProcessRecorder] = self.process_recorder_class
        if topic := self.env.get(self.PROCESS_RECORDER_TOPIC):
            cls = resolve_topic(topic)
            assert issubclass(cls, ScyllaProcessRecorder)
        return self._created(
            cls(
                self.datastore,
                events_table_name=f"{self._prefix('stored')}_events",
                tracking_table_name=f"{self._prefix('notification')}_tracking",
            )
        )

    def _created(self, recorder: R) -> R:
        if strtobool(self.env.get(self.CREATE_TABLE) or "yes"):
            recorder.create_table()
        return recorder

    def close(self) -> None:
        with contextlib.suppress(AttributeError):  # __init__ may have failed before connecting
            self.datastore.close()


Factory = ScyllaFactory
