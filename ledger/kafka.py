"""KafkaPulseLog: the pulse log on Apache Kafka; the only module that wraps confluent-kafka."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from kernel.errors import Conflict, Invalid, Unavailable
from ledger.kafka_membership import claim, membership_config
from ledger.model import LogRecord, Position, from_micros, to_micros
from ledger.ports import DeadLetter, LogConsumer, OutgoingRecord

log = logging.getLogger(__name__)

# Commit failures that only mean "a rebalance moved this partition": the new owner re-reads
# from the last commit and the ledger's idempotent writes absorb the repeat.
_REBALANCE_CODES = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._NO_OFFSET,
}


@dataclass(frozen=True)
class KafkaConfig:
    """The topics and how to reach the brokers (built by pulse/settings.py).

    `client` holds further librdkafka properties every client gets, e.g. security.protocol and
    the SASL or TLS ones; secrets arrive here in plain text and must never be logged.
    """

    bootstrap_servers: str
    topic: str = "resource-consumption"
    dlq_topic: str = "resource-consumption.dlq"
    client: Mapping[str, str] = field(default_factory=dict)
    # Consumer group membership (see ledger.kafka_membership and docs/operations.md).
    static_membership: bool = True
    instance_id: str | None = None
    group_protocol: str = "classic"
    session_timeout_ms: int | None = 10000


def _base_config(settings: KafkaConfig) -> dict[str, Any]:
    return {"bootstrap.servers": settings.bootstrap_servers, **settings.client}


class _Pending:
    """Counts delivery reports of one publish call."""

    def __init__(self, count: int) -> None:
        self._left = count
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.errors: list[str] = []
        if count == 0:
            self.done.set()

    def report(self, error: KafkaError | None, _message: Message) -> None:
        with self._lock:
            if error is not None:
                self.errors.append(str(error))
            self._left -= 1
            if self._left == 0:
                self.done.set()


class _Awaited:
    """Counts delivery reports of one publish_async call on the polling thread; once all are
    in, its future is completed on the caller's loop."""

    __slots__ = ("_handoff", "_left", "errors", "future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int, handoff: _Handoff) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.errors: list[str] = []
        self._left = count
        self._handoff = handoff
        if count == 0:
            self.future.set_result(None)

    def report(self, error: KafkaError | None, _message: Message) -> None:
        """librdkafka's delivery callback, on whichever thread polled (usually the poller)."""
        with self._handoff.lock:
            if error is not None:
                self.errors.append(str(error))
            self._left -= 1
            if self._left == 0:
                self._handoff.complete.append(self)

    def settle(self) -> None:
        if not self.future.done():  # done: the caller was cancelled or timed out
            self.future.set_result(None)


def _settle(completed: list[_Awaited]) -> None:
    for awaited in completed:
        awaited.settle()


class _Handoff:
    """Awaited publishes whose every record was reported, gathered on the polling thread and
    passed to each event loop once per poll: one wake-up of the loop per poll, and no work on
    the loop per record."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.complete: list[_Awaited] = []

    def hand_over(self) -> None:
        with self.lock:
            completed, self.complete = self.complete, []
        if not completed:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[_Awaited]] = {}
        for awaited in completed:
            by_loop.setdefault(awaited.loop, []).append(awaited)
        for loop, batch in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, batch)
            except RuntimeError:  # the loop is closed: nobody awaits these any more
                log.debug("%d delivery reports for a closed event loop", len(batch))


class KafkaPulseLog:
    """Idempotent producer (acks=all) with a background poller for delivery reports."""

    def __init__(self, settings: KafkaConfig, *, delivery_timeout: float = 10.0) -> None:
        self._settings = settings
        self._delivery_timeout = delivery_timeout
        self._producer = Producer(
            _base_config(settings)
            | {
                "enable.idempotence": True,  # implies acks=all and ordered, no-duplicate retries
                "acks": "all",
                "linger.ms": 1,  # single-pulse calls wait for the batch timer: keep it short
                "batch.num.messages": 10000,
                "queue.buffering.max.messages": 500000,
                "compression.type": "lz4",
                "message.timeout.ms": int(delivery_timeout * 1000),
            }
        )
        self._handoff = _Handoff()
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll_forever, name="kafka-poller", daemon=True)
        self._poller.start()
        self._offset_readers: dict[str, Consumer] = {}
        self._readers_lock = threading.Lock()
        self._partitions: list[int] | None = None

    def _poll_forever(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)
            self._handoff.hand_over()

    def publish(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        self._produce(
            self._settings.topic,
            [(r.key, r.value, None) for r in records],
            # The record timestamp is arrival time, never event time: retention counts from
            # it, so back-dated pulses are not deleted before the writer stores them.
            to_micros(arrival) // 1000,
        )

    async def publish_async(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        # Records of every call in flight share the producer's batches; each call awaits only
        # the delivery reports of its own records, which the poller thread hands to the loop.
        topic = self._settings.topic
        awaited = _Awaited(asyncio.get_running_loop(), len(records), self._handoff)
        stamp = to_micros(arrival) // 1000  # arrival time, never event time (see publish)
        for record in records:
            while True:
                try:
                    self._producer.produce(
                        topic,
                        value=record.value,
                        key=record.key,
                        timestamp=stamp,
                        on_delivery=awaited.report,
                    )
                    break
                except BufferError:
                    await asyncio.sleep(0.01)  # local queue full: the poller drains it
                except KafkaException as exc:
                    raise Unavailable(f"producing to {topic}: {exc}") from exc
        try:
            async with asyncio.timeout(self._delivery_timeout + 5):
                await awaited.future
        except TimeoutError:
            raise Unavailable(
                f"{topic}: delivery not confirmed within {self._delivery_timeout} s"
            ) from None
        if awaited.errors:
            raise Unavailable(f"{topic}: {len(awaited.errors)} not stored: {awaited.errors[0]}")

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        items = []
        for letter in letters:
            rec = letter.record
            headers = [
                ("reason", letter.reason.encode()),
                ("detail", letter.detail.encode()),
                ("source.topic", self._settings.topic.encode()),
                ("source.partition", str(rec.position.partition).encode()),
                ("source.offset", str(rec.position.offset).encode()),
                ("source.timestamp_ms", str(to_micros(rec.arrival) // 1000).encode()),
            ]
            items.append((rec.key, rec.value, headers))
        self._produce(self._settings.dlq_topic, items, None)

    def _produce(
        self,
        topic: str,
        items: Sequence[tuple[bytes, bytes, list[tuple[str, bytes]] | None]],
        timestamp_ms: int | None,
    ) -> None:
        pending = _Pending(len(items))
        for key, value, headers in items:
            kwargs: dict[str, Any] = {"on_delivery": pending.report}
            if timestamp_ms is not None:
                kwargs["timestamp"] = timestamp_ms
            if headers:
                kwargs["headers"] = headers
            while True:
                try:
                    self._producer.produce(topic, value=value, key=key, **kwargs)
                    break
                except BufferError:
                    self._producer.poll(0.01)  # local queue full: let deliveries drain
                except KafkaException as exc:
                    raise Unavailable(f"producing to {topic}: {exc}") from exc
        if not pending.done.wait(self._delivery_timeout + 5):
            raise Unavailable(f"{topic}: delivery not confirmed within {self._delivery_timeout} s")
        if pending.errors:
            raise Unavailable(f"{topic}: {len(pending.errors)} not stored: {pending.errors[0]}")

    def partitions(self) -> list[int]:
        if self._partitions is None:
            reader = self._offset_reader("pulse-ledger-metadata")
            try:
                meta = reader.list_topics(self._settings.topic, timeout=10)
            except KafkaException as exc:
                raise Unavailable(f"listing {self._settings.topic}: {exc}") from exc
            topic = meta.topics.get(self._settings.topic)
            if topic is None or topic.error is not None or not topic.partitions:
                raise Unavailable(f"topic {self._settings.topic} not found (run `pulse migrate`)")
            self._partitions = sorted(topic.partitions)
        return self._partitions

    def _offset_reader(self, group: str) -> Consumer:
        # A consumer that never subscribes does not join the group; it only reads offsets.
        with self._readers_lock:
            reader = self._offset_readers.get(group)
            if reader is None:
                reader = Consumer(
                    _base_config(self._settings) | {"group.id": group, "enable.auto.commit": False}
                )
                self._offset_readers[group] = reader
            return reader

    def committed(self, group: str) -> dict[int, int]:
        tps = [TopicPartition(self._settings.topic, p) for p in self.partitions()]
        try:
            got = self._offset_reader(group).committed(tps, timeout=10)
        except KafkaException as exc:
            raise Unavailable(f"committed offsets of {group}: {exc}") from exc
        return {tp.partition: tp.offset for tp in got if tp.offset >= 0}

    def end_offsets(self) -> dict[int, int]:
        reader = self._offset_reader("pulse-ledger-metadata")
        ends = {}
        for p in self.partitions():
            try:
                _low, high = reader.get_watermark_offsets(
                    TopicPartition(self._settings.topic, p), timeout=10
                )
            except KafkaException as exc:
                raise Unavailable(f"end offset of partition {p}: {exc}") from exc
            ends[p] = high
        return ends

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        consumer = Consumer(
            _base_config(self._settings)
            | {"group.id": "pulse-ledger-dlq-reader", "enable.auto.commit": False}
        )
        try:
            meta = consumer.list_topics(self._settings.dlq_topic, timeout=10)
            parts = sorted(meta.topics[self._settings.dlq_topic].partitions)
            ends = {
                p: consumer.get_watermark_offsets(
                    TopicPartition(self._settings.dlq_topic, p), timeout=10
                )
                for p in parts
            }
            # From the low watermark: offset 0 is gone after retention, and the consumer
            # would reset to the end and list nothing.
            consumer.assign(
                [TopicPartition(self._settings.dlq_topic, p, low) for p, (low, _) in ends.items()]
            )
            wanted = sum(high - low for low, high in ends.values())
            letters: dict[tuple[Position, str], DeadLetter] = {}
            read = 0
            while read < wanted and len(letters) < limit:
                batch = consumer.consume(500, timeout=5)
                if not batch:
                    break
                read += len(batch)
                for message in batch:
                    if message.error() is None:
                        # A record dead-lettered twice (a batch retried after a lost ack, or
                        # re-delivered before its commit) is one letter: keyed by its origin.
                        letter = _letter(message)
                        letters.setdefault((letter.record.position, letter.reason), letter)
            return list(letters.values())[:limit]
        except KafkaException as exc:
            raise Unavailable(f"reading {self._settings.dlq_topic}: {exc}") from exc
        finally:
            consumer.close()

    def consumer(self, group: str) -> LogConsumer:
        return KafkaLogConsumer(self._settings, group)

    def close(self) -> None:
        self._closed.set()
        self._poller.join(timeout=5)
        self._producer.flush(10)
        self._handoff.hand_over()
        for reader in self._offset_readers.values():
            reader.close()


def _letter(message: Message) -> DeadLetter:
    headers: dict[str, str] = {}
    raw: Any = message.headers() or []
    for key, value in raw:
        if isinstance(value, bytes):
            headers[str(key)] = value.decode()
    position = Position(
        int(headers.get("source.partition", -1)), int(headers.get("source.offset", -1))
    )
    arrival = from_micros(int(headers.get("source.timestamp_ms", 0)) * 1000)
    record = LogRecord(position, arrival, message.key() or b"", message.value() or b"")
    return DeadLetter(record, headers.get("reason", ""), headers.get("detail", ""))


def _fatal(error: KafkaError) -> bool:
    """An error after which this consumer can never fetch or commit again."""
    return bool(error.fatal() or error.code() in (KafkaError._FATAL, KafkaError.FENCED_INSTANCE_ID))


class KafkaLogConsumer:
    """A group member (subscribe); seek() moves within the partitions assigned to it."""

    def __init__(self, settings: KafkaConfig, group: str) -> None:
        self._topic = settings.topic
        # A static id makes a restarted member take its partitions back at once (see
        # ledger.kafka_membership); released on close.
        self._claim = claim(group, settings.instance_id) if settings.static_membership else None
        self._consumer = Consumer(
            _base_config(settings)
            | {
                "group.id": group,
                "enable.auto.commit": False,  # offsets are committed after the durable write
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "fetch.min.bytes": 1,
                "max.poll.interval.ms": 300000,
            }
            | membership_config(
                protocol=settings.group_protocol,
                instance_id=self._claim.instance_id if self._claim else None,
                session_timeout_ms=settings.session_timeout_ms,
            )
        )
        self._group = group
        self._unchecked: set[int] = set()  # assigned partitions not yet checked for losses
        self._consumer.subscribe([self._topic], on_assign=self._assigned)

    def _assigned(self, _consumer: Consumer, tps: list[TopicPartition]) -> None:
        partitions = sorted(tp.partition for tp in tps)
        log.info("%s: assigned partitions %s", self._group, partitions)
        self._unchecked.update(partitions)

    def _report_losses(self) -> None:
        """Logs an error for each newly assigned partition whose log now starts after the
        group's committed offset: retention deleted records before the group read them (a
        writer down for longer than the topic's retention). auto.offset.reset then moves on
        from the new log start; those pulses can never reach the ledger, and nobody else
        would say so. Checked outside the rebalance callback, once per assignment."""
        parts, self._unchecked = sorted(self._unchecked), set()
        try:
            committed = self._consumer.committed(
                [TopicPartition(self._topic, p) for p in parts], timeout=10
            )
            for tp in committed:
                if tp.offset < 0:
                    continue  # nothing committed: a new group starts at the log start
                low, _high = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, tp.partition), timeout=10, cached=False
                )
                if tp.offset < low:
                    log.error(
                        "%s: partition %d of %s lost records %d..%d to retention before this "
                        "group read them (%d records never reach the ledger); reading on "
                        "from offset %d",
                        self._group,
                        tp.partition,
                        self._topic,
                        tp.offset,
                        low - 1,
                        low - tp.offset,
                        low,
                    )
        except KafkaException as exc:
            log.warning("could not check partitions %s for records lost: %s", parts, exc)

    def poll(
        self, max_records: int, timeout: float, below: Mapping[int, int] | None = None
    ) -> list[LogRecord]:
        try:
            messages = self._consumer.consume(max_records, timeout)
        except KafkaException as exc:
            raise Unavailable(f"consuming {self._topic}: {exc}") from exc
        if self._unchecked:
            self._report_losses()
        out: list[LogRecord] = []
        held_back: dict[int, int] = {}
        for m in messages:
            error = m.error()
            if error is not None:
                # Fatal (e.g. a static id still held by a dead member under KIP-848, or
                # fenced by another member): this consumer can never fetch again. Raise, so
                # the supervisor restarts the role with a new one (or ends the process).
                if _fatal(error):
                    raise Conflict(f"consumer of {self._topic} cannot go on: {error}")
                log.warning("consumer error on %s: %s", self._topic, error)
                continue
            part, offset = m.partition(), m.offset()
            if part is None or offset is None:
                continue
            if part in held_back:
                continue
            if below is not None and offset >= below.get(part, 0):
                held_back[part] = offset
                continue
            _kind, stamp = m.timestamp()
            out.append(
                LogRecord(
                    Position(part, offset),
                    from_micros(stamp * 1000),
                    m.key() or b"",
                    m.value() or b"",
                )
            )
        for part, offset in held_back.items():
            # Not yet in the ledger: read it again later.
            try:
                self._consumer.seek(TopicPartition(self._topic, part, offset))
            except KafkaException as exc:
                log.info("seek back on partition %d failed (rebalanced?): %s", part, exc)
        if held_back and not out:
            threading.Event().wait(timeout)
        return out

    def commit(self, records: Sequence[LogRecord]) -> None:
        next_offsets: dict[int, int] = {}
        for r in records:
            next_offsets[r.position.partition] = max(
                next_offsets.get(r.position.partition, 0), r.position.offset + 1
            )
        if not next_offsets:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(self._topic, p, o) for p, o in next_offsets.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() in _REBALANCE_CODES:
                log.info("commit skipped after a rebalance: %s", error)
                return
            if isinstance(error, KafkaError) and _fatal(error):
                # Retrying cannot help: this consumer is finished (e.g. its static id was
                # taken over after a coordinator change). The role restarts with a new one;
                # the batch is already durable, so its redelivery is a no-op.
                raise Conflict(f"consumer of {self._topic} cannot commit: {error}") from exc
            raise Unavailable(f"committing offsets on {self._topic}: {exc}") from exc

    def seek(self, positions: Sequence[Position]) -> None:
        # Seeking works on partitions the group gave this member; unsubscribe-then-assign
        # would race with the revocation that unsubscribe triggers.
        for p in positions:
            try:
                self._consumer.seek(TopicPartition(self._topic, p.partition, p.offset))
            except KafkaException as exc:
                raise Invalid(f"cannot seek to {p} on {self._topic}: {exc}") from exc

    def close(self) -> None:
        try:
            self._consumer.close()
        finally:
            if self._claim is not None:
                self._claim.release()
