"""Terminal and JSON renderings of usage, terms and invoices (CLI only)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from rich.table import Table

from catalog.invoice import InvoiceDraft
from catalog.terms import MINOR_UNITS, ContractVersion
from kernel.decimals import EXACT, plain
from ledger.ports import DeadLetter
from projections.changes import BucketChange
from projections.hourly import HourlyUsage
from projections.rebuild import RebuildReport
from projections.reconcile import ReconcileReport
from projections.replay import ReplayReport


def usage_rows(rows: Sequence[HourlyUsage], granularity: str) -> list[dict[str, str]]:
    """Rows as plain dicts with exact decimal strings, rolled up by hour or by day."""
    groups: dict[tuple[str, str, str], list[HourlyUsage]] = defaultdict(list)
    for row in rows:
        period = row.hour.strftime("%Y-%m-%dT%H:00Z" if granularity == "hour" else "%Y-%m-%d")
        groups[(period, row.product_sku, row.unit)].append(row)
    out = []
    for (period, sku, unit), members in sorted(groups.items()):
        total = Decimal(0)
        for member in members:
            total = EXACT.add(total, member.quantity)
        out.append(
            {
                "period": period,
                "product_sku": sku,
                "unit": unit,
                "quantity": plain(total),
                "pulses": str(sum(m.pulse_count for m in members)),
                "priced": "yes" if all(m.priced for m in members) else "no",
                "note": next((m.unpriced_reason for m in members if m.unpriced_reason), ""),
            }
        )
    return out


def usage_table(title: str, rows: list[dict[str, str]]) -> Table:
    table = Table(title=title)
    for name, justify in (
        ("period", "left"),
        ("product_sku", "left"),
        ("quantity", "right"),
        ("unit", "left"),
        ("pulses", "right"),
        ("priced", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row["period"],
            row["product_sku"],
            row["quantity"],
            row["unit"],
            row["pulses"],
            row["priced"] if not row["note"] else f"no: {row['note']}",
        )
    return table


def usage_json(tenant: str, rows: list[dict[str, str]]) -> str:
    return json.dumps({"tenant_id": tenant, "usage": rows}, indent=2)


def plan_text(plan: object) -> str:
    from catalog.terms import PlanKind, PricePlan

    assert isinstance(plan, PricePlan)
    if plan.kind is PlanKind.PER_UNIT:
        text = f"per unit {plain(plan.unit_price)}"
    elif plan.kind is PlanKind.PACKAGE:
        text = f"package {plain(plan.package_price)} per {plain(plan.package_size)}"
    else:
        tiers = ", ".join(
            f"≤{plain(t.up_to)}: {plain(t.unit_price)}"
            if t.up_to is not None
            else f"rest: {plain(t.unit_price)}"
            for t in plan.tiers
        )
        text = f"{plan.kind.value} [{tiers}]"
    if plan.minimum_charge:
        text += f", minimum {plain(plan.minimum_charge)}"
    return text


def contract_text(tenant: str, v: ContractVersion) -> str:
    lines = [f"contract of {tenant}, amendment in force since {v.effective_from}:"]
    for d in v.discounts:
        scope = f"SKU {d.sku}" if d.sku else f"category {d.category}" if d.category else "all"
        lines.append(f"  discount {plain(d.percent)}% on {scope}")
    for sku, plan in v.overrides:
        lines.append(f"  price override {sku}: {plan_text(plan)}")
    for sku, amount in v.allowances:
        lines.append(f"  free allowance {sku}: {plain(amount)} per month")
    if v.commitment:
        lines.append(f"  committed monthly spend: {plain(v.commitment)}")
    return "\n".join(lines)


def money(amount: Decimal, currency: str) -> str:
    """An amount shown with the currency's minor digits (amounts are already rounded)."""
    return format(amount, f".{MINOR_UNITS.get(currency, 2)}f")


