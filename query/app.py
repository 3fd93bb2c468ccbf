"""The FastAPI read API: usage, pulses, conflicts and invoices of a tenant (an app factory)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request

from catalog.invoice import canonical_json
from kernel.decimals import plain
from kernel.errors import Invalid, NotFound, Unavailable
from ledger.model import LedgerEvent
from ledger.ports import ConflictKey, LedgerStore
from projections.invoices import Invoicing
from projections.ports import UsageStore
from query.errors import ERROR_RESPONSES, document_problems, register_error_handlers
from query.schemas import ConflictPage, ConflictResponse, PulseResponse, UsageResponse, UsageRow

DEFAULT_PAGE, MAX_PAGE = 100, 1000


def _ledger(request: Request) -> LedgerStore:
    store: LedgerStore = request.app.state.ledger
    return store


def _usage(request: Request) -> UsageStore:
    store: UsageStore = request.app.state.usage
    return store


# The ingest rule for tenant ids (ledger/validation.py): anything else cannot have data.
TenantId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]
Ledger = Annotated[LedgerStore, Depends(_ledger)]
Usage = Annotated[UsageStore, Depends(_usage)]


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise Invalid(
            f"{name}: {value.isoformat()} is outside the representable range once in UTC"
        ) from None


def _cursor(key: ConflictKey) -> str:
    """An opaque page cursor (clients pass it back unchanged)."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _after(cursor: str | None) -> ConflictKey | None:
    if cursor is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        pulse_id, partition, offset = decoded
        if isinstance(pulse_id, str) and type(partition) is int and type(offset) is int:
            return pulse_id, partition, offset
    except (ValueError, TypeError, binascii.Error):
        pass
    raise Invalid("cursor: not a cursor this API returned (pass next_cursor back unchanged)")


def _pulse(event: LedgerEvent) -> PulseResponse:
    p = event.pulse
    return PulseResponse(
        tenant_id=p.tenant_id,
        pulse_id=p.pulse_id,
        product_sku=p.product_sku,
        used_amount=plain(p.used_amount),
        use_unit=p.use_unit,
        occurred_at=p.occurred_at.isoformat(),
        arrival=event.arrival.isoformat(),
        ledger_position=str(event.position),
        payload_hash=event.payload_hash,
    )


def _one_pulse(store: LedgerStore, tenant_id: str, pulse_id: str) -> PulseResponse:
    event = store.get(tenant_id, pulse_id)
    if event is None:
        raise NotFound(f"pulse {pulse_id!r} of tenant {tenant_id!r} not found")
    return _pulse(event)


def _invoicing(request: Request) -> Invoicing:
    invoicing: Invoicing | None = request.app.state.invoicing
    if invoicing is None:
        raise Unavailable("invoices are not configured on this API instance")
    return invoicing


Invoices = Annotated[Invoicing, Depends(_invoicing)]


def create_app(
    ledger: LedgerStore, usage: UsageStore, invoicing: Invoicing | None = None
) -> FastAPI:
    app = FastAPI(title="pulse-ledger read API", version="1", responses=ERROR_RESPONSES)
    register_error_handlers(app)
    document_problems(app)
    app.state.ledger = ledger
    app.state.usage = usage
    app.state.invoicing = invoicing

    @app.get("/v1/tenants/{tenant_id}/invoices/{period}/draft")
    def invoice_draft(tenant_id: TenantId, period: str, invoices: Invoices) -> dict[str, Any]:
        """The live draft: hourly usage priced with the terms in force now (exact strings)."""
        draft = invoices.draft(tenant_id, period)
        document: dict[str, Any] = json.loads(canonical_json(draft))
        return document

    @app.get("/v1/tenants/{tenant_id}/invoices/{period}")
    def invoice_final(tenant_id: TenantId, period: str, invoices: Invoices) -> dict[str, Any]:
        """The finalized invoice with its SHA-256 and any correction notes since."""
        invoice = invoices.finalized(tenant_id, period)
        if invoice is None:
            raise NotFound(f"no finalized invoice of {tenant_id!r} for {period!r}")
        return {
            "invoice": json.loads(invoice.document),
            "sha256": invoice.sha256,
            "pins": invoice.pins,
            "corrections": [note.summary() for note in invoice.notes()],
        }

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/tenants/{tenant_id}/usage", response_model=UsageResponse)
    def tenant_usage(
        tenant_id: TenantId,
        store: Usage,
        start: Annotated[datetime, Query(description="inclusive, UTC")],
        end: Annotated[datetime, Query(description="exclusive, UTC")],
        sku: str | None = None,
    ) -> UsageResponse:
        begin, stop = _utc(start, "start"), _utc(end, "end")
        if stop <= begin:
            raise Invalid("end: must be after start")
        rows = store.usage(tenant_id, begin, stop, sku)
        return UsageResponse(
            tenant_id=tenant_id,
            start=begin.isoformat(),
            end=stop.isoformat(),
            rows=[
                UsageRow(
                    hour=r.hour.isoformat(),
                    product_sku=r.product_sku,
                    unit=r.unit,
                    quantity=plain(r.quantity),
                    pulse_count=r.pulse_count,
                    priced=r.priced,
                    unpriced_reason=r.unpriced_reason,
                    ledger_position=str(r.position),
                )
                for r in rows
            ],
        )

    # `:path`: a pulse id may hold "/" (any printable text is a valid id) and must read back.
    @app.get("/v1/tenants/{tenant_id}/pulses/{pulse_id:path}", response_model=PulseResponse)
    def one_pulse(tenant_id: TenantId, pulse_id: str, store: Ledger) -> PulseResponse:
        """One pulse by id in the path (percent-encode it; ids with "." or ".." segments are
        rewritten by HTTP clients: use /pulse?pulse_id= for those)."""
        return _one_pulse(store, tenant_id, pulse_id)

    @app.get("/v1/tenants/{tenant_id}/pulse", response_model=PulseResponse)
    def pulse_by_query(
        tenant_id: TenantId,
        store: Ledger,
        pulse_id: Annotated[str, Query(min_length=1, max_length=512)],
    ) -> PulseResponse:
        """One pulse by id as a query parameter: reads back every id that can be stored."""
        return _one_pulse(store, tenant_id, pulse_id)

    @app.get("/v1/tenants/{tenant_id}/conflicts", response_model=ConflictPage)
    def conflicts(
        tenant_id: TenantId,
        store: Ledger,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> ConflictPage:
        """Conflicts in pulse-id order, a page at a time (follow next_cursor)."""
        found = store.conflicts(tenant_id, after=_after(cursor), limit=limit + 1)
        page, more = found[:limit], len(found) > limit
        last = page[-1].event if page else None
        items = [
            ConflictResponse(
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
        if more and last is not None:
            next_cursor = _cursor(
                (last.pulse.pulse_id, last.position.partition, last.position.offset)
            )
        return ConflictPage(items=items, next_cursor=next_cursor)

    return app
