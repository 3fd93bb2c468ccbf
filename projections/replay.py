"""Replay: re-read a range of the pulse log through the ledger's idempotent path, re-derive what
it touched, and report what changed (or would change, with dry_run).

Order, and what a stop or crash at each step means:

1. fix the range  — end positions are fixed before reading (the log's end, or the offsets of
                    --to-time), so a live stream does not make a replay endless.
2. read + write   — batch by batch through `LedgerAppender.apply`, the live writer's steps
                    2-5: known pulses are no-ops, reused ids with another payload are
                    conflicts, undecodable records are dead-lettered, as live. A
                    crash here leaves only complete, idempotent batches: replaying again from
                    the same start repeats nothing.
3. re-derive      — every (tenant, hour) that received a new event is recomputed from the
                    ledger and written whole (`project_hours`), after the draft totals of the
                    touched months were taken as "before".
4. correct        — finalized months among them get their correction notes
                    (`Invoicing.correct_touched`), exactly as the live projector does.

A stop request (Ctrl-C) is honoured between batches: steps 3 and 4 still run for what was
written, and the report says where to resume. Reading never joins or commits to a consumer
group, so the live writer and projector are not disturbed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from catalog.invoice import CorrectionNote
from ledger import codec
from ledger.dedup import classify
from ledger.model import LedgerEvent, LogRecord
from ledger.ports import LedgerStore, LogHistory
from ledger.writer import LedgerAppender
from projections.changes import BucketChange, TenantHour, bucket_changes
from projections.hourly import HourlyUsage, MeteringUnits, derive_hour
from projections.invoices import Invoicing
from projections.ports import UsageStore
from projections.runner import project_hours

Progress = Callable[[int], None]  # records read so far


@dataclass(frozen=True)
class DraftChange:
    tenant_id: str
    period: str
    currency: str
    before: Decimal
    after: Decimal


@dataclass
class ReplayReport:
    dry_run: bool
    records: int = 0
    added: int = 0
    duplicates: int = 0
    conflicts: int = 0
    undecodable: int = 0
    other_tenants: int = 0
    buckets: list[BucketChange] = field(default_factory=list)
    drafts: list[DraftChange] = field(default_factory=list)
    notes: list[CorrectionNote] = field(default_factory=list)
    finalized_touched: list[tuple[str, str]] = field(default_factory=list)
    resume_at: dict[int, int] = field(default_factory=dict)  # set when stopped early
    stopped: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.buckets or self.drafts or self.notes)


class Replay:
    """Re-reads [start, end) of the pulse log; see the module docstring for the order."""

    def __init__(
        self,
        history: LogHistory,
        writer: LedgerAppender,
        ledger: LedgerStore,
        usage: UsageStore,
        invoicing: Invoicing,
        units: MeteringUnits,
    ) -> None:
        self._history = history
        self._units = units
        self._writer = writer
        self._ledger = ledger
        self._usage = usage
        self._invoicing = invoicing

    def run(
        self,
        start: Mapping[int, int],
        end: Mapping[int, int],
        *,
        tenant: str | None = None,
        dry_run: bool = False,
        batch: int = 5000,
        progress: Progress = lambda _n: None,
        stop: threading.Event | None = None,
    ) -> ReplayReport:
        report = ReplayReport(dry_run=dry_run)
        planned: dict[tuple[str, str], LedgerEvent] = {}  # dry run: new events so far
        touched: set[TenantHour] = set()
        last: dict[int, int] = {}
        for records in self._history.read(start, end, batch):
            mine = self._of_tenant(records, tenant, report)
            new = self._plan(mine, planned, report) if dry_run else self._write(mine, report)
            touched.update((e.pulse.tenant_id, e.hour) for e in new)
            report.records += len(records)
            for r in records:
                last[r.position.partition] = r.position.offset
            progress(report.records)
            if stop is not None and stop.is_set():
                report.stopped = True
                report.resume_at = {p: o + 1 for p, o in last.items()}
                break
        self._rederive(touched, planned, report)
        return report

    def resubmit(self, records: Sequence[LogRecord]) -> tuple[list[str], ReplayReport]:
        """Dead letters sent through the same path again (after a fix to the decoder or the
        rules): one outcome per record, then the touched hours re-derived and corrected."""
        report = ReplayReport(dry_run=False)
        outcomes = []
        touched: set[TenantHour] = set()
        for record in records:
            done = self._writer.apply([record])
            report.records += 1
            report.added += done.written
            report.duplicates += done.duplicates
            report.conflicts += done.conflicts
            report.undecodable += done.undecodable
            touched.update((e.pulse.tenant_id, e.hour) for e in done.new)
            outcomes.append(_outcome(done.written, done.duplicates, done.conflicts))
        self._rederive(touched, {}, report)
        return outcomes, report

    # ----- step 2 -------------------------------------------------------------------------

    @staticmethod
    def _of_tenant(
        records: Sequence[LogRecord], tenant: str | None, report: ReplayReport
    ) -> list[LogRecord]:
        if tenant is None:
            return list(records)
        # The record key is the tenant id (DESIGN: key = tenant_id), so no decode is needed.
        wanted = tenant.encode()
        mine = [r for r in records if r.key == wanted]
        report.other_tenants += len(records) - len(mine)
        return mine

    def _write(self, records: Sequence[LogRecord], report: ReplayReport) -> list[LedgerEvent]:
        done = self._writer.apply(records)
        report.added += done.written
        report.duplicates += done.duplicates
        report.conflicts += done.conflicts
        report.undecodable += done.undecodable
        return list(done.new)

    def _plan(
        self,
        records: Sequence[LogRecord],
        planned: dict[tuple[str, str], LedgerEvent],
        report: ReplayReport,
    ) -> list[LedgerEvent]:
        events = _decoded(records)
        report.undecodable += len(records) - len(events)
        keys = list({(e.pulse.tenant_id, e.pulse.pulse_id) for e in events})
        known = self._ledger.seen(keys)
        known.update({k: planned[k].payload_hash for k in keys if k in planned})
        classified = classify(events, known)
        for e in classified.new:
            planned[(e.pulse.tenant_id, e.pulse.pulse_id)] = e
        report.added += len(classified.new)
        report.duplicates += len(classified.duplicates)
        report.conflicts += len(classified.conflicts)
        return classified.new

    # ----- steps 3 and 4 ------------------------------------------------------------------

    def _rederive(
        self,
        touched: set[TenantHour],
        planned: Mapping[tuple[str, str], LedgerEvent],
        report: ReplayReport,
    ) -> None:
        if not touched:
            return
        before = {th: self._stored(th) for th in touched}
        after = {th: self._derived(th, planned) for th in touched}
        report.buckets = bucket_changes(before, after)
        periods = sorted({(t, f"{h:%Y-%m}") for t, h in touched})
        drafts_before = {tp: self._invoicing.draft(*tp) for tp in periods}
        if report.dry_run:
            drafts_after = {
                (t, p): self._invoicing.draft_with(
                    t, p, {h: rows for (tt, h), rows in after.items() if tt == t}
                )
                for t, p in periods
            }
        else:
            project_hours(touched, self._ledger, self._usage, self._units)
            drafts_after = {tp: self._invoicing.draft(*tp) for tp in periods}
            report.notes = self._invoicing.correct_touched(touched)
        report.finalized_touched = [tp for tp in periods if self._invoicing.finalized(*tp)]
        report.drafts = [
            DraftChange(t, p, drafts_after[(t, p)].currency, b.total, drafts_after[(t, p)].total)
            for (t, p), b in drafts_before.items()
            if b.total != drafts_after[(t, p)].total
        ]

    def _stored(self, tenant_hour: TenantHour) -> list[HourlyUsage]:
        tenant, hour = tenant_hour
        return list(self._usage.usage(tenant, hour, hour + timedelta(hours=1)))

    def _derived(
        self, tenant_hour: TenantHour, planned: Mapping[tuple[str, str], LedgerEvent]
    ) -> list[HourlyUsage]:
        tenant, hour = tenant_hour
        events = list(self._ledger.events_in_hour(tenant, hour))
        events += [e for (t, _id), e in planned.items() if t == tenant and e.hour == hour]
        return derive_hour(events, self._units.billing_unit, self._units.version)


def _outcome(written: int, duplicates: int, conflicts: int) -> str:
    if written:
        return "written to the ledger"
    if duplicates:
        return "already in the ledger (duplicate)"
    if conflicts:
        return "still a conflict: the ledger keeps the first payload"
    return "still not accepted: dead-lettered again"


def _decoded(records: Iterable[LogRecord]) -> list[LedgerEvent]:
    events = []
    for record in records:
        try:
            pulse = codec.decode(record.value)
        except codec.UndecodableRecord:
            continue  # counted (and dead-lettered when writing) by the writer's path
        events.append(LedgerEvent.of(pulse, record.position, record.arrival))
    return events
