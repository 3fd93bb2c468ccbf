"""Smoke tests proving the session's real Kafka and CQL servers accept writes and return them."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
from cassandra.cluster import Session
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # admin re-exports it implicitly: strict mypy refuses

pytestmark = pytest.mark.servers

TIMEOUT_SECONDS = 30.0


def _first_message(consumer: Consumer, timeout: float) -> Message | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            return message
    return None


def test_kafka_round_trips_a_record_through_a_fresh_topic(
    kafka_bootstrap: str, topic_suffix: str
) -> None:
    # given a fresh single-partition topic (the broker does not auto-create topics)
    topic = f"pulse-smoke-{topic_suffix}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(
        timeout=TIMEOUT_SECONDS
    )
    value = f"pulse {uuid.uuid4()}".encode()
    try:
        # when a record is produced with acks=all and read back by a consumer group
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
        producer.produce(topic, key=b"tenant-1", value=value)
        assert producer.flush(TIMEOUT_SECONDS) == 0, "record not acknowledged by the broker"
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": f"pulse-smoke-{topic_suffix}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        try:
            message = _first_message(consumer, TIMEOUT_SECONDS)
        finally:
            consumer.close()
        # then the consumed record is the produced one
        assert message is not None, f"nothing consumed from {topic} in {TIMEOUT_SECONDS} s"
        assert (message.key(), message.value()) == (b"tenant-1", value)
    finally:
        admin.delete_topics([topic])[topic].result(timeout=TIMEOUT_SECONDS)


def test_cql_round_trips_a_row_through_the_test_keyspace(
    cql_session: Session, test_keyspace: str
) -> None:
    # given a table in the session's keyspace
    table = f"{test_keyspace}.smoke_pulses"
    cql_session.execute(
        f"CREATE TABLE {table} (tenant_id text, pulse_id text, used_amount decimal, "
        "PRIMARY KEY ((tenant_id), pulse_id))"
    )
    # Prepared statements bind decimals exactly; the driver's %s formatting of simple
    # statements goes through float() and drops the scale (12.500 -> 12.5).
    insert = cql_session.prepare(
        f"INSERT INTO {table} (tenant_id, pulse_id, used_amount) VALUES (?, ?, ?)"
    )
    select = cql_session.prepare(
        f"SELECT used_amount FROM {table} WHERE tenant_id = ? AND pulse_id = ?"
    )
    # when a row is written
    cql_session.execute(insert, ("tenant-1", "pulse-1", Decimal("12.500")))
    # then it reads back exactly, decimal scale included
    row = cql_session.execute(select, ("tenant-1", "pulse-1")).one()
    assert row is not None, f"row not found in {table}"
    assert str(row.used_amount) == "12.500"
