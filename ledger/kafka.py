"""KafkaPulseLog: the pulse log on Apache Kafka (producer, dead letters, offsets); with
ledger.kafka_consumer and ledger.kafka_history the only modules that wrap confluent-kafka."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from kernel.errors import Unavailable
from ledger.kafka_config import KafkaConfig, base_config
from ledger.kafka_consumer import KafkaLogConsumer
from ledger.model import LogRecord, Position, from_micros, to_micros
from ledger.ports import DeadLetter, LogConsumer, OutgoingRecord

log = logging.getLogger(__name__)


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
            base_config(settings)
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
                    base_config(self._settings) | {"group.id": group, "enable.auto.commit": False}
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
            base_config(self._settings)
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


__all__ = ["KafkaConfig", "KafkaLogConsumer", "KafkaPulseLog"]
