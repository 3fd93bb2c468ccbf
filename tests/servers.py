"""Finds or starts the Kafka and CQL servers of a pytest session: env, testcontainers, pulse dev."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.io.asyncioreactor import AsyncioConnection
from cassandra.policies import RoundRobinPolicy
from pydantic import ValidationError

from devtools import servers as devservers
from devtools.config import DevSettings
from devtools.layout import DevServerError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_ENV = "PULSE_TEST_KAFKA_BOOTSTRAP"  # host:port of a running Kafka to use as is
CQL_ENV = "PULSE_TEST_CQL"  # host:port of a running ScyllaDB/Cassandra to use as is
KAFKA_IMAGE_ENV = "PULSE_TEST_KAFKA_IMAGE"
SCYLLA_IMAGE_ENV = "PULSE_TEST_SCYLLA_IMAGE"
DEFAULT_KAFKA_IMAGE = "apache/kafka:4.1.1"
DEFAULT_SCYLLA_IMAGE = "scylladb/scylla:6.2"
CQL_REQUEST_TIMEOUT_SECONDS = 60.0  # DDL on a freshly started node can be slow

T = TypeVar("T")


class ServersUnavailable(Exception):
    """No server could be obtained for the session; the message says which and why."""


def obtain(get: Callable[[], T], env: Mapping[str, str]) -> T:
    """Runs `get`; without servers the test fails on CI (CI=true) and is skipped elsewhere."""
    try:
        return get()
    except ServersUnavailable as error:
        reason = str(error)
    # Outside the except block, so the report shows the reason and not a chained traceback.
    if env.get("CI", "").lower() == "true":
        pytest.fail(f"real servers unavailable on CI: {reason}", pytrace=False)
    pytest.skip(f"real servers unavailable: {reason}")


def parse_host_port(name: str, value: str) -> tuple[str, int]:
    host, _, port = value.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ServersUnavailable(f"{name}={value!r} is not host:port")
    return host, int(port)


class ServerProvider:
    """Obtains each server once per session, lazily, and at the end stops what it started.

    Order per server: the PULSE_TEST_* variable; else a testcontainer when a Docker engine
    answers; else `pulse dev` (Kafka and Cassandra from Maven jars). `pulse dev` servers
    already running are reused and left running; ones this session started are stopped.
    """

    def __init__(self, env: Mapping[str, str], repo_root: Path = REPO_ROOT) -> None:
        self._env = env
        self._repo_root = repo_root
        self._kafka: str | None = None
        self._cql: tuple[str, int] | None = None
        self._docker: bool | None = None
        self._containers: list[Any] = []
        self._dev: devservers.DevEndpoints | None = None
        self._dev_to_stop: DevSettings | None = None
        self._dev_failure: ServersUnavailable | None = None

    def kafka_bootstrap(self) -> str:
        if self._kafka is None:
            configured = self._env.get(KAFKA_ENV, "").strip()
            if configured:
                parse_host_port(KAFKA_ENV, configured.split(",")[0])
            self._kafka = configured or self._managed_kafka()
        return self._kafka

    def cql_endpoint(self) -> tuple[str, int]:
        if self._cql is None:
            configured = self._env.get(CQL_ENV, "").strip()
            self._cql = parse_host_port(CQL_ENV, configured) if configured else self._managed_cql()
        return self._cql

    def close(self) -> None:
        try:
            for container in self._containers:
                container.stop()
        finally:
            if self._dev_to_stop is not None:
                devservers.down(self._dev_to_stop, echo=log.info)

    def _managed_kafka(self) -> str:
        if self._docker_answers():
            try:
                return self._container_kafka()
            except Exception as error:  # any container failure: fall back to pulse dev
                log.warning("Kafka testcontainer failed (%s); using pulse dev", error)
        return self._pulse_dev().kafka_bootstrap

    def _managed_cql(self) -> tuple[str, int]:
        if self._docker_answers():
            try:
                return self._container_scylla()
            except Exception as error:  # any container failure: fall back to pulse dev
                log.warning("ScyllaDB testcontainer failed (%s); using pulse dev", error)
        found = self._pulse_dev()
        return found.cql_host, found.cql_port

    def _docker_answers(self) -> bool:
        if self._docker is None:
            self._docker = docker_answers()
        return self._docker

    def _container_kafka(self) -> str:
        container, bootstrap = start_kafka_container(
            self._env.get(KAFKA_IMAGE_ENV, DEFAULT_KAFKA_IMAGE)
        )
        self._containers.append(container)
        return bootstrap

    def _container_scylla(self) -> tuple[str, int]:
        container, host, port = start_scylla_container(
            self._env.get(SCYLLA_IMAGE_ENV, DEFAULT_SCYLLA_IMAGE)
        )
        self._containers.append(container)
        return host, port

    def _pulse_dev(self) -> devservers.DevEndpoints:
        # A failed start is remembered: the next fixture must not wait for it all over again.
        if self._dev_failure is not None:
            raise self._dev_failure
        if self._dev is None:
            dev = self._dev_settings()
            # Partly running means a developer is using them: leave everything as found.
            was_running = any(server.pid for server in devservers.status(dev))
            try:
                self._dev = devservers.up(dev, echo=log.info)
            except DevServerError as error:
                self._dev_failure = ServersUnavailable(f"`pulse dev up` failed: {error}")
                raise self._dev_failure from error
            self._dev_to_stop = None if was_running else dev
        return self._dev

    def _dev_settings(self) -> DevSettings:
        """The developer's `pulse dev` settings, home anchored at the repo so `up` is shared."""
        try:
            dev = DevSettings()
        except ValidationError as error:
            raise ServersUnavailable(f"invalid PULSE_* settings: {error}") from error
        if dev.home.is_absolute():
            return dev
        return dev.model_copy(update={"home": self._repo_root / dev.home})


