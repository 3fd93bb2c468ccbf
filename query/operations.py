"""Operator routes of the read API (operator keys only): reconciliation, dead letters, tenants
with usage and conflicts across tenants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from access.keys import Role
from access.verifier import KeyVerifier
from kernel.decimals import plain
from kernel.errors import Forbidden, Unavailable
from ledger.model import to_micros
from ledger.ports import DeadLetter, LedgerStore, PulseLog, TenantConflictKey
from projections.invoice_lists import period_bounds
from projections.reconcile import Reconciliation
from query.paging import Cursor, Limit, decode, encode, scope_of
from query.schemas import (
    DeadLetterPage,
    DeadLetterResponse,
    TenantConflict,
    TenantConflictPage,
    TenantPage,
)

DLQ_SCAN = 100_000


@dataclass(frozen=True)
class OperatorTools:
    """What the operator routes need; absent on an API instance that does not offer them."""

    reconciliation: Reconciliation
    log: PulseLog


def _check_operator(request: Request) -> None:
    verifier: KeyVerifier | None = request.app.state.auth
    if verifier is not None:  # None: development mode
        caller = verifier.verify(request.headers.get("authorization"))
        if caller.role is not Role.OPERATOR:
            raise Forbidden("this route needs an operator key")


def _operator(request: Request) -> OperatorTools:
    _check_operator(request)
    tools: OperatorTools | None = request.app.state.operator_tools
    if tools is None:
        raise Unavailable("operator routes are not configured on this API instance")
    return tools


def _operator_ledger(request: Request) -> LedgerStore:
    """The ledger, for an operator key (every API instance has one)."""
    _check_operator(request)
    store: LedgerStore = request.app.state.ledger
    return store


Operator = Annotated[OperatorTools, Depends(_operator)]
OperatorLedger = Annotated[LedgerStore, Depends(_operator_ledger)]
PeriodQuery = Annotated[str, Query(description="billing month YYYY-MM (UTC)", examples=["2026-10"])]
router = APIRouter(prefix="/v1/operator", tags=["operator"])


@router.get("/reconcile")
def reconcile(
    tools: Operator,
    period: Annotated[str, Query(description="billing month YYYY-MM (UTC)")],
    tenant: str | None = None,
) -> dict[str, Any]:
    """Log = ledger (+ conflicts, dead letters) = hourly usage = invoiced quantity, per tenant
    and SKU; `clean` is false and `mismatches` say where to look when a stage disagrees."""
    report = tools.reconciliation.run(period, tenant)
    return {
        "period": report.period,
        "clean": report.clean,
        "log_complete": report.log_complete,
        "counts": {
            "log_records": report.log_records,
            "duplicates": report.duplicates,
            "conflicts": report.conflicts,
            "undecodable": report.undecodable,
        },
        "rows": [
            {
                "tenant_id": r.tenant_id,
                "sku": r.sku,
                "unit": r.unit,
                "log": plain(r.log_quantity),
                "ledger": plain(r.ledger_quantity),
                "hourly": plain(r.hourly_quantity),
                "invoiced": plain(r.invoiced_quantity),
                "log_pulses": r.log_pulses,
                "ledger_pulses": r.ledger_pulses,
            }
            for r in report.rows
        ],
        "mismatches": [
            {"tenant_id": m.tenant_id, "sku": m.sku, "stage": m.stage, "detail": m.detail}
            for m in report.mismatches
        ],
    }


def _letter_key(letter: DeadLetter) -> list[str | int]:
    r = letter.record
    return [to_micros(r.arrival), r.position.partition, r.position.offset, letter.reason]


@router.get("/dead-letters", response_model=DeadLetterPage)
def dead_letters(
    tools: Operator,
    reason: Annotated[
        str | None,
        Query(max_length=256, description="only this reason", examples=["conflict"]),
    ] = None,
    tenant: Annotated[
        str | None, Query(max_length=256, description="only records keyed by this tenant")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> DeadLetterPage:
    """Dead-lettered records ordered by (arrival, origin position, reason): origin position,
    arrival, reason, detail. Reads at most the first 100,000 records of the dead-letter log
    per page; a record dead-lettered meanwhile with an earlier arrival than the cursor is
    listed on a later pass, never twice."""
    scope = scope_of(reason, tenant)
    after = decode(cursor, "dead-letters", (int, int, int, str), scope)
    key = tenant.encode() if tenant is not None else None
    found = sorted(
        (
            d
            for d in tools.log.dead_letters(DLQ_SCAN)
            if (reason is None or d.reason == reason) and (key is None or d.record.key == key)
        ),
        key=_letter_key,
    )
    if after is not None:
        found = [d for d in found if _letter_key(d) > list(after)]
    page = found[:limit]
    items = [
        DeadLetterResponse(
            position=str(d.record.position),
            arrival=d.record.arrival.isoformat(),
            reason=d.reason,
            detail=d.detail,
            key=d.record.key.decode("utf-8", "replace"),
            value_head=d.record.value[:48].hex(),
        )
        for d in page
    ]
    more = len(found) > limit
    next_cursor = encode("dead-letters", _letter_key(page[-1]), scope) if more else None
    return DeadLetterPage(items=items, next_cursor=next_cursor)


@router.get("/tenants", response_model=TenantPage)
def tenants_with_usage(
    ledger: OperatorLedger, period: PeriodQuery, limit: Limit = 100, cursor: Cursor = None
) -> TenantPage:
    """Tenants with at least one pulse whose event time is in the period (from the ledger's
    hour listing), in tenant-id order."""
    start, end = period_bounds(period)
    scope = scope_of(period)
    after = decode(cursor, "tenants", (str,), scope)
    found = ledger.tenants_between(
        start, end, limit=limit + 1, after=None if after is None else after[0]
    )
    page = found[:limit]
    more = len(found) > limit
    return TenantPage(
        period=period,
        items=page,
        next_cursor=encode("tenants", [page[-1]], scope) if more else None,
    )


@router.get("/conflicts", response_model=TenantConflictPage)
def conflicts_of_every_tenant(
    ledger: OperatorLedger, limit: Limit = 100, cursor: Cursor = None
) -> TenantConflictPage:
    """Conflicts (pulse ids reused with another payload) of every tenant, ordered by tenant
    id, pulse id and log position."""
    after: TenantConflictKey | None = decode(cursor, "all-conflicts", (str, str, int, int))
    found = ledger.all_conflicts(limit=limit + 1, after=after)
    page = found[:limit]
    items = [
        TenantConflict(
            tenant_id=c.event.pulse.tenant_id,
            pulse_id=c.event.pulse.pulse_id,
            ledger_position=str(c.event.position),
            payload_hash=c.event.payload_hash,
            existing_hash=c.existing_hash,
            used_amount=plain(c.event.pulse.used_amount),
            occurred_at=c.event.pulse.occurred_at.isoformat(),
        )
        for c in page
    ]
    next_cursor = None
    if len(found) > limit:
        e = page[-1].event
        key: list[str | int] = [
            e.pulse.tenant_id,
            e.pulse.pulse_id,
            e.position.partition,
            e.position.offset,
        ]
        next_cursor = encode("all-conflicts", key)
    return TenantConflictPage(items=items, next_cursor=next_cursor)
