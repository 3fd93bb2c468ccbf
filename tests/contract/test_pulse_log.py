"""Contract of PulseLog, run against every backend (SQLite and Apache Kafka)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from ledger.model import LogRecord, Position
from ledger.ports import DeadLetter, LogConsumer, OutgoingRecord, PulseLog

ARRIVAL = datetime(2026, 11, 1, 12, 30, 15, 123000, tzinfo=UTC)


def drain(
    consumer: LogConsumer, count: int, below: Mapping[int, int] | None = None, timeout: float = 60
) -> list[LogRecord]:
    """Polls until `count` records arrived (group joins take a moment on Kafka)."""
    out: list[LogRecord] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out.extend(consumer.poll(1000, 0.5, below))
    return out


def records(n: int, tenants: int = 3) -> list[OutgoingRecord]:
    return [OutgoingRecord(f"t{i % tenants}".encode(), f"value-{i}".encode()) for i in range(n)]


def group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def test_published_records_come_back_in_key_order_with_arrival_time(pulse_log: PulseLog) -> None:
    # given
    sent = records(30)
    # when
    pulse_log.publish(sent, ARRIVAL)
    consumer = pulse_log.consumer(group())
    got = drain(consumer, 30)
    consumer.close()
    # then
    assert sorted(r.value for r in got) == sorted(r.value for r in sent)
    assert {r.arrival for r in got} == {ARRIVAL}
    for tenant in (b"t0", b"t1", b"t2"):
        mine = [r for r in got if r.key == tenant]
        assert len({r.position.partition for r in mine}) == 1, "a key stays on one partition"
        by_offset = sorted(mine, key=lambda r: r.position.offset)
        expected = [r.value for r in sent if r.key == tenant]
        assert [r.value for r in by_offset] == expected


def test_end_offsets_count_published_records(pulse_log: PulseLog) -> None:
    # given
    pulse_log.publish(records(12), ARRIVAL)
    # when
    ends = pulse_log.end_offsets()
    # then
    assert sum(ends.values()) == 12


def test_committed_offsets_are_where_a_new_consumer_resumes(pulse_log: PulseLog) -> None:
    # given
    name = group()
    pulse_log.publish(records(10), ARRIVAL)
    first = pulse_log.consumer(name)
    got = drain(first, 10)
    # when
    first.commit(got)
    first.close()
    pulse_log.publish([OutgoingRecord(b"t0", b"after-commit")], ARRIVAL)
    second = pulse_log.consumer(name)
    again = drain(second, 1)
    # then
    assert [r.value for r in again] == [b"after-commit"]
    committed = pulse_log.committed(name)
    ends_before_last = {r.position.partition: r.position.offset + 1 for r in got}
    for partition, offset in ends_before_last.items():
        assert committed[partition] >= offset
    second.close()


def test_poll_never_returns_records_at_or_past_the_limit(pulse_log: PulseLog) -> None:
    # given: 9 records on one partition; the limit allows the first 4
    pulse_log.publish([OutgoingRecord(b"one-key", f"v{i}".encode()) for i in range(9)], ARRIVAL)
    consumer = pulse_log.consumer(group())
    all_ends = pulse_log.end_offsets()
    [partition] = [p for p, end in all_ends.items() if end > 0]
    # when
    early = drain(consumer, 4, below={partition: 4}, timeout=10)
    late = consumer.poll(1000, 0.5, {partition: 4})
    rest = drain(consumer, 5, below={partition: 9})
    # then: nothing past the limit, and nothing held back is lost afterwards
    assert [r.value for r in early] == [f"v{i}".encode() for i in range(4)]
    assert late == []
    assert [r.value for r in rest] == [f"v{i}".encode() for i in range(4, 9)]
    consumer.close()


def test_a_partition_missing_from_the_limit_is_not_read(pulse_log: PulseLog) -> None:
    # given
    pulse_log.publish(records(6), ARRIVAL)
    consumer = pulse_log.consumer(group())
    # when
    got = consumer.poll(1000, 2.0, {})
    # then
    assert got == []
    consumer.close()


def test_seek_replays_from_a_position(pulse_log: PulseLog) -> None:
    # given
    pulse_log.publish([OutgoingRecord(b"k", f"v{i}".encode()) for i in range(5)], ARRIVAL)
    [partition] = [p for p, end in pulse_log.end_offsets().items() if end > 0]
    consumer = pulse_log.consumer(group())
    drain(consumer, 5)
    # when
    consumer.seek([Position(partition, 2)])
    again = drain(consumer, 3)
    # then
    assert [r.value for r in again] == [b"v2", b"v3", b"v4"]
    consumer.close()


def test_dead_letters_keep_reason_detail_and_source_position(pulse_log: PulseLog) -> None:
    # given
    pulse_log.publish([OutgoingRecord(b"k", b"\xff not a pulse")], ARRIVAL)
    consumer = pulse_log.consumer(group())
    [record] = drain(consumer, 1)
    consumer.close()
    # when
    pulse_log.dead_letter([DeadLetter(record, "undecodable", "not a pulse.v1.Pulse")])
    letters = pulse_log.dead_letters(10)
    # then
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.reason, letter.detail) == ("undecodable", "not a pulse.v1.Pulse")
    assert letter.record.position == record.position
    assert letter.record.value == b"\xff not a pulse"
    assert letter.record.arrival == ARRIVAL


def test_dead_lettering_the_same_record_again_lists_it_once(pulse_log: PulseLog) -> None:
    # given: a record dead-lettered, then again (a batch retried after a lost acknowledgement,
    # or re-delivered to a writer restarted before it committed)
    pulse_log.publish([OutgoingRecord(b"k", b"\xff not a pulse")], ARRIVAL)
    consumer = pulse_log.consumer(group())
    [record] = drain(consumer, 1)
    consumer.close()
    letter = DeadLetter(record, "undecodable", "not a pulse.v1.Pulse")
    pulse_log.dead_letter([letter])
    # when
    pulse_log.dead_letter([letter])
    # then
    assert [(d.record.position, d.reason) for d in pulse_log.dead_letters(10)] == [
        (record.position, "undecodable")
    ]


def test_concurrent_awaited_publishes_each_return_once_their_records_are_stored(
    pulse_log: PulseLog,
) -> None:
    # given: 300 single-record calls and one of 20 records, all awaiting at once
    singles = [OutgoingRecord(f"t{i % 3}".encode(), f"single-{i}".encode()) for i in range(300)]
    several = records(20)
    stored_when_returned: list[int] = []

    async def one(batch: list[OutgoingRecord]) -> None:
        await pulse_log.publish_async(batch, ARRIVAL)
        # Every record of this call is readable the moment its await returns.
        stored_when_returned.append(sum(pulse_log.end_offsets().values()))

    async def all_at_once() -> None:
        await asyncio.gather(*(one([r]) for r in singles), one(several))

    # when
    asyncio.run(all_at_once())

    # then: each call returned after its own records (never more stored than exist), and
    # all 320 came back once, stamped with the arrival time
    assert len(stored_when_returned) == 301
    assert min(stored_when_returned) >= 1
    assert max(stored_when_returned) == 320
    got = drain(pulse_log.consumer(group()), 320)
    assert sorted(r.value for r in got) == sorted(r.value for r in [*singles, *several])
    assert {r.arrival for r in got} == {ARRIVAL}


def test_awaited_publishes_in_sequence_keep_their_order_per_key(pulse_log: PulseLog) -> None:
    # given
    sent = records(12, tenants=2)

    # when: one call after the other, each awaited
    async def in_sequence() -> None:
        for record in sent:
            await pulse_log.publish_async([record], ARRIVAL)

    asyncio.run(in_sequence())

    # then
    got = drain(pulse_log.consumer(group()), 12)
    for tenant in (b"t0", b"t1"):
        mine = sorted((r for r in got if r.key == tenant), key=lambda r: r.position.offset)
        assert [r.value for r in mine] == [r.value for r in sent if r.key == tenant]


def test_an_awaited_publish_given_up_by_its_caller_leaves_the_log_serving(
    pulse_log: PulseLog,
) -> None:
    # given: a caller that stops waiting at once (a client deadline, a shutdown)
    errors: list[BaseException] = []

    async def impatient_then_patient() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: errors.append(context.get("exception") or Exception(context))
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                pulse_log.publish_async([OutgoingRecord(b"t0", b"given-up")], ARRIVAL), 0.0001
            )
        # when: the next call is awaited to the end
        await pulse_log.publish_async([OutgoingRecord(b"t0", b"awaited")], ARRIVAL)
        await asyncio.sleep(0.2)  # room for the late report of the first to arrive

    asyncio.run(impatient_then_patient())

    # then: the late report broke nothing and the awaited record is stored (the given-up one
    # may be stored too: "not confirmed" never means "not stored", which dedup absorbs)
    assert errors == []
    got = drain(pulse_log.consumer(group()), 2, timeout=10)
    assert b"awaited" in [r.value for r in got]
