"""The pulses route of the read API: a tenant's raw ledger rows in a time range, a page at a
time, in the clustering order of pulses_by_hour (what an analyst reads in cqlsh)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from kernel.errors import Invalid
from ledger.model import to_micros
from query.app import Ledger, ReadableTenant, _pulse, _utc
from query.paging import Cursor, Limit, decode, encode, moment, scope_of
from query.schemas import PulsePage

router = APIRouter(tags=["pulses"])

# A SKU as the ingestor accepts it: printable, no control characters, at most 256 characters.
Sku = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00-\x1f\x7f-\x9f]+$",
        description="only pulses of this product SKU",
        examples=["compute.vcpu"],
    ),
]


# Declared without a trailing path segment, so /pulses/{pulse_id:path} never matches it.
@router.get("/v1/tenants/{tenant_id}/pulses", response_model=PulsePage)
def pulse_page(
    tenant_id: ReadableTenant,
    store: Ledger,
    start: Annotated[
        datetime,
        Query(description="event time, inclusive, UTC", examples=["2026-10-07T00:00:00Z"]),
    ],
    end: Annotated[
        datetime,
        Query(description="event time, exclusive, UTC", examples=["2026-10-08T00:00:00Z"]),
    ],
    sku: Sku = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> PulsePage:
    """The tenant's pulses with start <= occurred_at < end, ordered by (UTC hour of event
    time, pulse id in UTF-8 byte order): the clustering order of `pulses_by_hour`, so a page
    is a slice of one hour partition after another. The cursor is the last row's key: pulses
    stored when paging began come exactly once, however many arrive meanwhile (those may or
    may not appear, depending on where they fall relative to the cursor)."""
    begin, stop = _utc(start, "start"), _utc(end, "end")
    if stop <= begin:
        raise Invalid("end: must be after start")
    scope = scope_of(tenant_id, begin.isoformat(), stop.isoformat(), sku)
    after = decode(cursor, "pulses", (int, str), scope)
    key = None if after is None else (moment(after[0]), after[1])
    found = store.pulses(tenant_id, begin, stop, limit=limit + 1, after=key, sku=sku)
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last = page[-1]
        next_cursor = encode("pulses", [to_micros(last.hour), last.pulse.pulse_id], scope)
    return PulsePage(
        tenant_id=tenant_id,
        start=begin.isoformat(),
        end=stop.isoformat(),
        sku=sku,
        items=[_pulse(e) for e in page],
        next_cursor=next_cursor,
    )
