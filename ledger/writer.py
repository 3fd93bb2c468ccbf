"""The ledger writer: moves pulses from the log into the immutable ledger, exactly once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger import codec
from ledger.dedup import classify
from ledger.model import LedgerEvent, LogRecord
from ledger.ports import DeadLetter, LedgerStore, LogConsumer, PulseLog
from ledger.retry import retrying

log = logging.getLogger(__name__)

REASON_UNDECODABLE = "undecodable"
REASON_INVALID = "invalid"  # decodes, but breaks a rule of the ingestor (field: reason)
REASON_CONFLICT = "conflict"


@dataclass(frozen=True)
class BatchReport:
    records: int = 0
    written: int = 0
    duplicates: int = 0
    conflicts: int = 0
    undecodable: int = 0
    new: tuple[LedgerEvent, ...] = ()  # the events this batch added to the ledger


class LedgerWriter:
    """One consumer of the writer group. Each batch runs in this order:

    1. poll     — a crash here loses nothing: offsets are not committed yet.
    2. decode   — undecodable records, and records that break a rule of the ingestor, are
                  set aside for the dead-letter log.
    3. dedup    — read the (tenant_id, pulse_id) index; classify new / duplicate / conflict.
    4. write    — new events, then their dedup marks (ScyllaDB) or both in one transaction
                  (SQLite). A crash after this step re-delivers the batch; events carry
                  deterministic keys, so re-writing them is a no-op and nothing counts twice.
    5. set aside — conflicts recorded in the ledger store and, with undecodable records, sent
                  to the dead-letter log (acks=all). A crash here repeats them: both idempotent.
    6. commit   — offsets, only now that everything above is durable.

    Transient backend errors (Unavailable) in every step, poll and commit included, are
    retried with backoff, never dead-lettered. Anything else ends `run` (after closing the
    consumer, so its partitions go to the next member at once): the supervisor restarts the
    role or ends the process (pulse.supervision). The loop is synchronous, so a rebalance
    (which happens inside poll) never interrupts a batch half-way: the next owner of a
    partition resumes after the last committed batch.
    """

    def __init__(
        self,
        log_: PulseLog,
        store: LedgerStore,
        consumer: LogConsumer,
        *,
        batch_size: int = 5000,
        poll_timeout: float = 0.2,
        stop: threading.Event | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> None:
        """`on_batch` sees each committed batch's report (metrics); it must not raise."""
        self._on_batch = on_batch
        self._appender = LedgerAppender(log_, store)
        self._consumer = consumer
        self._batch_size = batch_size
        self._poll_timeout = poll_timeout
        self._stop = stop or threading.Event()

    def run(self, on_cycle: Callable[[], None] = lambda: None) -> None:
        """Batches until stopped; `on_cycle` after each one (the supervisor's heartbeat)."""
        try:
            while not self._stop.is_set():
                self.run_once()
                on_cycle()
        finally:
            self._consumer.close()

    def run_once(self) -> BatchReport:
        records = retrying(
            lambda: self._consumer.poll(self._batch_size, self._poll_timeout),
            self._stop,
            "polling the log",
        )
        if not records:
            return BatchReport()
        report = retrying(lambda: self.apply(records), self._stop, "writing a batch")
        if report is None:  # stopping while the backend was down: offsets stay uncommitted
            return BatchReport()
        retrying(lambda: self._consumer.commit(records), self._stop, "committing")
        if self._on_batch is not None:
            self._on_batch(report)
        positions = {
            "role": "writer",
            "first": str(records[0].position),
            "last": str(records[-1].position),
        }
        if report.conflicts or report.undecodable:
            log.warning(
                "batch of %d: %d conflicts, %d undecodable sent to the dead-letter log",
                report.records,
                report.conflicts,
                report.undecodable,
                extra=positions,
            )
        else:
            log.debug(
                "batch of %d committed: %d written, %d duplicates",
                report.records,
                report.written,
                report.duplicates,
                extra=positions,
            )
        return report

    def apply(self, records: Sequence[LogRecord]) -> BatchReport:
        """Steps 2-5 for one batch; idempotent, so a repeat after a crash changes nothing."""
        return self._appender.apply(records)


class LedgerAppender:
    """Steps 2-5 of LedgerWriter for one batch, without a consumer group: the live writer and
    `pulse replay` share this one path into the ledger."""

    def __init__(self, log_: PulseLog, store: LedgerStore) -> None:
        self._log = log_
        self._store = store

    def apply(self, records: Sequence[LogRecord]) -> BatchReport:
        """Steps 2-5 for one batch; idempotent, so a repeat after a crash changes nothing."""
        events: list[LedgerEvent] = []
        letters: list[DeadLetter] = []
        for record in records:
            try:
                pulse = codec.decode(record.value)
            except codec.InvalidRecord as exc:
                letters.append(DeadLetter(record, REASON_INVALID, str(exc)))
                continue
            except codec.UndecodableRecord as exc:
                letters.append(DeadLetter(record, REASON_UNDECODABLE, str(exc)))
                continue
            events.append(LedgerEvent.of(pulse, record.position, record.arrival))
        keys = list({(e.pulse.tenant_id, e.pulse.pulse_id) for e in events})
        classified = classify(events, self._store.seen(keys))
        if classified.new:
            self._store.append(classified.new)
        if classified.conflicts:
            self._store.record_conflicts(classified.conflicts)
            by_position = {r.position: r for r in records}
            for c in classified.conflicts:
                detail = (
                    f"pulse_id {c.event.pulse.pulse_id!r} of tenant {c.event.pulse.tenant_id!r} "
                    f"already in the ledger with payload {c.existing_hash[:16]}; "
                    f"this payload {c.event.payload_hash[:16]} differs"
                )
                letters.append(DeadLetter(by_position[c.event.position], REASON_CONFLICT, detail))
        if letters:
            self._log.dead_letter(letters)
        return BatchReport(
            records=len(records),
            written=len(classified.new),
            duplicates=len(classified.duplicates),
            conflicts=len(classified.conflicts),
            undecodable=len(records) - len(events),
            new=tuple(classified.new),
        )


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Polls `predicate` until true or `timeout` seconds passed (for CLIs and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
