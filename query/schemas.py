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
    attributed: bool = Field(
        default=True,
        description="false when a grouped region or resource_id is unknown (null): hours "
        "projected before detail was kept, until `pulse rebuild`; CSV shows it as a column "
        'when grouping by region or resource_id, since an empty cell cannot tell null from ""',
    )


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


def _examples(*examples: Any) -> ConfigDict:
    """A model config whose examples show up in the OpenAPI document."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})


_PULSE_EXAMPLE: dict[str, Any] = {
    "tenant_id": "acme",
    "pulse_id": "vm-42-2026-10-07T09:00",
    "product_sku": "compute.vcpu",
    "used_amount": "2",
    "use_unit": "vCPU-hour",
    "occurred_at": "2026-10-07T09:00:00+00:00",
    "arrival": "2026-10-07T09:00:01.250000+00:00",
    "ledger_position": "1:1042",
    "payload_hash": "9f2c…",
}
_CURSOR_EXAMPLE = "WyJwdWxzZXMiLCI0ZjM…"


class PulsePage(BaseModel):
    """Raw ledger rows of a tenant, ordered by (UTC hour of event time, pulse id)."""

    model_config = _examples(
        {
            "tenant_id": "acme",
            "start": "2026-10-07T00:00:00+00:00",
            "end": "2026-10-08T00:00:00+00:00",
            "sku": None,
            "items": [_PULSE_EXAMPLE],
            "next_cursor": _CURSOR_EXAMPLE,
        }
    )

    tenant_id: str
    start: str
    end: str
    sku: str | None
    items: list[PulseResponse]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class InvoiceSummary(BaseModel):
    period: str = Field(description="billing month YYYY-MM (UTC)")
    status: str = Field(description="`draft` (live, changes with usage) or `finalized`")
    total: str = Field(description="exact decimal; a finalized invoice's total before notes")
    currency: str
    notes: int = Field(description="correction notes recorded since finalization")
    sha256: str | None = Field(description="of the finalized document; null for a draft")


class InvoicePage(BaseModel):
    """A tenant's invoices, newest period first."""

    model_config = _examples(
        {
            "tenant_id": "acme",
            "items": [
                {
                    "period": "2026-11",
                    "status": "draft",
                    "total": "12.5",
                    "currency": "BRL",
                    "notes": 0,
                    "sha256": None,
                },
                {
                    "period": "2026-10",
                    "status": "finalized",
                    "total": "4.5",
                    "currency": "BRL",
                    "notes": 1,
                    "sha256": "3b1f…",
                },
            ],
            "next_cursor": None,
        }
    )

    tenant_id: str
    items: list[InvoiceSummary]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class LineagePage(LineageResponse):
    """A page of an invoice line's lineage: pulses in (hour, pulse id) order, grouped by hour
    (an hour may continue on the next page)."""

    model_config = _examples(
        {
            "tenant_id": "acme",
            "period": "2026-10",
            "sku": "compute.vcpu",
            "hours": [
                {
                    "hour": "2026-10-07T09:00:00+00:00",
                    "pulses": [
                        {
                            "pulse_id": "vm-42-2026-10-07T09:00",
                            "quantity": "2",
                            "unit": "vCPU-hour",
                            "ledger_position": "1:1042",
                            "arrival": "2026-10-07T09:00:01.250000+00:00",
                        }
                    ],
                }
            ],
            "next_cursor": _CURSOR_EXAMPLE,
        }
    )

    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class TenantPage(BaseModel):
    """Tenants with at least one pulse (event time) in the period, by tenant id."""

    model_config = _examples(
        {"period": "2026-10", "items": ["acme", "globex"], "next_cursor": _CURSOR_EXAMPLE}
    )

    period: str
    items: list[str]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class DeadLetterResponse(BaseModel):
    position: str = Field(description="partition:offset of the record in the pulse log")
    arrival: str
    reason: str
    detail: str
    key: str
    value_head: str = Field(description="first 48 bytes of the record, hex")


class DeadLetterPage(BaseModel):
    """Dead-lettered records by arrival, then origin position and reason."""

    model_config = _examples(
        {
            "items": [
                {
                    "position": "0:17",
                    "arrival": "2026-10-07T09:00:01.250000+00:00",
                    "reason": "conflict",
                    "detail": "pulse id p-1 reused with another payload",
                    "key": "acme",
                    "value_head": "0a0470...",
                }
            ],
            "next_cursor": None,
        }
    )

    items: list[DeadLetterResponse]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class TenantConflict(ConflictResponse):
    tenant_id: str


class TenantConflictPage(BaseModel):
    """Conflicts of every tenant, by tenant id, pulse id and position."""

    model_config = _examples(
        {
            "items": [
                {
                    "tenant_id": "acme",
                    "pulse_id": "p-1",
                    "ledger_position": "0:8",
                    "payload_hash": "77ac…",
                    "existing_hash": "9f2c…",
                    "used_amount": "2.5",
                    "occurred_at": "2026-10-07T09:00:00+00:00",
                }
            ],
            "next_cursor": None,
        }
    )

    items: list[TenantConflict]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )
