"""The FastAPI read API: usage, pulses and conflicts of a tenant (app factory, no globals)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from catalog.invoice import canonical_json
from kernel.decimals import plain
from kernel.errors import Invalid
from ledger.model import LedgerEvent
from ledger.ports import LedgerStore
from projections.invoices import Invoicing
from projections.ports import UsageStore
from query.schemas import ConflictResponse, PulseResponse, UsageResponse, UsageRow


def _ledger(request: Request) -> LedgerStore:
    store: LedgerStore = request.app.state.ledger
    return store


def _usage(request: Request) -> UsageStore:
    store: UsageStore = request.app.state.usage
    return store


Ledger = Annotated[LedgerStore, Depends(_ledger)]
Usage = Annotated[UsageStore, Depends(_usage)]


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


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


def _invoicing(request: Request) -> Invoicing:
    invoicing: Invoicing | None = request.app.state.invoicing
    if invoicing is None:
        raise HTTPException(503, "invoices are not configured on this API instance")
    return invoicing


Invoices = Annotated[Invoicing, Depends(_invoicing)]

# The process's health report: {"live": bool, "ready": bool, "roles": {name: {...}}}.
HealthReport = Callable[[], dict[str, Any]]


def _health(request: Request) -> dict[str, Any]:
    report: HealthReport | None = request.app.state.health
    return {"live": True, "ready": True, "roles": {}} if report is None else report()


Health = Annotated[dict[str, Any], Depends(_health)]


def create_app(
    ledger: LedgerStore,
    usage: UsageStore,
    invoicing: Invoicing | None = None,
    health: HealthReport | None = None,
) -> FastAPI:
    app = FastAPI(title="pulse-ledger read API", version="1")
    app.state.ledger = ledger
    app.state.usage = usage
    app.state.invoicing = invoicing
    app.state.health = health

    @app.get("/health/live")
    def health_live(report: Health) -> JSONResponse:
        """200 unless a role of this process is dead (the process is then ending)."""
        return JSONResponse(report, status_code=200 if report["live"] else 503)

    @app.get("/health/ready")
    def health_ready(report: Health) -> JSONResponse:
        """200 when every role of this process is ready; 503 if one is starting, restarting,
        dead or stuck (no loop iteration for longer than the threshold). JSON per role."""
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @app.get("/v1/tenants/{tenant_id}/invoices/{period}/draft")
    def invoice_draft(tenant_id: str, period: str, invoices: Invoices) -> dict[str, Any]:
        """The live draft: hourly usage priced with the terms in force now (exact strings)."""
        try:
            draft = invoices.draft(tenant_id, period)
        except Invalid as exc:
            raise HTTPException(422, str(exc)) from None
        document: dict[str, Any] = json.loads(canonical_json(draft))
        return document

    @app.get("/v1/tenants/{tenant_id}/invoices/{period}")
    def invoice_final(tenant_id: str, period: str, invoices: Invoices) -> dict[str, Any]:
        """The finalized invoice with its SHA-256 and any correction notes since."""
        invoice = invoices.finalized(tenant_id, period)
        if invoice is None:
            raise HTTPException(404, f"no finalized invoice of {tenant_id!r} for {period!r}")
        return {
            "invoice": json.loads(invoice.document),
            "sha256": invoice.sha256,
            "pins": invoice.pins,
            "corrections": [
                {k: v for k, v in c.items() if k != "document"} for c in invoice.corrections
            ],
        }

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/tenants/{tenant_id}/usage", response_model=UsageResponse)
    def tenant_usage(
        tenant_id: str,
        store: Usage,
        start: Annotated[datetime, Query(description="inclusive, UTC")],
        end: Annotated[datetime, Query(description="exclusive, UTC")],
        sku: str | None = None,
    ) -> UsageResponse:
        begin, stop = _utc(start, "start"), _utc(end, "end")
        if stop <= begin:
            raise HTTPException(422, "end: must be after start")
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

    @app.get("/v1/tenants/{tenant_id}/pulses/{pulse_id}", response_model=PulseResponse)
    def one_pulse(tenant_id: str, pulse_id: str, store: Ledger) -> PulseResponse:
        event = store.get(tenant_id, pulse_id)
        if event is None:
            raise HTTPException(404, f"pulse {pulse_id!r} of tenant {tenant_id!r} not found")
        return _pulse(event)

    @app.get("/v1/tenants/{tenant_id}/conflicts", response_model=list[ConflictResponse])
    def conflicts(tenant_id: str, store: Ledger) -> list[ConflictResponse]:
        return [
            ConflictResponse(
                pulse_id=c.event.pulse.pulse_id,
                ledger_position=str(c.event.position),
                payload_hash=c.event.payload_hash,
                existing_hash=c.existing_hash,
                used_amount=plain(c.event.pulse.used_amount),
                occurred_at=c.event.pulse.occurred_at.isoformat(),
            )
            for c in store.conflicts(tenant_id)
        ]

    return app
