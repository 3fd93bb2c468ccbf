"""Fixtures that build every backend of each port, for the contract suites and end-to-end tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from access.ports import KeyStore
from ledger.ports import LedgerStore, LogHistory, PulseLog
from projections.ports import UsageStore
from pulse.settings import CqlSettings, KafkaSettings

LOG_BACKENDS = ["sqlite", pytest.param("kafka", marks=pytest.mark.servers)]
STORE_BACKENDS = ["sqlite", pytest.param("cassandra", marks=pytest.mark.servers)]


@pytest.fixture(scope="session")
def migrated_keyspace(cql_session: Any, test_keyspace: str) -> str:
    """The per-session test keyspace with every cql/tables file applied by `pulse migrate` code."""
    from pulse.migrate import migrate_cql

    list(migrate_cql(cql_session, CqlSettings(keyspace=test_keyspace)))
    return test_keyspace


def kafka_settings(bootstrap: str, partitions: int = 3) -> KafkaSettings:
    """Fresh topic and group names, created on the test broker, kept without time limit."""
    from pulse.migrate import migrate_topics

    name = f"resource-consumption-{uuid.uuid4().hex[:10]}"
    settings = KafkaSettings(
        bootstrap_servers=bootstrap,
        topic=name,
        dlq_topic=f"{name}.dlq",
        partitions=partitions,
        writer_group=f"writer-{name}",
        projector_group=f"projector-{name}",
    )
    list(migrate_topics(settings))
    keep_forever(bootstrap, [settings.topic, settings.dlq_topic])
    return settings


def keep_forever(bootstrap: str, topics: list[str]) -> None:
    """Turns time-based retention off on test topics.

    Tests publish with fixed arrival dates (so expected values are literals), and the broker's
    retention counts from the record timestamp. Once such a date is older than the broker's
    retention (7 days by default), the retention pass (30 s after the broker starts, then every
    5 min) deletes the records under a running test: a consumer finds its offset out of range,
    resets to the new log start and waits for records that are gone.
    """
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    forever = ConfigEntry("retention.ms", "-1", incremental_operation=AlterConfigOpType.SET)
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[forever])
        for topic in topics
    ]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.incremental_alter_configs(resources, request_timeout=30).values():
        future.result()
    # The controller acknowledges the change before the broker applies it; a loaded machine
    # showed the broker's 7-day default for a moment after. Return once the broker has it.
    deadline = time.monotonic() + 60
    for topic in topics:
        while _retention_ms(admin, topic) != "-1":
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker did not apply retention.ms=-1 to {topic}")
            time.sleep(0.1)


def _retention_ms(admin: Any, topic: str) -> str:
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    [future] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
    return str(future.result(timeout=30)["retention.ms"].value)


@pytest.fixture(params=LOG_BACKENDS)
def pulse_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PulseLog]:
    log: PulseLog
    if request.param == "sqlite":
        from ledger.sqlite import SQLitePulseLog

        log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=3)
    else:
        from ledger.kafka import KafkaPulseLog

        log = KafkaPulseLog(kafka_settings(request.getfixturevalue("kafka_bootstrap")).config())
    yield log
    log.close()


@pytest.fixture(params=LOG_BACKENDS)
def log_with_history(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[PulseLog, LogHistory]]:
    """A pulse log and a history reader on the same topic (or file)."""
    log: PulseLog
    history: LogHistory
    if request.param == "sqlite":
        from ledger.sqlite import SQLitePulseLog
        from ledger.sqlite_history import SQLiteLogHistory

        log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=3)
        history = SQLiteLogHistory(tmp_path / "log.sqlite", partitions=3)
    else:
        from ledger.kafka import KafkaPulseLog
        from ledger.kafka_history import KafkaLogHistory

        config = kafka_settings(request.getfixturevalue("kafka_bootstrap")).config()
        log, history = KafkaPulseLog(config), KafkaLogHistory(config)
    yield log, history
    history.close()
    log.close()


@pytest.fixture(params=STORE_BACKENDS)
def ledger_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    if request.param == "sqlite":
        from ledger.sqlite_store import SQLiteLedgerStore

        store = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
        yield store
        store.close()
    else:
        from ledger.scylla import ScyllaLedgerStore

        keyspace = request.getfixturevalue("migrated_keyspace")
        # The session is shared by the whole test run: not closed here.
        yield ScyllaLedgerStore(request.getfixturevalue("cql_session"), keyspace)


@pytest.fixture(params=STORE_BACKENDS)
def usage_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UsageStore]:
    if request.param == "sqlite":
        from projections.sqlite import SQLiteUsageStore

        store = SQLiteUsageStore(tmp_path / "usage.sqlite")
        yield store
        store.close()
    else:
        from projections.scylla import ScyllaUsageStore

        keyspace = request.getfixturevalue("migrated_keyspace")
        yield ScyllaUsageStore(request.getfixturevalue("cql_session"), keyspace)


@pytest.fixture(params=STORE_BACKENDS)
def key_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "sqlite":
        from access.sqlite import SQLiteKeyStore

        store = SQLiteKeyStore(tmp_path / "keys.sqlite")
        yield store
        store.close()
    else:
        from access.scylla import ScyllaKeyStore

        keyspace = request.getfixturevalue("migrated_keyspace")
        yield ScyllaKeyStore(request.getfixturevalue("cql_session"), keyspace)


@pytest.fixture(params=["sqlite", pytest.param("cql", marks=pytest.mark.servers)])
def event_store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Settings of a billing event store: eventsourcing's SQLite module, or ours on CQL."""
    return billing_env(request.param, request, tmp_path)


def billing_env(backend: str, request: pytest.FixtureRequest, root: Path) -> dict[str, str]:
    """`event_store_env` of one backend ("sqlite": a file under `root`; else the test
    keyspace on the CQL server), for fixtures of a wider scope."""
    if backend == "sqlite":
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(root / "b.db")}
    host, port = request.getfixturevalue("cql_endpoint")
    return {
        "PERSISTENCE_MODULE": "eventstore_cql",
        "CQL_CONTACT_POINTS": host,
        "CQL_PORT": str(port),
        "CQL_KEYSPACE": request.getfixturevalue("migrated_keyspace"),
    }
