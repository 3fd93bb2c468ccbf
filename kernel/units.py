"""The unit registry: dimensions and exact Decimal factors, and conversion between units."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal
from enum import StrEnum
from fractions import Fraction
from functools import cache


class Dimension(StrEnum):
    BYTES = "bytes"
    BYTE_TIME = "byte-time"
    VCPU_TIME = "vcpu-time"
    TIME = "time"
    COUNT = "count"


@dataclass(frozen=True)
class Unit:
    """A unit is `factor` base units of its dimension (B, B-second, vCPU-second, second, 1)."""

    symbol: str
    dimension: Dimension
    factor: Decimal


class IncompatibleUnits(ValueError):
    """Raised when two units measure different dimensions."""


class UnknownUnit(KeyError):
    """Raised for a unit symbol the registry does not know."""


_K, _KI = Decimal(1000), Decimal(1024)
_BYTE_PREFIXES = {
    "B": Decimal(1),
    "KB": _K,
    "MB": _K**2,
    "GB": _K**3,
    "TB": _K**4,
    "PB": _K**5,
    "KiB": _KI,
    "MiB": _KI**2,
    "GiB": _KI**3,
    "TiB": _KI**4,
    "PiB": _KI**5,
}
_SECONDS = {"second": Decimal(1), "minute": Decimal(60), "hour": Decimal(3600)}


def _build() -> dict[str, Unit]:
    units: dict[str, Unit] = {}
    for symbol, factor in _BYTE_PREFIXES.items():
        units[symbol] = Unit(symbol, Dimension.BYTES, factor)
        for period, seconds in _SECONDS.items():
            name = f"{symbol}-{period}"
            units[name] = Unit(name, Dimension.BYTE_TIME, factor * seconds)
    for period, seconds in _SECONDS.items():
        units[f"vCPU-{period}"] = Unit(f"vCPU-{period}", Dimension.VCPU_TIME, seconds)
        units[period] = Unit(period, Dimension.TIME, seconds)
    for name, factor in {
        "request": Decimal(1),
        "1k-requests": Decimal(1000),
        "1M-requests": Decimal(1000000),
        "unit": Decimal(1),
    }.items():
        units[name] = Unit(name, Dimension.COUNT, factor)
    return units


UNITS: dict[str, Unit] = _build()


def unit(symbol: str) -> Unit:
    """The registered unit named `symbol` (case-sensitive: MB and Mb are different things)."""
    try:
        return UNITS[symbol]
    except KeyError:
        raise UnknownUnit(symbol) from None


def is_known(symbol: str) -> bool:
    return symbol in UNITS


class InexactConversion(ValueError):
    """Raised when a conversion would need rounding (e.g. 7 vCPU-minute in vCPU-hour)."""


_WIDE = Context(prec=80)


def convert(amount: Decimal, source: str, target: str) -> Decimal:
    """`amount` in `source` units expressed exactly in `target` units.

    Ratios such as minute/hour do not always terminate (7/60); rather than round a billed
    quantity silently, such a conversion raises InexactConversion and the caller decides
    (the ingestor rejects the pulse, the projection keeps it in its own unit).
    """
    src, dst = unit(source), unit(target)
    if src.dimension is not dst.dimension:
        raise IncompatibleUnits(
            f"{source} ({src.dimension}) cannot be converted to {target} ({dst.dimension})"
        )
    if src.factor == dst.factor:
        return amount
    num, den, odd = _ratio(source, target)
    p, q = amount.as_integer_ratio()  # exact; q is 2^a * 5^b since amount is a decimal
    # amount * num / den terminates iff the part of den coprime to 10 divides p * num; num
    # and den are coprime, so that part must divide p.
    if p % odd:
        raise InexactConversion(f"{amount} {source} is not exactly expressible in {target}")
    # A terminating quotient of at most ~60 digits: exact in the 80-digit context.
    return _WIDE.divide(Decimal(p * num), Decimal(q * den))


@cache
def _ratio(source: str, target: str) -> tuple[int, int, int]:
    """source/target factor as a reduced fraction num/den, and den without its 2s and 5s."""
    ratio = Fraction(UNITS[source].factor) / Fraction(UNITS[target].factor)
    odd = ratio.denominator
    for prime in (2, 5):
        while odd % prime == 0:
            odd //= prime
    return ratio.numerator, ratio.denominator, odd
