"""Exact decimal arithmetic: the wide contexts, canonical text and exact sums used everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation

# Sums of amounts with up to 38 significant digits must not round (the default context
# keeps 28 digits).
EXACT = Context(prec=80)
# As wide as EXACT, but a result that would need rounding raises instead.
STRICT = Context(prec=EXACT.prec, traps=[InvalidOperation, DivisionByZero, Inexact])
ZERO = Decimal(0)


def plain(amount: Decimal) -> str:
    """Canonical decimal text: no exponent, no trailing zeros ("1.50" and "1.5" are equal)."""
    if amount.is_zero():
        return "0"
    # Strip trailing zeros by hand: Decimal.normalize() would round to 28 digits.
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int), "only finite amounts reach the ledger"
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    if exponent > 0:
        digits, exponent = digits + (0,) * exponent, 0
    return format(Decimal((sign, digits, exponent)), "f")


def exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    """Σ amounts without rounding (raises decimal.Inexact rather than round)."""
    total = ZERO
    for amount in amounts:
        total = STRICT.add(total, amount)
    return total
