"""KafkaLogHistory: the Kafka pulse topic read as history (replay, reconcile), outside any group."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kernel.errors import Unavailable
from ledger.kafka_config import KafkaConfig, base_config
from ledger.model import LogRecord, Position, from_micros, to_micros

_TIMEOUT = 10.0
_POLL = 0.2  # seconds per consume() call while reading a range


class KafkaLogHistory:
    """Assigned partitions (no subscribe, so no group membership) and no commits ever: the
    live writer's and projector's groups are untouched whatever this reads."""

    def __init__(self, config: KafkaConfig, *, idle_timeout: float = 10.0) -> None:
        self._topic = config.topic
        self._idle_timeout = idle_timeout
        self._config = config
        self._client: Consumer | None = None  # made on first use: most processes never read

    @property
    def _consumer(self) -> Consumer:
        if self._client is None:
            self._client = Consumer(self._client_config())
        return self._client

    def _client_config(self) -> dict[str, object]:
        return base_config(self._config) | {
            # A group id of its own that is never committed to: librdkafka wants one.
            "group.id": f"pulse-ledger-history-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }

    def _partitions(self) -> list[int]:
        try:
            meta = self._consumer.list_topics(self._topic, timeout=_TIMEOUT)
        except KafkaException as exc:
            raise Unavailable(f"listing {self._topic}: {exc}") from exc
        topic = meta.topics.get(self._topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise Unavailable(f"topic {self._topic} not found (run `pulse migrate`)")
        return sorted(topic.partitions)

    def bounds(self) -> dict[int, tuple[int, int]]:
        out = {}
        for p in self._partitions():
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, p), timeout=_TIMEOUT
                )
            except KafkaException as exc:
                raise Unavailable(f"watermarks of partition {p}: {exc}") from exc
            out[p] = (int(low), int(high))
        return out

    def offsets_at(self, moment: datetime) -> dict[int, int]:
        stamp_ms = to_micros(moment) // 1000
        bounds = self.bounds()
        wanted = [TopicPartition(self._topic, p, stamp_ms) for p in bounds]
        try:
            found = self._consumer.offsets_for_times(wanted, timeout=_TIMEOUT)
        except KafkaException as exc:
            raise Unavailable(f"offsets for {moment.isoformat()}: {exc}") from exc
        # -1: no record at or after the time, so the end of the partition.
        return {
            tp.partition: tp.offset if tp.offset >= 0 else bounds[tp.partition][1] for tp in found
        }

    def read(
        self, start: Mapping[int, int], end: Mapping[int, int], batch: int = 5000
    ) -> Iterator[list[LogRecord]]:
        bounds = self.bounds()
        stops = {p: end.get(p, bounds.get(p, (0, 0))[1]) for p in start}
        todo = {p for p, first in start.items() if first < stops[p]}
        if not todo:
            return
        self._consumer.assign([TopicPartition(self._topic, p, start[p]) for p in sorted(todo)])
        idle = 0.0
        try:
            while todo:
                try:
                    # A short wait per call: consume() returns early only on a full batch, and
                    # the last batch of a range is rarely full.
                    messages = self._consumer.consume(batch, _POLL)
                except KafkaException as exc:
                    raise Unavailable(f"reading {self._topic}: {exc}") from exc
                if not messages:
                    idle += _POLL
                    if idle > self._idle_timeout:
                        raise Unavailable(
                            f"reading {self._topic}: no record within {self._idle_timeout} s "
                            f"while partitions {sorted(todo)} have not reached their end"
                        )
                    continue
                idle = 0.0
                out: list[LogRecord] = []
                for m in messages:
                    part, offset = m.partition(), m.offset()
                    if part is None or part not in todo:
                        continue
                    error = m.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            todo.discard(part)  # the partition ended before its stop offset
                            continue
                        raise Unavailable(f"reading {self._topic}: {error}")
                    if offset is None or offset >= stops[part]:
                        todo.discard(part)
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
                    if offset + 1 >= stops[part]:
                        todo.discard(part)
                if out:
                    yield out
        finally:
            self._consumer.unassign()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
