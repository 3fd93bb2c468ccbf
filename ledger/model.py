"""The pulse and ledger-event value types, and the canonical payload hash that detects conflicts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from kernel.decimals import plain

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The payload hash's JSON: compact, non-ASCII kept. One encoder for all pulses (json.dumps
# with these arguments builds one per call); the text, and so every stored hash, is the same.
_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, no float)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour bucket an event time falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Pulse:
    """A validated usage observation. `occurred_at` is aware UTC at microsecond precision."""

    pulse_id: str
    tenant_id: str
    product_sku: str
    used_amount: Decimal
    use_unit: str
    occurred_at: datetime
    resource_id: str = ""
    region: str = ""
    source: str = ""
    attributes: tuple[tuple[str, str], ...] = field(default=())

    def payload_hash(self) -> str:
        """SHA-256 of the canonical payload: equal for a retry, different for a conflict."""
        canonical = _CANONICAL.encode(
            [
                self.tenant_id,
                self.pulse_id,
                self.product_sku,
                plain(self.used_amount),
                self.use_unit,
                to_micros(self.occurred_at),
                self.resource_id,
                self.region,
                self.source,
                sorted(self.attributes),
            ]
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Position:
    """A ledger position: where the record sits in the pulse log."""

    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """Parses "P:O" (as used by `pulse replay --from-offset`)."""
        part, sep, off = text.partition(":")
        if not sep or not part.isdigit() or not off.isdigit():
            raise ValueError(f"position {text!r} is not PARTITION:OFFSET, e.g. 0:1500")
        return cls(int(part), int(off))


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A record read from the pulse log: its raw bytes, where it sits and when it arrived."""

    position: Position
    arrival: datetime
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """An immutable ledger row: the pulse, its payload hash, position and arrival time."""

    pulse: Pulse
    payload_hash: str
    position: Position
    arrival: datetime

    @classmethod
    def of(cls, pulse: Pulse, position: Position, arrival: datetime) -> LedgerEvent:
        return cls(pulse, pulse.payload_hash(), position, arrival)

    @property
    def hour(self) -> datetime:
        return hour_of(self.pulse.occurred_at)
