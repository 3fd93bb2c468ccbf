"""Operator routes of the read API: reconciliation and dead letters (operator keys only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from access.keys import Role
from access.verifier import KeyVerifier
from kernel.decimals import plain
from kernel.errors import Forbidden, Unavailable
from ledger.ports import PulseLog
from projections.reconcile import Reconciliation

DLQ_SCAN = 100_000


@dataclass(frozen=True)
class OperatorTools:
    """What the operator routes need; absent on an API instance that does not offer them."""

    reconciliation: Reconciliation
    log: PulseLog


def _operator(request: Request) -> OperatorTools:
    verifier: KeyVerifier | None = request.app.state.auth
    if verifier is not None:  # None: development mode
        caller = verifier.verify(request.headers.get("authorization"))
        if caller.role is not Role.OPERATOR:
            raise Forbidden("this route needs an operator key")
    tools: OperatorTools | None = request.app.state.operator_tools
    if tools is None:
        raise Unavailable("operator routes are not configured on this API instance")
    return tools


Operator = Annotated[OperatorTools, Depends(_operator)]
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


@router.get("/dead-letters")
def dead_letters(
    tools: Operator,
    reason: str | None = None,
    tenant: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Dead-lettered records, oldest first: origin position, arrival, reason, detail."""
    key = tenant.encode() if tenant is not None else None
    found = [
        d
        for d in tools.log.dead_letters(DLQ_SCAN)
        if (reason is None or d.reason == reason) and (key is None or d.record.key == key)
    ]
    return [
        {
            "position": str(d.record.position),
            "arrival": d.record.arrival.isoformat(),
            "reason": d.reason,
            "detail": d.detail,
            "key": d.record.key.decode("utf-8", "replace"),
            "value_head": d.record.value[:48].hex(),
        }
        for d in found[:limit]
    ]
