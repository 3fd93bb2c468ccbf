"""KafkaLogConsumer: one member of a consumer group reading the pulse log (writer, projector)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kernel.errors import Conflict, Invalid, Unavailable
from ledger.kafka_config import KafkaConfig, base_config
from ledger.kafka_membership import claim, membership_config
from ledger.model import LogRecord, Position, from_micros

log = logging.getLogger(__name__)

# Commit failures that only mean "a rebalance moved this partition": the new owner re-reads
# from the last commit and the ledger's idempotent writes absorb the repeat.
_REBALANCE_CODES = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._NO_OFFSET,
}


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
            base_config(settings)
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
