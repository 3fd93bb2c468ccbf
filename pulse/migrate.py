"""`pulse migrate`: applies cql/ files (idempotently, recording versions) and creates the topics."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cassandra.cluster import Session

from cql import ROOT as CQL_ROOT
from kernel.errors import Conflict, Unavailable
from pulse.settings import Backend, CqlSettings, KafkaSettings, Settings


@dataclass(frozen=True)
class Migration:
    version: str
    statements: list[str]
    checksum: str


def statements_of(text: str) -> list[str]:
    """CQL statements of a file: `--` comments dropped, split on `;`."""
    lines = [line.split("--", 1)[0] for line in text.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def keyspace_statement(settings: CqlSettings) -> str:
    text = (CQL_ROOT / "keyspaces" / f"{settings.flavor}.cql").read_text()
    text = text.replace("{keyspace}", settings.keyspace)
    text = text.replace("{replication_factor}", str(settings.replication_factor))
    [statement] = statements_of(text)
    return statement


def table_migrations(root: Path = CQL_ROOT / "tables") -> list[Migration]:
    out = []
    for path in sorted(root.glob("*.cql")):
        text = path.read_text()
        out.append(
            Migration(path.stem, statements_of(text), hashlib.sha256(text.encode()).hexdigest())
        )
    return out


def migrate_cql(session: Session, settings: CqlSettings) -> Iterator[str]:
    ks = settings.keyspace
    session.execute(keyspace_statement(settings))
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {ks}.schema_migrations "
        "(version text PRIMARY KEY, checksum text, applied_at timestamp)"
    )
    applied = {
        r.version: r.checksum
        for r in session.execute(f"SELECT version, checksum FROM {ks}.schema_migrations")
    }
    session.set_keyspace(ks)
    for migration in table_migrations():
        known = applied.get(migration.version)
        if known == migration.checksum:
            yield f"cql {migration.version}: already applied"
            continue
        if known is not None:
            raise Conflict(
                f"cql/tables/{migration.version}.cql changed after it was applied to keyspace "
                f"{ks}; add a new numbered file instead of editing an applied one"
            )
        for statement in migration.statements:
            session.execute(statement)
        session.execute(
            f"INSERT INTO {ks}.schema_migrations (version, checksum, applied_at) "
            "VALUES (%s, %s, %s)",
            (migration.version, migration.checksum, datetime.now(UTC)),
        )
        yield f"cql {migration.version}: applied ({len(migration.statements)} statements)"


def migrate_topics(settings: KafkaSettings) -> Iterator[str]:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    # The dead-letter topic holds what is not in the ledger (conflicts, poison records):
    # it must be as durable as the pulse topic, acks=all meaning the same on both.
    durable = {"min.insync.replicas": str(min(2, settings.replication_factor))}
    wanted = [
        NewTopic(settings.topic, settings.partitions, settings.replication_factor, config=durable),
        NewTopic(settings.dlq_topic, 1, settings.replication_factor, config=durable),
    ]
    for name, future in admin.create_topics(wanted, request_timeout=30).items():
        try:
            future.result()
            yield f"topic {name}: created"
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                yield f"topic {name}: already exists"
            else:
                raise Unavailable(f"creating topic {name}: {exc}") from exc


def run_migrations(settings: Settings) -> Iterator[str]:
    match settings.backend:
        case Backend.EMBEDDED:
            where = settings.embedded.path
            yield f"embedded backend: schemas are created on first use under {where}"
        case Backend.SERVERS:
            from storage.cql import connect, translated

            connection = connect(settings.cql.config())
            try:
                with translated("applying the CQL schema"):
                    yield from migrate_cql(connection.session, settings.cql)
            finally:
                connection.close()
            yield from migrate_topics(settings.kafka)
