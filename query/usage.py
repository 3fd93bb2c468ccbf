"""The usage route of the read API: a tenant's usage by hour, day or month, grouped by SKU,
resource and region, as JSON or CSV (the same rows)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from kernel.decimals import plain
from kernel.errors import Unavailable
from projections.as_of import detail_as_of, parse_positions, usage_as_of
from projections.hourly import BillingUnitOf, HourlyUsage, UsageDetail
from projections.usage_report import (
    GRANULARITIES,
    GROUP_FIELDS,
    MAX_RANGE,
    UsageLine,
    UsageQuery,
    UsageReport,
    UsageTotal,
    fill_unattributed,
    summarize,
    usage_query,
)
from query.app import Ledger, ReadableTenant, Usage
from query.schemas import UsageFilters, UsageResponse, UsageRow
from query.schemas import UsageTotal as UsageTotalSchema

router = APIRouter()

CSV = "text/csv"
# JSON row fields in CSV column order; group columns the query does not group by are left out.
COLUMNS = list(UsageRow.model_fields)
_GROUP_COLUMN = {"sku": "product_sku", "resource_id": "resource_id", "region": "region"}

_RANGES = ", ".join(f"{g} {MAX_RANGE[g].days} days" for g in GRANULARITIES)
_CSV_EXAMPLE = (
    "period_start,period_end,product_sku,unit,quantity,pulse_count,priced,unpriced_reason,"
    "ledger_position\n"
    "2026-11-03T00:00:00+00:00,2026-11-04T00:00:00+00:00,storage.block,GB-hour,1536.25,48,"
    "true,,2:81233\n"
)


def _wants_csv(request: Request, output: str | None) -> bool:
    """format= decides; without it, an Accept header listing text/csv before JSON does."""
    if output is not None:
        return output == "csv"
    for part in request.headers.get("accept", "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media == CSV:
            return True
        if media in ("application/json", "application/*"):
            return False
    return False


def _unknown_group(line: UsageLine, group_by: Sequence[str]) -> bool:
    """A region or resource the query groups by but the row cannot name (JSON null)."""
    return ("region" in group_by and line.region is None) or (
        "resource_id" in group_by and line.resource_id is None
    )


def _row(line: UsageLine, group_by: Sequence[str]) -> UsageRow:
    return UsageRow(
        period_start=line.period_start.isoformat(),
        period_end=line.period_end.isoformat(),
        product_sku=line.product_sku,
        resource_id=line.resource_id,
        region=line.region,
        unit=line.unit,
        quantity=plain(line.quantity),
        pulse_count=line.pulse_count,
        priced=line.priced,
        unpriced_reason=line.unpriced_reason,
        ledger_position=str(line.position),
        attributed=not _unknown_group(line, group_by),
    )


def _total(total: UsageTotal) -> UsageTotalSchema:
    return UsageTotalSchema(
        product_sku=total.product_sku,
        resource_id=total.resource_id,
        region=total.region,
        unit=total.unit,
        quantity=plain(total.quantity),
        pulse_count=total.pulse_count,
        priced=total.priced,
        unpriced_reason=total.unpriced_reason,
    )


def to_csv(report: UsageReport) -> str:
    """The report's rows as CSV: a header, then the JSON rows' values in the same order
    (booleans as true/false, as in JSON); only the grouped-by group columns."""
    grouped = {_GROUP_COLUMN[g] for g in report.query.group_by}
    columns = [c for c in COLUMNS if c not in _GROUP_COLUMN.values() or c in grouped]
    if not grouped & {"region", "resource_id"}:
        columns.remove("attributed")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for line in report.rows:
        values = _row(line, report.query.group_by).model_dump()
        values["priced"] = "true" if line.priced else "false"
        values["attributed"] = "true" if values["attributed"] else "false"
        writer.writerow(values)
    return out.getvalue()


def _rows(
    request: Request,
    ledger: Ledger,
    store: Usage,
    tenant_id: str,
    query: UsageQuery,
    as_of: str | None,
) -> tuple[Sequence[HourlyUsage | UsageDetail], list[datetime]]:
    """The rows that answer `query`, and the hours whose region and resource are unknown."""
    if as_of is None:
        hourly = store.usage(tenant_id, query.start, query.end, query.sku)
        if not query.needs_detail:
            return hourly, []
        detail = store.usage_detail(tenant_id, query.start, query.end, query.sku)
        return fill_unattributed(hourly, detail)
    pins = parse_positions(as_of)
    units: BillingUnitOf | None = request.app.state.billing_unit_of
    if units is None:
        raise Unavailable("as_of is not configured on this API instance")
    # Derived from the ledger here and now: SKU and detail rows cannot disagree.
    derive = detail_as_of if query.needs_detail else usage_as_of
    return derive(ledger, tenant_id, query.start, query.end, pins, units, query.sku), []


@router.get(
    "/v1/tenants/{tenant_id}/usage",
    response_model=UsageResponse,
    responses={
        200: {
            "description": "usage rows and totals as JSON, or the same rows as CSV",
            "content": {CSV: {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}},
        }
    },
)
def tenant_usage(
    tenant_id: ReadableTenant,
    store: Usage,
    ledger: Ledger,
    request: Request,
    start: Annotated[
        datetime,
        Query(
            description="inclusive; with a UTC offset (Z or ±HH:MM). Usage is kept per hour: "
            "the hours that start in [start, end) count",
            openapi_examples={"november": {"value": "2026-11-01T00:00:00Z"}},
        ),
    ],
    end: Annotated[
        datetime,
        Query(
            description=f"exclusive, after start; the range is at most {_RANGES} long",
            openapi_examples={"november": {"value": "2026-12-01T00:00:00Z"}},
        ),
    ],
    granularity: Annotated[
        Literal["hour", "day", "month"],
        Query(
            description="period of each row: hour, day or month (calendar, UTC)",
            openapi_examples={"day": {"value": "day"}},
        ),
    ] = "hour",
    group_by: Annotated[
        list[str] | None,
        Query(
            max_length=len(GROUP_FIELDS) * 4,
            description="any of sku, resource_id, region: repeat the parameter "
            "(group_by=sku&group_by=region) or separate with commas (group_by=sku,region); "
            "default sku",
            openapi_examples={"sku and region": {"value": ["sku", "region"]}},
        ),
    ] = None,
    sku: Annotated[str | None, Query(description="only this SKU")] = None,
    region: Annotated[
        str | None, Query(description='only this region ("" selects pulses without one)')
    ] = None,
    resource_id: Annotated[
        str | None, Query(description='only this resource ("" selects pulses without one)')
    ] = None,
    as_of: Annotated[
        str | None,
        Query(
            max_length=4096,
            description="only pulses at or below these log positions, derived from the "
            "ledger (an audit of a finalized invoice), e.g. 0:1500,1:980",
        ),
    ] = None,
    output: Annotated[
        Literal["json", "csv"] | None,
        Query(
            alias="format",
            description="json or csv; without it an Accept: text/csv header asks for CSV",
        ),
    ] = None,
) -> Any:
    """Usage of the tenant in [start, end): one row per period and group in one unit, totals
    per group and overall. Quantities are exact decimal strings; quantities of different
    units are never added; unpriced usage keeps its own unit and says why (`priced` false),
    it is never dropped. CSV holds the same rows as JSON's `rows`."""
    query = usage_query(
        start, end, granularity, group_by, sku=sku, region=region, resource_id=resource_id
    )
    found, unattributed = _rows(request, ledger, store, tenant_id, query, as_of)
    report = summarize(found, query)
    if _wants_csv(request, output):
        headers = {"X-Unattributed-Hours": str(len(unattributed))} if unattributed else None
        return Response(to_csv(report), media_type=CSV, headers=headers)
    return UsageResponse(
        tenant_id=tenant_id,
        start=query.start.isoformat(),
        end=query.end.isoformat(),
        granularity=query.granularity,
        group_by=list(query.group_by),
        filters=UsageFilters(sku=query.sku, region=query.region, resource_id=query.resource_id),
        as_of=as_of,
        rows=[_row(line, report.query.group_by) for line in report.rows],
        totals=[_total(t) for t in report.totals],
        overall=[_total(t) for t in report.overall],
        unattributed_hours=[h.isoformat() for h in unattributed],
    )
