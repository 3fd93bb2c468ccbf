"""Response schemas of the read API, separate from domain types (decimals travel as strings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UsageRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    hour: str
    product_sku: str
    unit: str
    quantity: str
    pulse_count: int
    priced: bool
    unpriced_reason: str
    ledger_position: str


class UsageResponse(BaseModel):
    tenant_id: str
    start: str
    end: str
    rows: list[UsageRow]


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
