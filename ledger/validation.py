"""Validation of incoming pulses: every rejection names the field and the reason (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from kernel import units
from kernel.text import unsafe_character
from ledger.model import Pulse, from_micros, to_micros

MAX_ID = 128
MAX_TEXT = 256
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY = 64
MAX_AMOUNT_TEXT = 64
MAX_INTEGER_DIGITS = 20  # amounts < 1e20 ...
MAX_FRACTION_DIGITS = 18  # ... with at most 18 decimals: fits DECIMAL(38, 18) everywhere
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_EARLIEST_MICROS = to_micros(EARLIEST)

_TENANT = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# ASCII only: Decimal() would also take "1_000" and non-ASCII digits.
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,9})?")
_SPECIAL = re.compile(r"[+-]?(nan|snan|inf|infinity)", re.IGNORECASE)


class PulseFields(Protocol):
    """The text fields of a pulse as received: a RawPulse, or the protobuf message itself
    (the ingestor and the log's decoder validate the message in place, without a copy)."""

    @property
    def pulse_id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def product_sku(self) -> str: ...
    @property
    def used_amount(self) -> str: ...
    @property
    def use_unit(self) -> str: ...
    @property
    def resource_id(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, str] | None: ...


@dataclass(frozen=True, slots=True)
class RawPulse:
    """A pulse as received, before validation (strings as sent; time as epoch seconds+nanos)."""

    pulse_id: str
    tenant_id: str
    product_sku: str
    used_amount: str
    use_unit: str
    occurred_seconds: int | None  # None when the sender left occurred_at unset
    occurred_nanos: int
    resource_id: str = ""
    region: str = ""
    source: str = ""
    attributes: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    pulse_id: str
    field: str
    reason: str


BillingUnitOf = Callable[[str], str | None]
# What a valid pulse's fields parse to: the amount, the event time in epoch microseconds
# and the attributes sorted by key.
_Parsed = tuple[Decimal, int, tuple[tuple[str, str], ...]]


def _no_billing_unit(_sku: str) -> str | None:
    return None


class Validator:
    """`validate` for many pulses received at the same `now`: what depends only on the
    batch (the latest event time allowed) is worked out once."""

    __slots__ = ("_billing_unit_of", "_latest", "_now", "_skew")

    def __init__(
        self,
        now: datetime,
        future_skew: timedelta,
        billing_unit_of: BillingUnitOf = _no_billing_unit,
    ) -> None:
        self._now = now
        self._skew = future_skew
        self._latest = to_micros(now + future_skew)
        self._billing_unit_of = billing_unit_of

    def rejection(self, fields: PulseFields, seconds: int | None, nanos: int) -> Rejection | None:
        """Why the pulse is refused, or None: `validate` without building the Pulse (the
        ingestor only answers and forwards the bytes it received)."""
        checked = self._check(fields, seconds, nanos)
        return checked if isinstance(checked, Rejection) else None

    def pulse(self, fields: PulseFields, seconds: int | None, nanos: int) -> Pulse | Rejection:
        """The valid Pulse, or the first rejection found (field + reason)."""
        checked = self._check(fields, seconds, nanos)
        if isinstance(checked, Rejection):
            return checked
        amount, micros, attributes = checked
        return Pulse(
            pulse_id=fields.pulse_id,
            tenant_id=fields.tenant_id,
            product_sku=fields.product_sku,
            used_amount=amount,
            use_unit=fields.use_unit,
            occurred_at=from_micros(micros),
            resource_id=fields.resource_id,
            region=fields.region,
            source=fields.source,
            attributes=attributes,
        )

    def _check(self, fields: PulseFields, seconds: int | None, nanos: int) -> Rejection | _Parsed:
        # Each field is read once: on a protobuf message every read builds a new str.
        pulse_id = fields.pulse_id
        sku = fields.product_sku
        problem = (
            _check_id("pulse_id", pulse_id)
            or _check_tenant(fields.tenant_id)
            or _check_id("product_sku", sku)
        )
        if problem:
            return Rejection(pulse_id[:MAX_ID], *problem)
        amount = _parse_amount(fields.used_amount)
        if isinstance(amount, str):
            return Rejection(pulse_id[:MAX_ID], "used_amount", amount)
        unit_problem = _check_unit(fields.use_unit, sku, amount, self._billing_unit_of)
        if unit_problem:
            return Rejection(pulse_id[:MAX_ID], "use_unit", unit_problem)
        micros = self._parse_time(seconds, nanos)
        if isinstance(micros, str):
            return Rejection(pulse_id[:MAX_ID], "occurred_at", micros)
        for name, value in (
            ("resource_id", fields.resource_id),
            ("region", fields.region),
            ("source", fields.source),
        ):
            if not value:
                continue
            if len(value) > MAX_TEXT:
                reason = f"is {len(value)} characters; at most {MAX_TEXT} allowed"
                return Rejection(pulse_id[:MAX_ID], name, reason)
            unsafe = unsafe_character(value)
            if unsafe:
                return Rejection(pulse_id[:MAX_ID], name, unsafe)
        attributes = _check_attributes(fields.attributes)
        if isinstance(attributes, str):
            return Rejection(pulse_id[:MAX_ID], "attributes", attributes)
        return amount, micros, attributes

    def _parse_time(self, seconds: int | None, nanos: int) -> int | str:
        """Epoch microseconds of a valid event time, or why it is not one."""
        if seconds is None:
            return "is required"
        if not 0 <= nanos < 1_000_000_000:
            return f"nanos {nanos} out of range"
        # Sub-microsecond precision is dropped: it cannot change an hour bucket or a bill.
        micros = seconds * 1_000_000 + nanos // 1000
        if _EARLIEST_MICROS <= micros <= self._latest:
            return micros
        try:
            moment = from_micros(micros)
        except OverflowError:
            return f"{seconds} seconds since the epoch is not a valid time"
        if moment < EARLIEST:
            return f"{moment.isoformat()} is before {EARLIEST.date()}"
        return (
            f"{moment.isoformat()} is in the future (more than "
            f"{int(self._skew.total_seconds())} s ahead of {self._now.isoformat()})"
        )


def validate(
    raw: RawPulse,
    now: datetime,
    future_skew: timedelta,
    billing_unit_of: BillingUnitOf = _no_billing_unit,
) -> Pulse | Rejection:
    """The valid Pulse, or the first rejection found (field + reason)."""
    validator = Validator(now, future_skew, billing_unit_of)
    return validator.pulse(raw, raw.occurred_seconds, raw.occurred_nanos)


_NEVER_EARLY = datetime(9999, 1, 1, tzinfo=UTC)
# `validate`'s rules that hold whenever a pulse is read again (from the log, by the writer
# or a replay), for records that may not have come through the ingestor: all but the
# future-skew check (it depends on when the pulse arrived) and the catalog's unit check (the
# catalog changes; an unknown SKU is reported unpriced, never rejected).
RECHECK = Validator(_NEVER_EARLY, timedelta(0))


def recheck(raw: RawPulse) -> Pulse | Rejection:
    """RECHECK of a RawPulse."""
    return RECHECK.pulse(raw, raw.occurred_seconds, raw.occurred_nanos)


def _check_id(field: str, value: str) -> tuple[str, str] | None:
    if not value:
        return field, "is required"
    if len(value) > MAX_ID:
        return field, f"is {len(value)} characters; at most {MAX_ID} allowed"
    unsafe = unsafe_character(value)
    if unsafe:
        return field, unsafe
    if value != value.strip():
        return field, "has leading or trailing whitespace"
    return None


def _check_tenant(value: str) -> tuple[str, str] | None:
    if not value:
        return "tenant_id", "is required"
    if len(value) > MAX_ID:
        return "tenant_id", f"is {len(value)} characters; at most {MAX_ID} allowed"
    if not _TENANT.fullmatch(value):
        return "tenant_id", "may contain only letters, digits and . _ : -"
    return None


def _parse_amount(text: str) -> Decimal | str:
    """The amount, or the reason it is not acceptable."""
    if not text:
        return 'is required (a decimal string such as "12.5")'
    if len(text) > MAX_AMOUNT_TEXT:
        return f"is {len(text)} characters; at most {MAX_AMOUNT_TEXT} allowed"
    if not _DECIMAL.fullmatch(text):
        if _SPECIAL.fullmatch(text):
            return f"{text!r} is not finite"
        return f"{text!r} is not a decimal number (digits, optional point and exponent)"
    # Decimal(text) is exact; arithmetic would round to the context's 28 digits.
    amount = Decimal(text)
    if amount.is_zero():
        return Decimal(0)
    if amount.is_signed():
        return f"{text!r} is negative; usage is never negative"
    if amount.adjusted() >= MAX_INTEGER_DIGITS:
        return f"{text!r} is too large; amounts must be below 1e{MAX_INTEGER_DIGITS}"
    if "e" not in text and "E" not in text:  # plain notation shows its decimal places
        point = text.find(".")
        if point < 0 or len(text) - point - 1 <= MAX_FRACTION_DIGITS:
            return amount
    _sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the pattern
    if exponent < -MAX_FRACTION_DIGITS:  # trailing zeros may still bring it within bounds
        trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
        if exponent + trailing_zeros < -MAX_FRACTION_DIGITS:
            return f"{text!r} has more than {MAX_FRACTION_DIGITS} decimal places"
    return amount


def _check_unit(unit: str, sku: str, amount: Decimal, billing_unit_of: BillingUnitOf) -> str | None:
    if not unit:
        return "is required"
    if not units.is_known(unit):
        return f"{unit[:40]!r} is not a known unit (e.g. B, GB, GiB, GB-hour, vCPU-hour, request)"
    target = billing_unit_of(sku)
    if target is None:
        return None  # unknown SKU: accepted into the ledger and reported unpriced
    try:
        units.check_convertible(amount, unit, target)
    except units.IncompatibleUnits as exc:
        return f"is incompatible with product {sku}: {exc}"
    except units.InexactConversion as exc:
        return f"cannot be billed exactly for product {sku}: {exc}; send it in {target}"
    return None


def _check_attributes(
    attributes: Mapping[str, str] | None,
) -> tuple[tuple[str, str], ...] | str:
    if not attributes:
        return ()
    if len(attributes) > MAX_ATTRIBUTES:
        return f"has {len(attributes)} entries; at most {MAX_ATTRIBUTES} allowed"
    for key, value in attributes.items():
        if not key or len(key) > MAX_ATTRIBUTE_KEY:
            return f"key {key[:MAX_ATTRIBUTE_KEY]!r} must be 1-{MAX_ATTRIBUTE_KEY} characters"
        if len(value) > MAX_TEXT:
            return f"value of {key!r} is {len(value)} characters; at most {MAX_TEXT} allowed"
        for part, text in (("key", key), ("value", value)):
            unsafe = unsafe_character(text)
            if unsafe:
                # !a: the reason itself must not carry the character to a terminal
                return f"{part} {key[:MAX_ATTRIBUTE_KEY]!a} {unsafe}"
    return tuple(sorted(attributes.items()))
