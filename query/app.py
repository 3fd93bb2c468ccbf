"""The FastAPI read API: usage, pulses, conflicts and invoices of a tenant (an app factory)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from access.keys import Role
from access.verifier import KeyVerifier
from kernel.decimals import plain
from kernel.errors import Forbidden, Invalid, NotFound, Unavailable
from ledger.model import LedgerEvent
from ledger.ports import ConflictKey, LedgerStore
from projections.hourly import BillingUnitOf
from projections.invoices import Invoicing
from projections.ports import UsageStore
from query.errors import ERROR_RESPONSES, document_problems, register_error_handlers
from query.operations import OperatorTools
from query.operations import router as operator_router
from query.paging import DEFAULT_PAGE, Cursor, Limit, decode, encode, scope_of
from query.schemas import (
    ConflictPage,
    ConflictResponse,
    PulseResponse,
)
from query.ui import router as ui_router


def _ledger(request: Request) -> LedgerStore:
    store: LedgerStore = request.app.state.ledger
    return store


def _usage(request: Request) -> UsageStore:
    store: UsageStore = request.app.state.usage
    return store


# The ingest rule for tenant ids (ledger/validation.py): anything else cannot have data.
TenantId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]


# Documents the scheme in the OpenAPI schema; the check itself reads the raw header, so that a
# missing, non-Bearer or malformed value each get their own 401 message.
_bearer = HTTPBearer(
    auto_error=False, description="an API key from `pulse keys create`: Bearer pl_<id>_<secret>"
)


def _readable_tenant(
    tenant_id: TenantId,
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> str:
    """The path's tenant, when the caller's key may read it (DESIGN invariant 13).

    401 without a valid key; a tenant key asking for another tenant gets the same 404 as for
    a tenant that does not exist, so tenant ids cannot be probed; operators read every tenant.
    """
    verifier: KeyVerifier | None = request.app.state.auth
    if verifier is None:  # development mode
        return tenant_id
    caller = verifier.verify(request.headers.get("authorization"))
    if caller.role is Role.PRODUCER:
        raise Forbidden("a producer key may only ingest; read with a tenant or operator key")
    if not caller.may_read(tenant_id):
        raise NotFound(f"tenant {tenant_id!r} not found")
    return tenant_id


ReadableTenant = Annotated[str, Depends(_readable_tenant)]
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

# The process's health report: {"live": bool, "ready": bool, "roles": {name: {...}}}.
HealthReport = Callable[[], dict[str, Any]]


def _health(request: Request) -> dict[str, Any]:
    report: HealthReport | None = request.app.state.health
    return {"live": True, "ready": True, "roles": {}} if report is None else report()


Health = Annotated[dict[str, Any], Depends(_health)]


def _query_names(dependant: Any) -> set[str]:
    """Query parameter names a route (its dependencies included) declares."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _known_query_only(request: Request) -> None:
    """422 for a query parameter the route does not take: a misspelt filter (`skus=`,
    `grup_by=`) would otherwise be ignored and the answer would cover everything."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:  # not an API route (the tenant page's static files)
        return
    declared = _query_names(dependant)
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        takes = ", ".join(sorted(declared)) or "no query parameters"
        raise Invalid(f"{unknown[0]}: not a query parameter of this route (it takes {takes})")


def create_app(
    ledger: LedgerStore,
    usage: UsageStore,
    invoicing: Invoicing | None = None,
    *,
    auth: KeyVerifier | None,
    billing_unit_of: BillingUnitOf | None = None,
    operator_tools: OperatorTools | None = None,
    health: HealthReport | None = None,
) -> FastAPI:
    """The read API; `auth` None is development mode (no key asked; the caller says so)."""
    app = FastAPI(
        title="pulse-ledger read API",
        version="1",
        responses=ERROR_RESPONSES,
        dependencies=[Depends(_known_query_only)],
    )
    register_error_handlers(app)
    document_problems(app)
    app.state.ledger = ledger
    app.state.usage = usage
    app.state.invoicing = invoicing
    app.state.auth = auth
    app.state.billing_unit_of = billing_unit_of
    app.state.operator_tools = operator_tools
    app.include_router(operator_router)
    app.include_router(ui_router)
    # Imported here: these routes use this module's key, ledger and invoicing dependencies.
    from query.exports import router as exports_router
    from query.invoices import router as invoices_router
    from query.pulses import router as pulses_router

    app.include_router(exports_router)
    app.include_router(invoices_router)
    app.include_router(pulses_router)
    app.state.health = health

    # The usage route (query/usage.py) uses this module's key and store dependencies too.
    from query.usage import router as usage_router

    app.include_router(usage_router)

    @app.get("/health/live")
    def health_live(report: Health) -> JSONResponse:
        """200 unless a role of this process is dead (the process is then ending)."""
        return JSONResponse(report, status_code=200 if report["live"] else 503)

    @app.get("/health/ready")
    def health_ready(report: Health) -> JSONResponse:
        """200 when every role of this process is ready; 503 if one is starting, restarting,
        dead or stuck (no loop iteration for longer than the threshold). JSON per role."""
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # `:path`: a pulse id may hold "/" (any printable text is a valid id) and must read back.
    @app.get("/v1/tenants/{tenant_id}/pulses/{pulse_id:path}", response_model=PulseResponse)
    def one_pulse(tenant_id: ReadableTenant, pulse_id: str, store: Ledger) -> PulseResponse:
        """One pulse by id in the path (percent-encode it; ids with "." or ".." segments are
        rewritten by HTTP clients: use /pulse?pulse_id= for those)."""
        return _one_pulse(store, tenant_id, pulse_id)

    @app.get("/v1/tenants/{tenant_id}/pulse", response_model=PulseResponse)
    def pulse_by_query(
        tenant_id: ReadableTenant,
        store: Ledger,
        pulse_id: Annotated[str, Query(min_length=1, max_length=512)],
    ) -> PulseResponse:
        """One pulse by id as a query parameter: reads back every id that can be stored."""
        return _one_pulse(store, tenant_id, pulse_id)

    @app.get("/v1/tenants/{tenant_id}/conflicts", response_model=ConflictPage)
    def conflicts(
        tenant_id: ReadableTenant,
        store: Ledger,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
    ) -> ConflictPage:
        """Conflicts in pulse-id order, a page at a time (follow next_cursor)."""
        after: ConflictKey | None = decode(
            cursor, "conflicts", (str, int, int), scope_of(tenant_id)
        )
        found = store.conflicts(tenant_id, after=after, limit=limit + 1)
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
            key: list[str | int] = [
                last.pulse.pulse_id,
                last.position.partition,
                last.position.offset,
            ]
            next_cursor = encode("conflicts", key, scope_of(tenant_id))
        return ConflictPage(items=items, next_cursor=next_cursor)

    return app
