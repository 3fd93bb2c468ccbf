"""What only the Kafka pulse log has: topic durability settings and retention."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    ConfigSource,
)

from ledger.kafka import KafkaPulseLog
from ledger.model import LogRecord, Position
from ledger.ports import DeadLetter
from tests.backends import kafka_settings

pytestmark = pytest.mark.servers

ARRIVAL = datetime(2026, 11, 1, 12, tzinfo=UTC)


def topic_config(admin: AdminClient, topic: str) -> dict[str, tuple[str, int]]:
    """Value and source of each setting (the topic's own, or a broker default)."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    [future] = admin.describe_configs([resource]).values()
    return {k: (v.value, v.source) for k, v in future.result(timeout=30).items()}


def test_the_dead_letter_topic_is_as_durable_as_the_pulse_topic(kafka_bootstrap: str) -> None:
    # given / when: topics created by `pulse migrate`'s code
    settings = kafka_settings(kafka_bootstrap)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    # then: min.insync.replicas set on both topics, to the same value (not left to the broker)
    main = topic_config(admin, settings.topic)["min.insync.replicas"]
    dlq = topic_config(admin, settings.dlq_topic)["min.insync.replicas"]
    assert main == dlq
    assert dlq[1] == ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def test_test_topics_keep_back_dated_records_however_old(kafka_bootstrap: str) -> None:
    # The contract suites publish with fixed, past arrival dates; under the broker's 7-day
    # retention its periodic pass deleted them mid-test once those dates were a week old
    # (a seek or a first poll then found its offset out of range and waited for nothing).
    # given / when
    settings = kafka_settings(kafka_bootstrap)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    # then: no time limit, set on the topics themselves (whatever the broker's default)
    for topic in (settings.topic, settings.dlq_topic):
        assert topic_config(admin, topic)["retention.ms"] == (
            "-1",
            ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
        )


def test_dead_letters_are_listed_from_the_oldest_retained_one(kafka_bootstrap: str) -> None:
    # given: three dead letters, the oldest removed by retention (delete-records moves the
    # low watermark the same way)
    settings = kafka_settings(kafka_bootstrap)
    log = KafkaPulseLog(settings.config())
    log.dead_letter(
        [
            DeadLetter(LogRecord(Position(0, i), ARRIVAL, b"k", b"v"), "undecodable", f"#{i}")
            for i in range(3)
        ]
    )
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    [future] = admin.delete_records([TopicPartition(settings.dlq_topic, 0, 1)]).values()
    future.result(timeout=30)
    # when
    letters = log.dead_letters(10)
    log.close()
    # then
    assert [d.detail for d in letters] == ["#1", "#2"]


def test_a_fenced_consumer_stops_with_a_conflict_instead_of_retrying_for_ever(
    kafka_bootstrap: str,
) -> None:
    # given: a writer-group member with a static id, holding records to commit; then another
    # member joins with the same id (what a coordinator change can leave behind) and fences it
    from confluent_kafka import Consumer

    from kernel.errors import Conflict
    from ledger.kafka import KafkaLogConsumer
    from ledger.ports import OutgoingRecord
    from tests.contract.test_pulse_log import drain

    settings = kafka_settings(kafka_bootstrap, partitions=1)
    log = KafkaPulseLog(settings.config())
    log.publish([OutgoingRecord(b"t", b"v")], ARRIVAL)
    group = f"fenced-{settings.topic}"
    member = KafkaLogConsumer(replace(settings.config(), instance_id="same-id"), group)
    records = drain(member, 1)
    member._claim.release() if member._claim else None
    intruder = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group,
            "group.instance.id": "same-id",
            "session.timeout.ms": 10000,
        }
    )
    intruder.subscribe([settings.topic])
    deadline = time.monotonic() + 30
    while not intruder.assignment() and time.monotonic() < deadline:
        intruder.poll(0.5)

    # when / then: committing can never work again: a category the supervisor restarts on
    try:
        with pytest.raises(Conflict, match="cannot"):
            member.commit(records)
    finally:
        intruder.close()
        log.close()


@pytest.mark.parametrize(("committed", "lost"), [(2, 2), (4, 0)])
def test_a_member_reports_records_deleted_before_its_group_read_them(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture, committed: int, lost: int
) -> None:
    # given: five records; the group committed `committed` of them, then retention (here
    # delete-records, which moves the log start the same way) removed offsets 0..3
    from ledger.ports import OutgoingRecord
    from tests.contract.test_pulse_log import drain

    settings = kafka_settings(kafka_bootstrap, partitions=1)
    log = KafkaPulseLog(settings.config())
    log.publish([OutgoingRecord(b"k", f"v{i}".encode()) for i in range(5)], ARRIVAL)
    group = f"lost-{settings.topic}"
    first = log.consumer(group)
    read = drain(first, 5)
    first.commit(read[:committed])
    first.close()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    [future] = admin.delete_records([TopicPartition(settings.topic, 0, 4)]).values()
    future.result(timeout=30)
    # when: the next member of the group starts
    caplog.set_level("INFO", logger="ledger.kafka_consumer")
    second = log.consumer(group)
    again = drain(second, 1)
    second.close()
    log.close()
    # then: it reads on from what is left, and says what was lost (only when something was)
    assert [r.value for r in again] == [b"v4"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    if lost:
        assert len(errors) == 1
        assert "partition 0" in errors[0]
        assert "lost records 2..3" in errors[0]
        assert "(2 records never reach the ledger)" in errors[0]
    else:
        assert errors == []
