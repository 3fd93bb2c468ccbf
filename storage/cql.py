"""The one CQL connection of a process: cluster, session, execution profiles, error translation.

Ledger, hourly usage and the event store share the session `connect` returns. The default
profile runs at the configured consistency (LOCAL_QUORUM unless set otherwise, DESIGN
invariant 12), so a row and its dedup mark are both seen with replication factor 3; other
users (the event store) add profiles of their own to the same cluster.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cassandra import (
    ConsistencyLevel,
    DriverException,
    RequestExecutionException,
    RequestValidationException,
)
from cassandra import protocol as cql_protocol
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from kernel.errors import BackendError, Unavailable

CONSISTENCY_LEVELS = ("ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM", "EACH_QUORUM", "ALL")
SERIAL_LEVELS = ("SERIAL", "LOCAL_SERIAL")
CONCURRENCY = 64  # requests in flight per run_concurrent call


@dataclass(frozen=True)
class CqlTls:
    """TLS to the nodes: their CA (the system's when None) and an optional client certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def ssl_context(tls: CqlTls) -> ssl.SSLContext:
    """A client context that verifies the nodes' certificate and host name."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


@dataclass(frozen=True)
class CqlConfig:
    """Where the cluster is and how to talk to it (built by pulse/settings.py)."""

    contact_points: tuple[str, ...] = ("127.0.0.1",)
    port: int = 9042
    username: str | None = None
    password: str | None = None
    consistency: str = "LOCAL_QUORUM"  # ledger and projection reads and writes
    serial_consistency: str = "LOCAL_SERIAL"  # lightweight transactions
    request_timeout: float = 10.0
    local_dc: str | None = None  # None: the data centre of the first contact point
    # The driver's event loop: libev (its default, the fastest here) or asyncio, which lets
    # short-lived processes exit at once (libev can hold interpreter exit for 5 s).
    reactor: str = "libev"
    tls: CqlTls | None = None  # None: plaintext

    def __post_init__(self) -> None:
        if self.consistency not in CONSISTENCY_LEVELS:
            raise ValueError(f"consistency {self.consistency!r} is not one of {CONSISTENCY_LEVELS}")
        if self.reactor not in ("libev", "asyncio"):
            raise ValueError(f"reactor {self.reactor!r} is not libev or asyncio")
        if self.serial_consistency not in SERIAL_LEVELS:
            raise ValueError(
                f"serial consistency {self.serial_consistency!r} is not one of {SERIAL_LEVELS}"
            )


def level(name: str) -> int:
    """The driver's constant for a consistency level name (e.g. "LOCAL_QUORUM")."""
    return int(getattr(ConsistencyLevel, name))


class CqlConnection:
    """A cluster and its one session; close() shuts both down (once)."""

    def __init__(self, cluster: Cluster, session: Any, config: CqlConfig) -> None:
        self.cluster = cluster
        self.session = session
        self.config = config

    def profile(self, consistency: str, **options: Any) -> ExecutionProfile:
        """An execution profile like the default one, at another consistency."""
        return _profile(self.config, consistency, **options)

    def close(self) -> None:
        self.cluster.shutdown()


def _profile(config: CqlConfig, consistency: str, **options: Any) -> ExecutionProfile:
    return ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=config.local_dc)),
        consistency_level=level(consistency),
        serial_consistency_level=level(config.serial_consistency),
        request_timeout=config.request_timeout,
        **options,
    )


