"""Invoice routes of the read API: a tenant's invoice list, drafts, finalized invoices (with
caching headers) and the lineage of a line, a page at a time."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import JSONResponse

from catalog.invoice import canonical_json
from kernel.decimals import plain
from kernel.errors import NotFound
from ledger.model import to_micros
from query.app import Invoices, ReadableTenant
from query.paging import Cursor, Limit, decode, encode, moment, scope_of
from query.schemas import (
    InvoicePage,
    InvoiceSummary,
    LineageHour,
    LineagePage,
    LineagePulse,
)

router = APIRouter(tags=["invoices"])

MAX_INVOICES = 100  # a page of drafts is priced on the spot

Period = Annotated[str, Path(description="billing month YYYY-MM (UTC)", examples=["2026-10"])]
LineSku = Annotated[str, Path(description="the SKU of the invoice line", examples=["compute.vcpu"])]


@router.get("/v1/tenants/{tenant_id}/invoices", response_model=InvoicePage)
def invoice_list(
    tenant_id: ReadableTenant,
    invoices: Invoices,
    response: Response,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_INVOICES,
            description=f"invoices per page, 1 to {MAX_INVOICES}",
            examples=[12],
        ),
    ] = 24,
    cursor: Cursor = None,
) -> InvoicePage:
    """The tenant's invoices, newest period first: every finalized invoice, and a **draft**
    for every month in which the ledger holds usage of the tenant but nothing is finalized
    yet (the running month included). A draft's total is priced when the page is asked for,
    from the daily roll-up of hourly usage and the terms in force now; `limit` (at most
    100) bounds that work. Draft totals change with every pulse: `Cache-Control: no-store`."""
    response.headers["Cache-Control"] = "no-store"
    after = decode(cursor, "invoices", (str,), scope_of(tenant_id))
    before = None if after is None else after[0]
    page, more = invoices.summaries(tenant_id, limit=limit, before=before)
    items = [
        InvoiceSummary(
            period=s.period,
            status=s.status,
            total=plain(s.total),
            currency=s.currency,
            notes=s.notes,
            sha256=s.sha256,
        )
        for s in page
    ]
    return InvoicePage(
        tenant_id=tenant_id,
        items=items,
        next_cursor=encode("invoices", [page[-1].period], scope_of(tenant_id)) if more else None,
    )


@router.get("/v1/tenants/{tenant_id}/invoices/{period}/draft")
def invoice_draft(
    tenant_id: ReadableTenant, period: Period, invoices: Invoices, response: Response
) -> dict[str, Any]:
    """The live draft: hourly usage priced with the terms in force now (exact strings). It
    changes with every pulse, so it is sent with `Cache-Control: no-store` and no ETag."""
    draft = invoices.draft(tenant_id, period)
    response.headers["Cache-Control"] = "no-store"
    document: dict[str, Any] = json.loads(canonical_json(draft))
    return document


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*`, or a list of entity tags compared weakly."""
    if if_none_match is None:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag in (t.removeprefix("W/") for t in tags)


_FINALIZED_EXAMPLE = {
    "invoice": {"tenant_id": "acme", "period": "2026-10", "currency": "BRL", "total": "4.5"},
    "sha256": "3b1f…",
    "pins": {"positions": {"0": 7}, "products": {"compute.vcpu": 3}, "contract": None},
    "corrections": [],
}


@router.get(
    "/v1/tenants/{tenant_id}/invoices/{period}",
    response_model=None,
    responses={
        200: {
            "description": "the invoice, its SHA-256, pins and correction notes; `ETag` header",
            "content": {"application/json": {"example": _FINALIZED_EXAMPLE}},
        },
        304: {"description": "If-None-Match matched the current ETag: nothing changed"},
    },
)
def invoice_final(
    tenant_id: ReadableTenant,
    period: Period,
    invoices: Invoices,
    if_none_match: Annotated[
        str | None,
        Header(description='an ETag from an earlier answer, e.g. "3b1f…"'),
    ] = None,
) -> Response:
    """The finalized invoice with its lines (tiers, allowance, discounts), its SHA-256 and
    every correction note since.

    `ETag` is the quoted SHA-256 of the newest document: the invoice's own until a correction
    note is recorded, then that note's (the revised invoice's). The invoice never changes,
    but a note adds to this answer, so it is `Cache-Control: private, no-cache`: cache it and
    revalidate with `If-None-Match`, answered 304 while nothing was added."""
    invoice = invoices.finalized(tenant_id, period)
    if invoice is None:
        raise NotFound(f"no finalized invoice of {tenant_id!r} for {period!r}")
    notes = invoice.notes()
    etag = f'"{notes[-1].sha256 if notes else invoice.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    body = {
        "invoice": json.loads(invoice.document),
        "sha256": invoice.sha256,
        "pins": invoice.pins,
        "corrections": [note.summary() for note in notes],
    }
    return JSONResponse(body, headers=headers)


@router.get(
    "/v1/tenants/{tenant_id}/invoices/{period}/lines/{sku}/lineage", response_model=LineagePage
)
def line_lineage(
    tenant_id: ReadableTenant,
    period: Period,
    sku: LineSku,
    invoices: Invoices,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> LineagePage:
    """A line's hourly buckets -> pulse ids -> Kafka (partition, offset) and arrival time,
    read from the ledger (as `pulse invoice explain`), a page at a time in (hour, pulse id)
    order; 404 when the SKU has no usage in the period."""
    scope = scope_of(tenant_id, period, sku)
    after = decode(cursor, "lineage", (int, str), scope)
    key = None if after is None else (moment(after[0]), after[1])
    found = invoices.lineage(tenant_id, period, sku, limit=limit + 1, after=key)
    page = found[:limit]
    hours: dict[str, list[LineagePulse]] = {}
    for row in page:
        hours.setdefault(row.hour.isoformat(), []).append(
            LineagePulse(
                pulse_id=row.pulse_id,
                quantity=row.quantity,
                unit=row.unit,
                ledger_position=row.position,
                arrival=row.arrival.isoformat(),
            )
        )
    next_cursor = None
    if len(found) > limit:
        last = page[-1]
        next_cursor = encode("lineage", [to_micros(last.hour), last.pulse_id], scope)
    return LineagePage(
        tenant_id=tenant_id,
        period=period,
        sku=sku,
        hours=[LineageHour(hour=h, pulses=p) for h, p in hours.items()],
        next_cursor=next_cursor,
    )
