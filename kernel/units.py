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
    ratio = _conversion(source, target)
    if ratio is None:
        return amount
    num, den, odd = ratio
    p, q = amount.as_integer_ratio()  # exact; q is 2^a * 5^b since amount is a decimal
    # amount * num / den terminates iff the part of den coprime to 10 divides p * num; num
    # and den are coprime, so that part must divide p.
    if p % odd:
        raise _inexact(amount, source, target)
    # A terminating quotient of at most ~60 digits: exact in the 80-digit context.
    return _WIDE.divide(Decimal(p * num), Decimal(q * den))


def check_convertible(amount: Decimal, source: str, target: str) -> None:
    """Raises what `convert` would raise, without computing the result (the ingestor only
    needs to know that a pulse can be billed exactly)."""
    ratio = _conversion(source, target)
    # odd == 1 (any two byte units, for one) always terminates: no fraction to build.
    if ratio is not None and ratio[2] != 1 and amount.as_integer_ratio()[0] % ratio[2]:
        raise _inexact(amount, source, target)


@cache  # known units only (callers check first; unit() raises otherwise): a bounded cache
def _conversion(source: str, target: str) -> tuple[int, int, int] | None:
    """`_ratio` of two compatible units, None when their factors are equal."""
    src, dst = unit(source), unit(target)
    if src.dimension is not dst.dimension:
        raise IncompatibleUnits(
            f"{source} ({src.dimension}) cannot be converted to {target} ({dst.dimension})"
        )
    if src.factor == dst.factor:
        return None
    return _ratio(source, target)


def _inexact(amount: Decimal, source: str, target: str) -> InexactConversion:
    return InexactConversion(f"{amount} {source} is not exactly expressible in {target}")


def _ratio(source: str, target: str) -> tuple[int, int, int]:
    """source/target factor as a reduced fraction num/den, and den without its 2s and 5s."""
    ratio = Fraction(UNITS[source].factor) / Fraction(UNITS[target].factor)
    odd = ratio.denominator
    for prime in (2, 5):
        while odd % prime == 0:
            odd //= prime
    return ratio.numerator, ratio.denominator, odd
