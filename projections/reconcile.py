"""Reconcile a billing month across every stage: log = ledger (+ conflicts + dead letters) =
hourly usage = invoiced quantity (drafts price the daily roll-up of the hourly usage), per
tenant and SKU. Every mismatch says where to look.

The log is the reference: its records are classified as the writer classifies them (first
occurrence of a (tenant, pulse id) wins, an identical repeat is a duplicate, another payload
is a conflict, bytes that do not decode are dead letters), then each stage is compared with
what it should hold. Quantities are converted to billing units by the projection's own code
(`derive_hour`), so a stage can only differ because it holds other pulses or other sums.
A log whose oldest records went to retention can only show that what it still holds is in
the ledger; the report says so instead of claiming the ledger has too much.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from kernel.decimals import EXACT
from ledger import codec
from ledger.model import LedgerEvent, Position
from ledger.ports import LedgerStore, LogHistory, PulseLog
from projections.hourly import BillingUnitOf, HourlyUsage, derive_hour
from projections.invoice_lists import period_bounds
from projections.invoices import Invoicing
from projections.ports import UsageStore

Key = tuple[str, str, str]  # tenant, sku, unit (the billing unit when the pulse converts)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Mismatch:
    tenant_id: str
    sku: str
    stage: str  # "ledger", "conflicts", "dead letters", "hourly usage", "invoice"
    detail: str  # what differs and where to look


@dataclass(frozen=True)
class Row:
    """One (tenant, sku, unit): pulses and quantity at each stage."""

    tenant_id: str
    sku: str
    unit: str
    log_pulses: int
    log_quantity: Decimal
    ledger_pulses: int
    ledger_quantity: Decimal
    hourly_quantity: Decimal
    invoiced_quantity: Decimal


@dataclass
class ReconcileReport:
    period: str
    log_records: int = 0
    duplicates: int = 0
    conflicts: int = 0
    undecodable: int = 0
    log_complete: bool = True  # False: retention removed records before the first one kept
    rows: list[Row] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.mismatches


@dataclass
class _Log:
    """The log as the writer would see it: first occurrences, conflicts, dead letters."""

    first: dict[tuple[str, str], LedgerEvent] = field(default_factory=dict)
    conflicts: list[LedgerEvent] = field(default_factory=list)
    undecodable: list[Position] = field(default_factory=list)
    duplicates: int = 0
    records: int = 0


class Reconciliation:
    def __init__(
        self,
        history: LogHistory,
        log: PulseLog,
        ledger: LedgerStore,
        usage: UsageStore,
        invoicing: Invoicing,
        billing_unit_of: BillingUnitOf,
    ) -> None:
        self._history = history
        self._log = log
        self._ledger = ledger
        self._usage = usage
        self._invoicing = invoicing
        self._billing_unit_of = billing_unit_of

    def run(self, period: str, tenant: str | None = None) -> ReconcileReport:
        start, end = period_bounds(period)
        report = ReconcileReport(period)
        bounds = self._history.bounds()
        report.log_complete = all(low == 0 for low, _high in bounds.values())
        seen = self._read_log(bounds, tenant)
        report.log_records, report.duplicates = seen.records, seen.duplicates
        report.undecodable = len(seen.undecodable)

        def in_period(e: LedgerEvent) -> bool:
            return start <= e.pulse.occurred_at < end

        log_events = [e for e in seen.first.values() if in_period(e)]
        conflicts = [e for e in seen.conflicts if in_period(e)]
        report.conflicts = len(conflicts)
        tenants = sorted({e.pulse.tenant_id for e in log_events} | set(self._tenants(tenant)))
        for t in tenants:
            ledger_events = self._ledger_events(t, start, end)
            mine = [e for e in log_events if e.pulse.tenant_id == t]
            report.mismatches += self._compare_pulses(t, mine, ledger_events, report.log_complete)
            report.mismatches += self._compare_conflicts(
                t, [e for e in conflicts if e.pulse.tenant_id == t]
            )
            report.rows += self._rows(t, period, start, end, mine, ledger_events, report)
        report.mismatches += self._compare_dead_letters(seen.undecodable)
        return report

    # ----- the log ------------------------------------------------------------------------

    def _read_log(self, bounds: Mapping[int, tuple[int, int]], tenant: str | None) -> _Log:
        seen = _Log()
        start = {p: low for p, (low, _high) in bounds.items()}
        end = {p: high for p, (_low, high) in bounds.items()}
        wanted = tenant.encode() if tenant is not None else None
        for batch in self._history.read(start, end):
            for record in batch:
                if wanted is not None and record.key != wanted:
                    continue
                seen.records += 1
                try:
                    pulse = codec.decode(record.value)
                except codec.UndecodableRecord:
                    seen.undecodable.append(record.position)
                    continue
                event = LedgerEvent.of(pulse, record.position, record.arrival)
                key = (pulse.tenant_id, pulse.pulse_id)
                first = seen.first.get(key)
                if first is None:
                    seen.first[key] = event
                elif first.payload_hash == event.payload_hash:
                    seen.duplicates += 1
                else:
                    seen.conflicts.append(event)
        return seen

    def _tenants(self, tenant: str | None) -> list[str]:
        return [tenant] if tenant is not None else self._ledger.tenants()

    def _ledger_events(self, tenant: str, start: datetime, end: datetime) -> list[LedgerEvent]:
        return [
            e
            for hour in self._ledger.hours(tenant)
            if start <= hour < end
            for e in self._ledger.events_in_hour(tenant, hour)
        ]

    # ----- comparisons ---------------------------------------------------------------------

    def _compare_pulses(
        self,
        tenant: str,
        log_events: list[LedgerEvent],
        ledger_events: list[LedgerEvent],
        log_complete: bool,
    ) -> list[Mismatch]:
        out = []
        in_ledger = {e.pulse.pulse_id: e for e in ledger_events}
        for e in log_events:
            found = in_ledger.get(e.pulse.pulse_id)
            if found is None:
                out.append(
                    Mismatch(
                        tenant,
                        e.pulse.product_sku,
                        "ledger",
                        f"pulse {e.pulse.pulse_id!r} at log position {e.position} is not in "
                        f"the ledger (replay it: pulse replay --from-offset {e.position})",
                    )
                )
            elif found.payload_hash != e.payload_hash:
                out.append(
                    Mismatch(
                        tenant,
                        e.pulse.product_sku,
                        "ledger",
                        f"pulse {e.pulse.pulse_id!r}: the ledger holds payload "
                        f"{found.payload_hash[:16]} (from {found.position}), the log's first "
                        f"occurrence at {e.position} is {e.payload_hash[:16]}",
                    )
                )
        if log_complete:
            in_log = {e.pulse.pulse_id for e in log_events}
            for e in ledger_events:
                if e.pulse.pulse_id not in in_log:
                    out.append(
                        Mismatch(
                            tenant,
                            e.pulse.product_sku,
                            "ledger",
                            f"pulse {e.pulse.pulse_id!r} is in the ledger (from {e.position}) "
                            "but no record of the log holds it",
                        )
                    )
        return out

    def _compare_conflicts(self, tenant: str, conflicts: list[LedgerEvent]) -> list[Mismatch]:
        if not conflicts:
            return []
        recorded = {c.event.position for c in self._ledger.conflicts(tenant)}
        return [
            Mismatch(
                tenant,
                e.pulse.product_sku,
                "conflicts",
                f"pulse {e.pulse.pulse_id!r} reused with another payload at {e.position} "
                "is not recorded as a conflict",
            )
            for e in conflicts
            if e.position not in recorded
        ]

    def _compare_dead_letters(self, undecodable: list[Position]) -> list[Mismatch]:
        if not undecodable:
            return []
        lettered = {d.record.position for d in self._log.dead_letters(10 * len(undecodable) + 1000)}
        return [
            Mismatch("", "", "dead letters", f"undecodable record at {p} is not dead-lettered")
            for p in undecodable
            if p not in lettered
        ]

    def _rows(
        self,
        tenant: str,
        period: str,
        start: datetime,
        end: datetime,
        log_events: list[LedgerEvent],
        ledger_events: list[LedgerEvent],
        report: ReconcileReport,
    ) -> list[Row]:
        log_sums = _sums(self._derived(log_events))
        ledger_sums = _sums(self._derived(ledger_events))
        hourly = _sums(self._usage.usage(tenant, start, end))
        invoiced = self._invoiced(tenant, period)
        rows = []
        for key in sorted(log_sums.keys() | ledger_sums.keys() | hourly.keys() | invoiced.keys()):
            _t, sku, unit = key
            log_n, log_q = log_sums.get(key, (0, ZERO))
            led_n, led_q = ledger_sums.get(key, (0, ZERO))
            _hn, hour_q = hourly.get(key, (0, ZERO))
            inv_q = invoiced.get(key, (0, ZERO))[1]
            rows.append(Row(tenant, sku, unit, log_n, log_q, led_n, led_q, hour_q, inv_q))
            if (log_n, log_q) != (led_n, led_q) and (report.log_complete or led_q < log_q):
                report.mismatches.append(
                    Mismatch(
                        tenant,
                        sku,
                        "ledger",
                        f"{unit}: log {log_q} ({log_n} pulses) != ledger {led_q} ({led_n} pulses)",
                    )
                )
            if hour_q != led_q:
                report.mismatches.append(
                    Mismatch(
                        tenant,
                        sku,
                        "hourly usage",
                        f"{unit}: ledger {led_q} != hourly usage {hour_q} "
                        f"(re-derive: pulse rebuild --tenant {tenant})",
                    )
                )
            if inv_q != hour_q:
                report.mismatches.append(
                    Mismatch(
                        tenant,
                        sku,
                        "invoice",
                        f"{unit}: hourly usage {hour_q} != invoiced {inv_q}, priced from "
                        f"daily usage (re-derive: pulse rebuild --tenant {tenant}; then "
                        f"pulse invoice show {tenant} --period {period})",
                    )
                )
        return rows

    def _derived(self, events: Iterable[LedgerEvent]) -> list[HourlyUsage]:
        by_hour: dict[datetime, list[LedgerEvent]] = defaultdict(list)
        for e in events:
            by_hour[e.hour].append(e)
        return [
            row
            for hour in sorted(by_hour)
            for row in derive_hour(by_hour[hour], self._billing_unit_of)
        ]

    def _invoiced(self, tenant: str, period: str) -> dict[Key, tuple[int, Decimal]]:
        draft = self._invoicing.draft(tenant, period)
        out: dict[Key, tuple[int, Decimal]] = {}
        for line in draft.lines:
            if line.kind == "usage":
                n, q = out.get((tenant, line.sku, line.unit), (0, ZERO))
                out[(tenant, line.sku, line.unit)] = (n, EXACT.add(q, line.quantity))
        for u in draft.unpriced:
            n, q = out.get((tenant, u.sku, u.unit), (0, ZERO))
            out[(tenant, u.sku, u.unit)] = (n, EXACT.add(q, u.quantity))
        return out


def _sums(rows: Iterable[HourlyUsage]) -> dict[Key, tuple[int, Decimal]]:
    out: dict[Key, tuple[int, Decimal]] = {}
    for r in rows:
        key = (r.tenant_id, r.product_sku, r.unit)
        n, q = out.get(key, (0, ZERO))
        out[key] = (n + r.pulse_count, EXACT.add(q, r.quantity))
    return out