def docker_answers() -> bool:
    """True only when a Docker engine answers a ping within a couple of seconds."""
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no daemon, no permission: all mean "no Docker"
        return False


KAFKA_CONTAINER_SCRIPT = "/tmp/pulse_kafka_start.sh"
KAFKA_CONTAINER_ENV = {
    "CLUSTER_ID": "4L6g3nShT-eMCtK--X86sw",
    "KAFKA_NODE_ID": "1",
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
        "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"
    ),
    "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
    "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9094",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
}


def start_kafka_container(image: str) -> tuple[Any, str]:
    """apache/kafka must advertise the mapped host port, known only once the container runs,
    so the container waits for a start script written after `start()` (as testcontainers-java
    does for this image)."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer(image).with_exposed_ports(9092)
    container.with_envs(**KAFKA_CONTAINER_ENV)
    wait = f"while [ ! -f {KAFKA_CONTAINER_SCRIPT} ]; do sleep 0.1; done"
    container.with_command(["sh", "-c", f"{wait}; exec {KAFKA_CONTAINER_SCRIPT}"])
    container.start()
    try:
        host, port = container.get_container_host_ip(), container.get_exposed_port(9092)
        script = (
            "#!/bin/bash\n"
            f"export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{host}:{port},BROKER://localhost:9093\n"
            "exec /etc/kafka/docker/run\n"
        )
        container.copy_into_container(script.encode(), KAFKA_CONTAINER_SCRIPT, mode=0o755)
        wait_for_logs(container, "Kafka Server started", timeout=120)
    except BaseException:
        container.stop()
        raise
    return container, f"{host}:{port}"


def start_scylla_container(image: str) -> tuple[Any, str, int]:
    from testcontainers.community.scylla import ScyllaContainer

    # One shard and a fixed memory cap: ScyllaDB otherwise claims every core and most RAM.
    flags = "--smp 1 --memory 1G --overprovisioned 1 --skip-wait-for-gossip-to-settle 0"
    container: Any = ScyllaContainer(image)
    container.with_command(flags)
    container.start()
    return container, container.get_container_host_ip(), int(container.get_exposed_port(9042))


def connect_cql(host: str, port: int) -> tuple[Cluster, Session]:
    profile = ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(), request_timeout=CQL_REQUEST_TIMEOUT_SECONDS
    )
    cluster = Cluster(
        [host],
        port=port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        # libev (the default) can hang interpreter exit for 5 s; see devtools/cassandra.py.
        connection_class=AsyncioConnection,
        # The product's protocol (storage.cql). Negotiated v5 frames large replies in CRC'd
        # segments, and the driver then lost its place in the stream of this test session
        # ("CRC mismatch on header", every later request on the connection failing).
        protocol_version=4,
    )
    return cluster, cluster.connect()


def new_test_keyspace(session: Session) -> str:
    name = f"pulse_test_{uuid.uuid4().hex[:12]}"
    session.execute(
        f"CREATE KEYSPACE {name} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    return name


def drop_keyspace(session: Session, name: str) -> None:
    session.execute(f"DROP KEYSPACE IF EXISTS {name}")


def new_topic_suffix() -> str:
    return uuid.uuid4().hex[:10]