def invoice_table(draft: InvoiceDraft) -> Table:
    """One row per line; tier breakdowns are in `--json` and `pulse invoice explain`."""
    table = Table(title=f"invoice of {draft.tenant_id} for {draft.period} ({draft.currency})")
    for column, justify in (
        ("sku", "left"),
        ("days", "left"),
        ("quantity", "right"),
        ("unit", "left"),
        ("free", "right"),
        ("plan", "left"),
        ("disc.", "right"),
        ("amount", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=column in ("sku", "amount"))  # type: ignore[arg-type]
    for line in draft.lines:
        amount = money(line.amount, draft.currency)
        if line.kind != "usage":
            table.add_row(line.sku, f"{line.kind} true-up", "", "", "", "", "", amount)
            continue
        last_day = line.segment_end - timedelta(microseconds=1)
        table.add_row(
            line.sku,
            f"{line.segment_start:%m-%d}..{last_day:%m-%d}",
            plain(line.quantity),
            line.unit,
            plain(line.allowance_used) if line.allowance_used else "",
            f"{line.plan_kind.value if line.plan_kind else '-'}"
            + ("*" if line.plan_source == "contract" else ""),
            f"{plain(line.discount_percent)}%" if line.discount_percent else "",
            amount,
        )
    table.add_section()
    table.add_row("total", "", "", "", "", "", "", money(draft.total, draft.currency))
    table.caption = "* price from the tenant's contract"
    return table


def unpriced_lines(draft: InvoiceDraft) -> list[str]:
    """One line per unpriced usage row: listed, never hidden."""
    return [
        f"  unpriced: {u.sku} {plain(u.quantity)} {u.unit} — {u.reason}" for u in draft.unpriced
    ]


def _amount(value: Decimal | None) -> str:
    return "-" if value is None else plain(value)


def replay_lines(report: ReplayReport, limit: int = 50) -> list[str]:
    """The report of `pulse replay` for a terminal: counts, then every change (capped)."""
    verb = "would add" if report.dry_run else "added"
    lines = [
        f"{'dry run: ' if report.dry_run else ''}{report.records} record(s) read; "
        f"{verb} {report.added} pulse(s); {report.duplicates} already in the ledger; "
        f"{report.conflicts} conflict(s); {report.undecodable} undecodable"
        + (f"; {report.other_tenants} of other tenants skipped" if report.other_tenants else "")
    ]
    lines.append(f"hourly buckets changed: {len(report.buckets)}")
    for b in report.buckets[:limit]:
        lines.append(
            f"  {b.tenant_id} {b.hour:%Y-%m-%d %H:00} {b.sku} [{b.unit}]: "
            f"{_amount(b.before)} -> {_amount(b.after)}"
        )
    if len(report.buckets) > limit:
        lines.append(f"  … and {len(report.buckets) - limit} more (--json lists all)")
    lines.append(f"draft totals changed: {len(report.drafts)}")
    for d in report.drafts:
        lines.append(
            f"  {d.tenant_id} {d.period}: {money(d.before, d.currency)} -> "
            f"{money(d.after, d.currency)} {d.currency}"
        )
    if report.dry_run:
        for tenant, period in report.finalized_touched:
            lines.append(
                f"  {tenant} {period} is finalized: a replay would issue a note if it differs"
            )
    else:
        lines.append(f"correction notes issued: {len(report.notes)}")
        for n in report.notes:
            lines.append(f"  {n.title} referencing {n.references[:16]}…: total {plain(n.total)}")
    if report.stopped:
        resume = " ".join(f"--from-offset {p}:{o}" for p, o in sorted(report.resume_at.items()))
        lines.append(f"stopped early; resume with: pulse replay {resume}")
    elif not report.changed:
        lines.append("nothing changed: the ledger already held every pulse of this range")
    return lines


def replay_json(report: ReplayReport) -> dict[str, object]:
    """The whole report as JSON-ready data (exact decimal strings)."""
    return {
        "dry_run": report.dry_run,
        "records": report.records,
        "added": report.added,
        "duplicates": report.duplicates,
        "conflicts": report.conflicts,
        "undecodable": report.undecodable,
        "other_tenants": report.other_tenants,
        "buckets": [_bucket_json(b) for b in report.buckets],
        "drafts": [
            {
                "tenant_id": d.tenant_id,
                "period": d.period,
                "currency": d.currency,
                "before": plain(d.before),
                "after": plain(d.after),
            }
            for d in report.drafts
        ],
        "notes": [json.loads(n.canonical_json()) for n in report.notes],
        "finalized_touched": [f"{t} {p}" for t, p in report.finalized_touched],
        "stopped": report.stopped,
        "resume_at": {str(p): o for p, o in sorted(report.resume_at.items())},
    }


def reconcile_table(report: ReconcileReport) -> Table:
    table = Table(title=f"reconciliation of {report.period}")
    for column in ("tenant", "sku", "unit", "log", "ledger", "hourly", "invoiced", "pulses"):
        table.add_column(column, justify="left" if column in ("tenant", "sku", "unit") else "right")
    for r in report.rows:
        table.add_row(
            r.tenant_id,
            r.sku,
            r.unit,
            plain(r.log_quantity),
            plain(r.ledger_quantity),
            plain(r.hourly_quantity),
            plain(r.invoiced_quantity),
            f"{r.log_pulses}/{r.ledger_pulses}",
        )
    return table


def reconcile_lines(report: ReconcileReport) -> list[str]:
    lines = [
        f"log: {report.log_records} record(s) read, {report.duplicates} duplicate(s), "
        f"{report.conflicts} conflict(s) in the period, {report.undecodable} undecodable"
    ]
    if not report.log_complete:
        lines.append(
            "the log's oldest records are gone to retention: only what it still holds was "
            "checked against the ledger"
        )
    for m in report.mismatches:
        where = f"{m.tenant_id} {m.sku} " if m.tenant_id else ""
        lines.append(f"MISMATCH [{m.stage}] {where}{m.detail}")
    lines.append(
        "clean: every stage agrees" if report.clean else f"{len(report.mismatches)} mismatch(es)"
    )
    return lines


def reconcile_json(report: ReconcileReport) -> dict[str, object]:
    return {
        "period": report.period,
        "clean": report.clean,
        "log_records": report.log_records,
        "duplicates": report.duplicates,
        "conflicts": report.conflicts,
        "undecodable": report.undecodable,
        "log_complete": report.log_complete,
        "rows": [
            {
                "tenant_id": r.tenant_id,
                "sku": r.sku,
                "unit": r.unit,
                "log_pulses": r.log_pulses,
                "log_quantity": plain(r.log_quantity),
                "ledger_pulses": r.ledger_pulses,
                "ledger_quantity": plain(r.ledger_quantity),
                "hourly_quantity": plain(r.hourly_quantity),
                "invoiced_quantity": plain(r.invoiced_quantity),
            }
            for r in report.rows
        ],
        "mismatches": [
            {"tenant_id": m.tenant_id, "sku": m.sku, "stage": m.stage, "detail": m.detail}
            for m in report.mismatches
        ],
    }


def _bucket_json(b: BucketChange) -> dict[str, object]:
    return {
        "tenant_id": b.tenant_id,
        "hour": b.hour.isoformat(),
        "sku": b.sku,
        "unit": b.unit,
        "before": None if b.before is None else plain(b.before),
        "after": None if b.after is None else plain(b.after),
    }


def rebuild_lines(report: RebuildReport, limit: int = 50) -> list[str]:
    lines = [
        f"re-derived {report.hours} tenant-hour(s) of {report.tenants} tenant(s) from the ledger",
        f"buckets that differed from what was stored: {len(report.buckets)}",
    ]
    for b in report.buckets[:limit]:
        lines.append(
            f"  {b.tenant_id} {b.hour:%Y-%m-%d %H:00} {b.sku} [{b.unit}]: "
            f"{_amount(b.before)} -> {_amount(b.after)}"
        )
    if len(report.buckets) > limit:
        lines.append(f"  … and {len(report.buckets) - limit} more (--json lists all)")
    return lines


def rebuild_json(report: RebuildReport) -> dict[str, object]:
    return {
        "hours": report.hours,
        "tenants": report.tenants,
        "buckets": [_bucket_json(b) for b in report.buckets],
    }


def dead_letter_lines(letters: Sequence[DeadLetter]) -> list[str]:
    """One line each; the first bytes are escaped, so a hostile record cannot drive the terminal."""
    return [
        f"{d.record.position}  {d.record.arrival.isoformat(timespec='milliseconds')}  "
        f"{d.reason}: {d.detail.encode('unicode_escape').decode('ascii')}  "
        f"key={d.record.key[:64]!r} value={d.record.value[:48]!r}"
        for d in letters
    ]
