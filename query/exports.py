"""Export routes of the read API: a tenant's month as FinOps FOCUS 1.0 CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from catalog.focus import FOCUS_VERSION, to_csv
from projections.focus import focus_rows
from query.app import Invoices, ReadableTenant

router = APIRouter()


@router.get(
    "/v1/tenants/{tenant_id}/exports/focus",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "FOCUS 1.0 rows"}},
)
def focus_export(
    tenant_id: ReadableTenant,
    invoices: Invoices,
    period: Annotated[str, Query(description="billing month YYYY-MM (UTC)")],
) -> Response:
    """The month's cost rows in FinOps FOCUS 1.0 columns: the finalized invoice and its
    correction notes once finalized, else the live draft; Σ BilledCost = invoice total."""
    text = to_csv(focus_rows(invoices, tenant_id, period))
    return Response(
        text,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="focus-{tenant_id}-{period}.csv"',
            "X-FOCUS-Version": FOCUS_VERSION,
        },
    )
