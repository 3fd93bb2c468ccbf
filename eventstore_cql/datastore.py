"""eventsourcing on CQL, the datastore: session, prepared statements, the error boundary and
the log row that serializes writes (see eventstore_cql/recorders.py for the protocol)."""

from __future__ import annotations

import calendar
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from uuid import UUID

from cassandra import (
    AuthenticationFailed,
    DriverException,
    OperationTimedOut,
    RequestExecutionException,
    RequestValidationException,
    UnresolvableContactPoints,
)
from cassandra import protocol as cql_protocol
from cassandra.cluster import Cluster, NoHostAvailable, Session
from cassandra.connection import ConnectionException
from eventsourcing.persistence import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)

log = logging.getLogger(__name__)

LOGS_TABLE = "eventsourcing_logs"
BUCKET_SIZE = 1000  # notification ids per partition of <events>_notifications
BATCH_BYTES = 40 * 1024  # per batch: below Cassandra's 50 KiB batch failure threshold
ROW_OVERHEAD = 96  # bytes per row besides topic and state (ids, versions, framing)
# Names of the execution profiles this module adds to the cluster it is given (shared with
# other users of the session, whose default profile may run at another consistency).
PROFILE = "eventstore"  # QUORUM reads and writes
SERIAL = "eventstore_serial"  # linearizable (Paxos) reads
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # unquoted CQL names, Cassandra's 48-char limit
HOST = socket.gethostname()

T = TypeVar("T")
Key = tuple[str, int]  # (originator_id, originator_version)
PendingTracking = tuple[str, str, int]  # (tracking table, application name, notification id)
Request = tuple[Any, Sequence[Any] | None]  # (statement, parameters)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """The one boundary where driver errors become the library's PersistenceError classes."""
    try:
        yield
    except (RequestValidationException, cql_protocol.RequestValidationException) as e:
        raise ProgrammingError(f"{what}: {e}") from e  # bad CQL, missing table, permissions
    except AuthenticationFailed as e:
        raise InterfaceError(f"{what}: {e}") from e
    except (
        RequestExecutionException,  # timeouts, unavailable replicas, coordinator failures
        cql_protocol.RequestExecutionException,  # overloaded, bootstrapping
        OperationTimedOut,
        NoHostAvailable,
        ConnectionException,
        UnresolvableContactPoints,
    ) as e:
        raise OperationalError(f"{what}: {type(e).__name__}: {e}") from e
    except (DriverException, cql_protocol.ErrorMessage) as e:
        raise DatabaseError(f"{what}: {type(e).__name__}: {e}") from e


def applied(result: Any) -> bool:
    """The outcome of an LWT. Only `[applied]` is read: the other columns differ between
    ScyllaDB and Cassandra."""
    return bool(result.one()[result.column_names.index("[applied]")])


def checked_name(name: str) -> str:
    if not _NAME.match(name):
        raise ProgrammingError(f"not a CQL table name (lowercase, at most 48 chars): {name!r}")
    return name


def chunked(items: Sequence[T], size_of: Callable[[T], int]) -> Iterator[list[T]]:
    """Consecutive runs of items whose estimated size stays under BATCH_BYTES."""
    chunk: list[T] = []
    size = 0
    for item in items:
        item_size = size_of(item) + ROW_OVERHEAD
        if chunk and size + item_size > BATCH_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


def event_size(event: StoredEvent) -> int:
    return len(event.state) + len(event.topic) + len(str(event.originator_id))


def now_ms() -> int:
    return int(time.time() * 1000)


def to_ms(value: Any) -> int | None:
    """A CQL timestamp as returned by the driver (naive UTC datetime) in epoch milliseconds."""
    if value is None:
        return None
    return int(calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000)


@dataclass(frozen=True)
class Head:
    """A log row: committed last_id, and the lock with the intent of its holder."""

    epoch: int
    last_id: int
    holder: str | None = None
    expires_ms: int | None = None
    pending_txn: int | None = None
    pending_keys: tuple[Key, ...] = ()
    pending_tracking: PendingTracking | None = None


@dataclass(frozen=True)
class LogLock:
    epoch: int  # also the txn stamp of the rows written under it
    holder: str
    last_id: int  # committed last_id when acquired


