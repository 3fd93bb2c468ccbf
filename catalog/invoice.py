"""The invoice document (pure): draft lines, their canonical serialization and hash, corrections.

`catalog.pricing.draft_invoice` builds these values; this module only describes, serializes
and compares them.

Canonical serialization: JSON with sorted keys and no whitespace; every Decimal as
`ledger.model.plain()` text (exact, so 1.50 and 1.5 serialize alike); every datetime as
ISO-8601 UTC with microseconds and a `Z`; enums as their values; tuples as lists. Two drafts
serialize to the same text exactly when they are equal, whatever order their inputs came in,
so the SHA-256 of that text identifies an invoice (DESIGN "Invoices": finalize and verify).

A correction (DESIGN pricing rule 10, invariant 8) is the difference of two drafts of one
tenant and period, line by line: lines are matched on (sku, segment_start, kind) and a line
present on one side only counts fully. A positive total is a debit note, a negative one a
credit note.

A recorded note is a `CorrectionNote`; its `payload()` is the stored form (the invoice's
`Corrected` event, unchanged since the first notes were recorded, so older events load).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from catalog.terms import PlanKind
from kernel.decimals import EXACT, plain

LineKind = Literal["usage", "minimum", "commitment"]
PlanSource = Literal["catalog", "contract"]
NoteKind = Literal["debit", "credit", "none"]

# Adjustments come after the usage lines they adjust.
_KIND_RANK: dict[str, int] = {"usage": 0, "minimum": 1, "commitment": 2}


@dataclass(frozen=True, slots=True)
class TierCharge:
    """One step of a line's pricing breakdown: `quantity` in (from_qty, to_qty] at unit_price.

    `to_qty` None is an open tier. For a package plan `quantity` counts packages and
    `unit_price` is the package price. `amount` is exact (never rounded).
    """

    from_qty: Decimal
    to_qty: Decimal | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One priced segment of one SKU, or an adjustment (minimum charge, commitment true-up).

    `quantity` is the segment's total in the billing `unit`; `billable` is what remains after
    the free allowance. `subtotal` and `discount_amount` are exact; `amount` is
    round_line(subtotal - discount_amount), the only rounding. `hours` are the hour buckets
    the line covers (lineage, invariant 7); adjustment lines carry no quantity and no hours:
    their lineage is the usage lines they adjust.
    """

    sku: str
    name: str
    category: str
    segment_start: datetime
    segment_end: datetime
    quantity: Decimal
    unit: str
    allowance_used: Decimal
    billable: Decimal
    plan_kind: PlanKind | None
    plan_source: PlanSource
    tiers: tuple[TierCharge, ...]
    subtotal: Decimal
    discount_percent: Decimal
    discount_amount: Decimal
    amount: Decimal
    kind: LineKind
    hours: tuple[datetime, ...]

    @property
    def key(self) -> tuple[str, datetime, LineKind]:
        """What identifies the line across two drafts of one invoice."""
        return (self.sku, self.segment_start, self.kind)


@dataclass(frozen=True, slots=True)
class UnpricedUsage:
    """Usage the engine could not price, summed per (sku, unit, reason): listed, never hidden."""

    sku: str
    unit: str
    quantity: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """A tenant's monthly invoice as derived from usage; `positions` are (partition, max offset)
    of the ledger covered by that usage, ascending by partition."""

    tenant_id: str
    period: str
    currency: str
    lines: tuple[InvoiceLine, ...]
    unpriced: tuple[UnpricedUsage, ...]
    total: Decimal
    positions: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class CorrectionLine:
    """The change of one invoice line between an original draft and its revision."""

    sku: str
    segment_start: datetime
    kind: LineKind
    quantity_delta: Decimal
    amount_delta: Decimal


@dataclass(frozen=True, slots=True)
class Pins:
    """What a document was derived from: ledger `positions` (partition, greatest offset
    covered; DESIGN invariant 10) and the catalog `products` and `contract` aggregate versions
    it was priced with."""

    positions: tuple[tuple[int, int], ...]
    products: tuple[tuple[str, int], ...]
    contract: int | None

    def doc(self) -> dict[str, Any]:
        """The stored form: JSON object keys are text, so partitions are too."""
        return {
            "positions": {str(p): o for p, o in self.positions},
            "products": dict(self.products),
            "contract": self.contract,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Pins:
        contract = doc["contract"]
        return cls(
            tuple(sorted((int(p), int(o)) for p, o in doc["positions"].items())),
            tuple(sorted((str(s), int(v)) for s, v in doc["products"].items())),
            None if contract is None else int(contract),
        )


_NOTE_TITLES: dict[str, str] = {
    "debit": "debit note",
    "credit": "credit note",
    "none": "zero-sum note",
}


@dataclass(frozen=True, slots=True)
class CorrectionNote:
    """A credit or debit note of a finalized invoice (invariant 8): the `revised` document,
    its differences to the previous document line by line, and what it was derived from.

    `references` is the SHA-256 of the finalized invoice it corrects; `total` the exact sum
    of the line differences.
    """

    references: str
    document: str  # canonical_json of the revised invoice
    sha256: str  # invoice_hash of the revised invoice
    lines: tuple[CorrectionLine, ...]
    total: Decimal
    pins: Pins

    @property
    def kind(self) -> NoteKind:
        return note_kind(self.total)

    @property
    def title(self) -> str:
        """What the note is issued as: "debit note", "credit note" or "zero-sum note"."""
        return _NOTE_TITLES[self.kind]

    def payload(self) -> dict[str, Any]:
        """The stored form (the invoice's Corrected event): Decimals as plain text, times as
        ISO-8601; the reference is the invoice itself, so it is not stored."""
        return {
            "document": self.document,
            "sha256": self.sha256,
            "lines": [
                {
                    "sku": c.sku,
                    "segment_start": c.segment_start.isoformat(),
                    "kind": c.kind,
                    "quantity_delta": plain(c.quantity_delta),
                    "amount_delta": plain(c.amount_delta),
                }
                for c in self.lines
            ],
            "total": plain(self.total),
            "pins": self.pins.doc(),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], references: str) -> CorrectionNote:
        """The note of a stored Corrected event of the invoice whose SHA-256 is `references`."""
        lines = tuple(
            CorrectionLine(
                line["sku"],
                datetime.fromisoformat(line["segment_start"]),
                line["kind"],
                Decimal(line["quantity_delta"]),
                Decimal(line["amount_delta"]),
            )
            for line in payload["lines"]
        )
        return cls(
            references,
            payload["document"],
            payload["sha256"],
            lines,
            Decimal(payload["total"]),
            Pins.from_doc(payload["pins"]),
        )

    def summary(self) -> dict[str, Any]:
        """The note as shown by the API and `--json`: the stored form without the document,
        with its kind and reference."""
        out = self.payload()
        del out["document"]
        return out | {"kind": self.kind, "title": self.title, "references": self.references}

    def canonical_json(self) -> str:
        """summary() serialized canonically (sorted keys, no whitespace)."""
        return json.dumps(self.summary(), sort_keys=True, separators=(",", ":"))


