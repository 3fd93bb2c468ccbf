"""Response schemas of the read API, separate from domain types (decimals travel as strings)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_ROW_EXAMPLE: dict[str, Any] = {
    "period_start": "2026-11-03T00:00:00+00:00",
    "period_end": "2026-11-04T00:00:00+00:00",
    "product_sku": "storage.block",
    "resource_id": None,
    "region": "br-se1",
    "unit": "GB-hour",
    "quantity": "1536.25",
    "pulse_count": 48,
    "priced": True,
    "unpriced_reason": "",
    "ledger_position": "2:81233",
}


class UsageRow(BaseModel):
    """Usage of one group in one period, in one unit (quantities of different units are never
    added). A group field is null when the query does not group by it, "" when the pulses did
    not give it."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [_ROW_EXAMPLE]})

    period_start: str = Field(description="start of the UTC hour, day or month (inclusive)")
    period_end: str = Field(description="end of that period (exclusive)")
    product_sku: str | None
    resource_id: str | None
    region: str | None
    unit: str = Field(
        description="the product's billing unit when priced; the pulses' own unit otherwise"
    )
    quantity: str = Field(description="exact decimal text")
    pulse_count: int
    priced: bool
    unpriced_reason: str = Field(description='why the usage has no price; "" when priced')
    ledger_position: str = Field(description="greatest PARTITION:OFFSET among the pulses")


class UsageTotal(BaseModel):
    """Usage of one group (or of everything, in `overall`) over the whole range, per unit."""

    model_config = ConfigDict(frozen=True)

    product_sku: str | None
    resource_id: str | None
    region: str | None
    unit: str
    quantity: str
    pulse_count: int
    priced: bool
    unpriced_reason: str


class UsageFilters(BaseModel):
    sku: str | None = None
    region: str | None = None
    resource_id: str | None = None


class UsageResponse(BaseModel):
    """Usage of a tenant in [start, end): rows per period and group, totals per group and
    overall (each per unit, priced apart from unpriced)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "start": "2026-11-01T00:00:00+00:00",
                    "end": "2026-12-01T00:00:00+00:00",
                    "granularity": "day",
                    "group_by": ["sku", "region"],
                    "filters": {"sku": None, "region": None, "resource_id": None},
                    "as_of": None,
                    "rows": [_ROW_EXAMPLE],
                    "totals": [
                        {
                            "product_sku": "storage.block",
                            "resource_id": None,
                            "region": "br-se1",
                            "unit": "GB-hour",
                            "quantity": "1536.25",
                            "pulse_count": 48,
                            "priced": True,
                            "unpriced_reason": "",
                        }
                    ],
                    "unattributed_hours": [],
                    "overall": [
                        {
                            "product_sku": None,
                            "resource_id": None,
                            "region": None,
                            "unit": "GB-hour",
                            "quantity": "1536.25",
                            "pulse_count": 48,
                            "priced": True,
                            "unpriced_reason": "",
                        }
                    ],
                }
            ]
        }
    )

    tenant_id: str
    start: str
    end: str
    granularity: str
    group_by: list[str]
    filters: UsageFilters
    as_of: str | None = Field(description="the log positions the usage was derived at, if any")
    rows: list[UsageRow]
    totals: list[UsageTotal]
    overall: list[UsageTotal]
    unattributed_hours: list[str] = Field(
        default_factory=list,
        description="hours whose usage could not be split by region and resource (projected "
        "before that split was kept: `pulse rebuild` fills them; or being re-projected at this "
        "moment): their rows have region and resource_id null even when grouped by them",
    )


class PulseResponse(BaseModel):
    tenant_id: str
    pulse_id: str
    product_sku: str
    used_amount: str
    use_unit: str
    occurred_at: str
    arrival: str
    ledger_position: str
    payload_hash: str


class ConflictResponse(BaseModel):
    pulse_id: str
    ledger_position: str
    payload_hash: str
    existing_hash: str
    used_amount: str
    occurred_at: str


class ConflictPage(BaseModel):
    items: list[ConflictResponse]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class FieldProblem(BaseModel):
    field: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details: the one shape of every error the API answers."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = Field(
        default=None, description="each invalid field and why (422 only)"
    )


class LineagePulse(BaseModel):
    pulse_id: str
    quantity: str
    unit: str
    ledger_position: str
    arrival: str


class LineageHour(BaseModel):
    hour: str
    pulses: list[LineagePulse]


class LineageResponse(BaseModel):
    """An invoice line's hours -> pulse ids -> Kafka positions and arrival (invariant 7)."""

    tenant_id: str
    period: str
    sku: str
    hours: list[LineageHour]