class ScyllaDatastore:
    """A driver session on one keyspace: statements, error translation, per-log local locks."""

    def __init__(
        self,
        session: Session,
        keyspace: str,
        *,
        cluster: Cluster | None = None,
        owns_cluster: bool = True,
        replication_factor: int = 1,
        originator_id_type: Literal["uuid", "text"] = "uuid",
        lock_lease: float = 20.0,
        lock_timeout: float = 60.0,
    ) -> None:
        self.session = session
        self.cluster = cluster
        self.owns_cluster = owns_cluster  # False: the session is shared, its owner closes it
        self.keyspace = checked_name(keyspace)
        self.replication_factor = replication_factor
        self.originator_id_type = originator_id_type
        self.lock_lease_ms = int(lock_lease * 1000)
        self.lock_timeout = lock_timeout
        self.heads: dict[str, Head] = {}  # last known free head per log, under its local lock
        self._prepared: dict[str, Any] = {}
        self._local_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._keyspace_ready = False

    def qualified(self, table: str) -> str:
        return f"{self.keyspace}.{checked_name(table)}"

    def originator_id(self, stored: str) -> UUID | str:
        return UUID(stored) if self.originator_id_type == "uuid" else stored

    def ensure_keyspace(self) -> None:
        if self._keyspace_ready:
            return
        create = (
            f"CREATE KEYSPACE IF NOT EXISTS {self.keyspace} WITH replication = "
            f"{{'class': 'SimpleStrategy', 'replication_factor': {self.replication_factor}}}"
        )
        try:
            self.execute(create)
        except ProgrammingError as error:
            if "tablet" not in str(error).lower():
                raise
            # A ScyllaDB with tablets on by default rejects them for SimpleStrategy (and some
            # versions reject LWT on tablets): vnodes it is. Scylla-only syntax, so only here.
            self.execute(f"{create} AND tablets = {{'enabled': false}}")
        self._keyspace_ready = True

    def prepare(self, cql: str) -> Any:
        # Prepared on first use, not in constructors: a recorder may exist before its tables.
        statement = self._prepared.get(cql)
        if statement is None:
            with translated(f"preparing {cql!r}"):
                statement = self.session.prepare(cql)
            self._prepared[cql] = statement
        return statement

    def execute(self, statement: Any, params: Sequence[Any] = (), *, serial: bool = False) -> Any:
        if isinstance(statement, str) and params:
            statement = self.prepare(statement)
        profile = SERIAL if serial else PROFILE
        with translated(f"executing {getattr(statement, 'query_string', statement)!r}"):
            return self.session.execute(statement, params or None, execution_profile=profile)

    def execute_all(self, requests: Sequence[Request]) -> list[Any]:
        """Runs statements concurrently; waits for all of them, then raises the first error."""
        with translated(f"executing {len(requests)} statements"):
            futures = [
                self.session.execute_async(stmt, params, execution_profile=PROFILE)
                for stmt, params in requests
            ]
            results: list[Any] = []
            error: Exception | None = None
            for future in futures:
                try:
                    results.append(future.result())
                except Exception as e:  # every future must finish before the caller undoes
                    error = error or e
            if error is not None:
                raise error
            return results

    def rows(self, cql: str, params: Sequence[Any], *, serial: bool = False) -> list[Any]:
        return list(self.iter_rows(cql, params, serial=serial))

    def iter_rows(
        self, cql: str, params: Sequence[Any], *, serial: bool = False, fetch_size: int = 0
    ) -> Iterator[Any]:
        statement = self.prepare(cql)
        if fetch_size:
            statement = statement.bind(params)
            statement.fetch_size = fetch_size
            params = ()
        result = self.execute(statement, params, serial=serial)
        with translated(f"paging {cql!r}"):  # later pages are fetched while iterating
            yield from result

    def one(self, cql: str, params: Sequence[Any], *, serial: bool = False) -> Any:
        found = self.rows(cql, params, serial=serial)
        return found[0] if found else None

    @contextmanager
    def local_lock(self, log_name: str) -> Iterator[None]:
        """Threads of this process queue here, so only one of them contends for the log's LWT."""
        with self._guard:
            lock = self._local_locks.setdefault(log_name, threading.Lock())
        if not lock.acquire(timeout=self.lock_timeout):
            raise OperationalError(f"timed out waiting for the local write lock of {log_name}")
        try:
            yield
        finally:
            lock.release()

    def close(self) -> None:
        if self.cluster is not None and self.owns_cluster:
            self.cluster.shutdown()