def correction_note(
    references: str, previous: InvoiceDraft, revised: InvoiceDraft, pins: Pins
) -> CorrectionNote | None:
    """The note turning `previous` into `revised`, or None when no line changed."""
    lines = correction(previous, revised)
    if not lines:
        return None
    total = EXACT.subtract(revised.total, previous.total)
    return CorrectionNote(
        references, canonical_json(revised), invoice_hash(revised), lines, total, pins
    )


def line_order(key: tuple[str, datetime, LineKind]) -> tuple[bool, str, int, datetime]:
    """Sort key of lines: by (sku, segment_start, kind), where each SKU's usage lines come
    before its minimum adjustment (which spans the period) and the commitment true-up (no
    SKU) comes last."""
    sku, start, kind = key
    return (kind == "commitment", sku, _KIND_RANK[kind], start)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment} in an invoice: times are aware UTC")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _jsonable(value: object) -> object:
    # Enum before str: PlanKind is a StrEnum. Decimal and datetime before anything generic.
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    raise TypeError(f"{type(value).__name__} has no canonical form in an invoice")


def canonical_json(draft: InvoiceDraft) -> str:
    """The canonical serialization of `draft` (see the module docstring)."""
    return json.dumps(_jsonable(draft), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def invoice_hash(draft: InvoiceDraft) -> str:
    """SHA-256 (hex) of canonical_json(draft): what finalize records and verify compares."""
    return hashlib.sha256(canonical_json(draft).encode()).hexdigest()


def correction(original: InvoiceDraft, revised: InvoiceDraft) -> tuple[CorrectionLine, ...]:
    """Line-by-line differences revised - original, in line order; unchanged lines omitted."""
    if (original.tenant_id, original.period, original.currency) != (
        revised.tenant_id,
        revised.period,
        revised.currency,
    ):
        raise ValueError(
            f"cannot correct invoice {original.tenant_id}/{original.period}"
            f" ({original.currency}) with {revised.tenant_id}/{revised.period}"
            f" ({revised.currency}): tenant, period and currency must match"
        )
    before = _by_key(original)
    after = _by_key(revised)
    deltas: list[CorrectionLine] = []
    for key in sorted(before.keys() | after.keys(), key=line_order):
        old, new = before.get(key), after.get(key)
        quantity_delta = EXACT.subtract(
            new.quantity if new else Decimal(0), old.quantity if old else Decimal(0)
        )
        amount_delta = EXACT.subtract(
            new.amount if new else Decimal(0), old.amount if old else Decimal(0)
        )
        if quantity_delta.is_zero() and amount_delta.is_zero():
            continue
        sku, start, kind = key
        deltas.append(CorrectionLine(sku, start, kind, quantity_delta, amount_delta))
    return tuple(deltas)


def total_delta(lines: Iterable[CorrectionLine]) -> Decimal:
    """Σ amount deltas of a correction: equals revised.total - original.total."""
    total = Decimal(0)
    for line in lines:
        total = EXACT.add(total, line.amount_delta)
    return total


def note_kind(delta: Decimal) -> NoteKind:
    """What a correction of total `delta` is issued as: positive → debit, negative → credit."""
    if delta > 0:
        return "debit"
    if delta < 0:
        return "credit"
    return "none"


def _by_key(draft: InvoiceDraft) -> dict[tuple[str, datetime, LineKind], InvoiceLine]:
    lines: dict[tuple[str, datetime, LineKind], InvoiceLine] = {}
    for line in draft.lines:
        if line.key in lines:
            raise ValueError(
                f"invoice {draft.tenant_id}/{draft.period} has two {line.kind} lines for"
                f" {line.sku!r} from {_iso(line.segment_start)}"
            )
        lines[line.key] = line
    return lines
