"""eventsourcing on CQL: ScyllaFactory, the one factory class the library's lookup finds here.

It connects (or takes a shared connection), adds this module's execution profiles and builds
the recorders of recorders.py and application.py. Settings: README.md beside this file.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import Any, Literal, TypeVar, cast

from cassandra.cluster import Cluster
from cassandra.query import tuple_factory
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    OperationalError,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool

from eventstore_cql.application import (
    ScyllaApplicationRecorder,
    ScyllaProcessRecorder,
    ScyllaTrackingRecorder,
)
from eventstore_cql.datastore import (
    PROFILE,
    SERIAL,
    ScyllaDatastore,
)
from eventstore_cql.recorders import ScyllaAggregateRecorder, ScyllaRecorder
from kernel.errors import Unavailable
from storage.cql import CqlConfig, CqlConnection
from storage.cql import connect as cql_connect

R = TypeVar("R", bound=ScyllaRecorder)


__all__ = ["ScyllaFactory", "add_profiles", "connect"]


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
