"""Validation of incoming pulses: every rejection names the field and the reason (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from kernel import units
from kernel.text import unsafe_character
from ledger.model import Pulse, from_micros

MAX_ID = 128
MAX_TEXT = 256
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY = 64
MAX_AMOUNT_TEXT = 64
MAX_INTEGER_DIGITS = 20  # amounts < 1e20 ...
MAX_FRACTION_DIGITS = 18  # ... with at most 18 decimals: fits DECIMAL(38, 18) everywhere
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

_TENANT = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# ASCII only: Decimal() would also take "1_000" and non-ASCII digits.
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,9})?")
_SPECIAL = re.compile(r"[+-]?(nan|snan|inf|infinity)", re.IGNORECASE)


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


def _no_billing_unit(_sku: str) -> str | None:
    return None


def validate(
    raw: RawPulse,
    now: datetime,
    future_skew: timedelta,
    billing_unit_of: BillingUnitOf = _no_billing_unit,
) -> Pulse | Rejection:
    """The valid Pulse, or the first rejection found (field + reason)."""

    def reject(field: str, reason: str) -> Rejection:
        return Rejection(raw.pulse_id[:MAX_ID], field, reason)

    problem = (
        _check_id("pulse_id", raw.pulse_id)
        or _check_tenant(raw.tenant_id)
        or _check_id("product_sku", raw.product_sku)
    )
    if problem:
        return reject(*problem)
    amount = _parse_amount(raw.used_amount)
    if isinstance(amount, str):
        return reject("used_amount", amount)
    unit_problem = _check_unit(raw.use_unit, raw.product_sku, amount, billing_unit_of)
    if unit_problem:
        return reject("use_unit", unit_problem)
    occurred = _parse_time(raw.occurred_seconds, raw.occurred_nanos, now, future_skew)
    if isinstance(occurred, str):
        return reject("occurred_at", occurred)
    for name, value in (
        ("resource_id", raw.resource_id),
        ("region", raw.region),
        ("source", raw.source),
    ):
        if len(value) > MAX_TEXT:
            return reject(name, f"is {len(value)} characters; at most {MAX_TEXT} allowed")
        unsafe = unsafe_character(value)
        if unsafe:
            return reject(name, unsafe)
    attributes = _check_attributes(raw.attributes or {})
    if isinstance(attributes, str):
        return reject("attributes", attributes)
    return Pulse(
        pulse_id=raw.pulse_id,
        tenant_id=raw.tenant_id,
        product_sku=raw.product_sku,
        used_amount=amount,
        use_unit=raw.use_unit,
        occurred_at=occurred,
        resource_id=raw.resource_id,
        region=raw.region,
        source=raw.source,
        attributes=attributes,
    )


_NEVER_EARLY = datetime(9999, 1, 1, tzinfo=UTC)


def recheck(raw: RawPulse) -> Pulse | Rejection:
    """`validate`'s rules that hold whenever a pulse is read again (from the log, by the
    writer or a replay), for records that may not have come through the ingestor: all but
    the future-skew check (it depends on when the pulse arrived) and the catalog's unit
    check (the catalog changes; an unknown SKU is reported unpriced, never rejected)."""
    return validate(raw, _NEVER_EARLY, timedelta(0))


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
    if _SPECIAL.fullmatch(text):
        return f"{text!r} is not finite"
    if not _DECIMAL.fullmatch(text):
        return f"{text!r} is not a decimal number (digits, optional point and exponent)"
    # Decimal(text) and copy_abs() are exact; arithmetic would round to the context's 28 digits.
    amount = Decimal(text)
    if amount.is_signed() and not amount.is_zero():
        return f"{text!r} is negative; usage is never negative"
    if amount.is_zero():
        return Decimal(0)
    amount = amount.copy_abs()
    if amount.adjusted() >= MAX_INTEGER_DIGITS:
        return f"{text!r} is too large; amounts must be below 1e{MAX_INTEGER_DIGITS}"
    _sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the pattern
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
        units.convert(amount, unit, target)
    except units.IncompatibleUnits as exc:
        return f"is incompatible with product {sku}: {exc}"
    except units.InexactConversion as exc:
        return f"cannot be billed exactly for product {sku}: {exc}; send it in {target}"
    return None


def _parse_time(
    seconds: int | None, nanos: int, now: datetime, future_skew: timedelta
) -> datetime | str:
    if seconds is None:
        return "is required"
    if not 0 <= nanos < 1_000_000_000:
        return f"nanos {nanos} out of range"
    # Sub-microsecond precision is dropped: it cannot change an hour bucket or a bill.
    try:
        moment = from_micros(seconds * 1_000_000 + nanos // 1000)
    except OverflowError:
        return f"{seconds} seconds since the epoch is not a valid time"
    if moment < EARLIEST:
        return f"{moment.isoformat()} is before {EARLIEST.date()}"
    if moment > now + future_skew:
        return (
            f"{moment.isoformat()} is in the future (more than "
            f"{int(future_skew.total_seconds())} s ahead of {now.isoformat()})"
        )
    return moment


def _check_attributes(attributes: Mapping[str, str]) -> tuple[tuple[str, str], ...] | str:
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
