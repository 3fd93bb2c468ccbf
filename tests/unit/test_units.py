"""Unit registry: exact conversions, and the three ways a conversion is refused."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from kernel import units
from tests.unit.helpers import BYTE_FACTORS, WIDE

# Base units per unit, written out independently of catalog.units (seconds for time parts).
SECONDS = {"second": 1, "minute": 60, "hour": 3600}
TIMED_FACTORS: dict[str, int] = {
    **{f"{b}-{p}": f * s for b, f in BYTE_FACTORS.items() for p, s in SECONDS.items()},
    **{f"vCPU-{p}": s for p, s in SECONDS.items()},
}

amounts = st.builds(
    lambda digits, places: Decimal(digits).scaleb(-places),
    st.integers(min_value=0, max_value=10**38 - 1),
    st.integers(min_value=0, max_value=18),
)


@pytest.mark.parametrize(
    ("amount", "source", "target", "expected"),
    [
        ("1", "KB", "B", "1000"),
        ("1", "KiB", "B", "1024"),
        ("1500", "B", "KB", "1.5"),
        ("512", "B", "KiB", "0.5"),
        ("1", "GiB", "MiB", "1024"),
        ("2.5", "GiB", "MiB", "2560"),
        ("1", "GB-hour", "GB-second", "3600"),
        ("0.5", "GB-hour", "GB-second", "1800"),
        ("30", "vCPU-minute", "vCPU-hour", "0.5"),
        ("90", "vCPU-minute", "vCPU-hour", "1.5"),
        ("1", "1k-requests", "request", "1000"),
        ("1", "B", "PiB", "8.8817841970012523233890533447265625E-16"),
    ],
)
def test_converts_exactly(amount: str, source: str, target: str, expected: str) -> None:
    # given / when
    result = units.convert(Decimal(amount), source, target)

    # then: equal in value (the exponent may differ) and no digit lost
    assert result == Decimal(expected)


def test_same_factor_returns_the_amount_unchanged() -> None:
    # given
    amount = Decimal("12345678901234567890.123456789012345678")

    # when
    result = units.convert(amount, "unit", "request")

    # then
    assert result == amount


@pytest.mark.parametrize(
    ("source", "target"),
    [("GB", "vCPU-hour"), ("GB-hour", "GB"), ("request", "second"), ("vCPU-hour", "hour")],
)
def test_incompatible_dimensions_name_both_units(source: str, target: str) -> None:
    # given / when
    with pytest.raises(units.IncompatibleUnits) as caught:
        units.convert(Decimal(1), source, target)

    # then
    assert source in str(caught.value)
    assert target in str(caught.value)


def test_seven_vcpu_minutes_are_not_exactly_vcpu_hours() -> None:
    # given: 7/60 hour = 0.11666… does not terminate

    # when / then
    with pytest.raises(units.InexactConversion):
        units.convert(Decimal(7), "vCPU-minute", "vCPU-hour")


@pytest.mark.parametrize(
    ("source", "target"), [("parsec", "B"), ("B", "parsec"), ("mb", "MB"), ("Gb", "GB")]
)
def test_unknown_unit_raises(source: str, target: str) -> None:
    # given / when / then (symbols are case-sensitive: mb and Gb are not registered)
    with pytest.raises(units.UnknownUnit):
        units.convert(Decimal(1), source, target)


def test_registry_factors_match_the_independent_tables() -> None:
    # given
    expected = {**BYTE_FACTORS, **TIMED_FACTORS}

    # when
    actual = {name: units.unit(name).factor for name in expected}

    # then
    assert actual == {name: Decimal(f) for name, f in expected.items()}


@given(
    x=amounts,
    a=st.sampled_from(sorted(BYTE_FACTORS)),
    b=st.sampled_from(sorted(BYTE_FACTORS)),
)
def test_byte_conversions_round_trip_and_keep_the_base_quantity(x: Decimal, a: str, b: str) -> None:
    # given: two byte units

    # when
    try:
        there = units.convert(x, a, b)
        back = units.convert(there, b, a)
    except units.InexactConversion:
        assume(False)
        raise  # unreachable: assume(False) aborts the example

    # then
    assert back == x
    assert WIDE.multiply(there, Decimal(BYTE_FACTORS[b])) == WIDE.multiply(
        x, Decimal(BYTE_FACTORS[a])
    )


@given(
    x=amounts,
    a=st.sampled_from(sorted(TIMED_FACTORS)),
    b=st.sampled_from(sorted(TIMED_FACTORS)),
)
@example(x=Decimal(1), a="vCPU-second", b="vCPU-hour")
@example(x=Decimal(123456), a="vCPU-second", b="vCPU-hour")
@example(x=Decimal(5), a="GB-second", b="GB-hour")
def test_timed_conversions_are_exact_or_refused(x: Decimal, a: str, b: str) -> None:
    # given: two time-based units (ratios such as 1/3600 do not always terminate)
    assume(units.unit(a).dimension is units.unit(b).dimension)

    # when
    try:
        result = units.convert(x, a, b)
    except units.InexactConversion:
        return  # refused: the caller keeps the pulse in its own unit

    # then: a returned quantity must be exact, never rounded
    assert WIDE.multiply(result, Decimal(TIMED_FACTORS[b])) == WIDE.multiply(
        x, Decimal(TIMED_FACTORS[a])
    )


@given(
    x=amounts,
    a=st.sampled_from(sorted(units.UNITS)),
    b=st.sampled_from(sorted(units.UNITS)),
)
@example(x=Decimal(7), a="vCPU-minute", b="vCPU-hour")
@example(x=Decimal(1), a="GB-second", b="GB-hour")
@example(x=Decimal(3600), a="GB-second", b="GB-hour")
@example(x=Decimal("0.5"), a="MiB", b="KB")
@example(x=Decimal(1), a="GB", b="vCPU-hour")
def test_check_convertible_refuses_exactly_what_convert_refuses(x: Decimal, a: str, b: str) -> None:
    # given: any two units (the ingestor asks check_convertible, pricing calls convert)
    def outcome(step: Callable[[], object]) -> str:
        try:
            step()
        except (units.IncompatibleUnits, units.InexactConversion) as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    # when / then
    assert outcome(lambda: units.check_convertible(x, a, b)) == outcome(
        lambda: units.convert(x, a, b)
    )