def connect(config: CqlConfig) -> CqlConnection:
    """Connects (no keyspace: every statement qualifies its tables); Unavailable on failure."""
    auth = None
    if config.username and config.password:
        auth = PlainTextAuthProvider(config.username, config.password)
    options: dict[str, Any] = {}
    if config.tls is not None:
        options["ssl_context"] = ssl_context(config.tls)
    if config.reactor == "asyncio":
        from cassandra.io.asyncioreactor import AsyncioConnection

        options["connection_class"] = AsyncioConnection
    cluster = Cluster(
        list(config.contact_points),
        port=config.port,
        auth_provider=auth,
        protocol_version=4,  # spoken by ScyllaDB and Cassandra alike: no downgrade round trip
        execution_profiles={EXEC_PROFILE_DEFAULT: _profile(config, config.consistency)},
        **options,
    )
    where = f"CQL at {','.join(config.contact_points)}:{config.port}"
    try:
        with translated(f"connecting to {where}"):
            return CqlConnection(cluster, cluster.connect(), config)
    except BaseException:
        cluster.shutdown()
        raise


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Driver errors become the kernel's categories once, here; nothing else leaves an adapter.

    A request the server refuses for good (missing schema, syntax, permissions) is a
    BackendError, never retried; the rest (timeouts, unavailable replicas, no host) is
    Unavailable, which callers retry.
    """
    try:
        yield
    except (RequestValidationException, cql_protocol.RequestValidationException) as exc:
        raise BackendError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except (
        NoHostAvailable,
        RequestExecutionException,
        cql_protocol.RequestExecutionException,
        DriverException,
        OSError,
    ) as exc:
        raise Unavailable(f"{what}: {type(exc).__name__}: {exc}") from exc


def run_concurrent(
    session: Any, statement: PreparedStatement, args: Sequence[Sequence[object]]
) -> list[Any]:
    """Executes one statement per argument tuple; fails if any of them failed."""
    if not args:
        return []
    results = execute_concurrent_with_args(
        session, statement, args, concurrency=CONCURRENCY, raise_on_first_error=True
    )
    return [rows for _ok, rows in results]


# Cassandra fails a batch above 50 KiB (batch_size_fail_threshold_in_kb) and warns above 5 KiB;
# ours stay well under the failure limit whatever the rows carry.
BATCH_BYTES = 40 * 1024


def unlogged_batches(
    session: Any,
    keyspace: str,
    statement: PreparedStatement,
    rows: Sequence[Sequence[object]],
    *,
    max_rows: int,
    size_of: Callable[[Sequence[object]], int],
) -> list[BatchStatement]:
    """Rows bound and packed into unlogged batches that never fan out across the ring: each
    batch holds only partitions owned by the same replicas (token-aware, so the coordinator
    is one of them), at most `max_rows` rows and BATCH_BYTES of estimated size.

    One request then carries many rows: the writer's cost is round trips, not bytes.
    """
    metadata = session.cluster.metadata
    groups: dict[tuple[str, ...], list[Any]] = {}
    if shared_replicas(metadata, keyspace):
        # Every partition has the same replicas (one node, or as many replicas as nodes):
        # routing each row would cost more than binding it. A batch still goes to a replica:
        # the driver routes it by its first row.
        groups[()] = [(statement.bind(values), size_of(values)) for values in rows]
    else:
        for values in rows:
            bound = statement.bind(values)
            routing = bound.routing_key  # None when the partition key is a literal
            replicas = metadata.get_replicas(keyspace, routing) if routing is not None else ()
            key = tuple(sorted(str(h.endpoint) for h in replicas))
            groups.setdefault(key, []).append((bound, size_of(values)))
    batches = []
    for members in groups.values():
        batch, size = BatchStatement(batch_type=BatchType.UNLOGGED), 0
        for bound, row_size in members:
            if len(batch) and (len(batch) >= max_rows or size + row_size > BATCH_BYTES):
                batches.append(batch)
                batch, size = BatchStatement(batch_type=BatchType.UNLOGGED), 0
            batch.add(bound)
            size += row_size
        if len(batch):
            batches.append(batch)
    return batches


def shared_replicas(metadata: Any, keyspace: str) -> bool:
    """Whether every partition of `keyspace` has the same replicas, by the driver's token
    map: one node, or as many replicas as nodes (replication factor 3 on 3 nodes). False
    when the map is not known (then rows are routed one by one)."""
    token_map = metadata.token_map
    if token_map is None:
        return False
    token_map.rebuild_keyspace(keyspace, build_if_absent=True)
    replicas = token_map.tokens_to_hosts_by_ks.get(keyspace)
    if not replicas:
        return False
    return len({frozenset(hosts) for hosts in replicas.values()}) == 1


def execute_all(session: Any, statements: Sequence[Any]) -> None:
    """Sends every statement at once and waits for all; raises the first failure."""
    futures = [session.execute_async(s) for s in statements]
    error: BaseException | None = None
    for future in futures:
        try:
            future.result()
        except BaseException as exc:  # every request must finish before the caller goes on
            error = error or exc
    if error is not None:
        raise error


def text_size(values: Sequence[object]) -> int:
    """A row's estimated size in a batch: its text and bytes, maps included, plus overhead."""
    size = 16 * len(values)
    for value in values:
        if isinstance(value, str | bytes):
            size += len(value)
        elif isinstance(value, dict):
            size += sum(len(str(k)) + len(str(v)) + 8 for k, v in value.items())
    return size
