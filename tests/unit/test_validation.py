"""validate(): every rule names its field; valid input comes back unchanged; it never raises."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kernel import units
from kernel.text import unsafe_character
from ledger.model import Pulse
from ledger.validation import RawPulse, Rejection, validate
from tests.unit.helpers import NOW, SKEW, T0, catalog, raw

BILLING = catalog().billing_unit
NOW_S = int(NOW.timestamp())


def rejected_field(candidate: RawPulse) -> str:
    outcome = validate(candidate, NOW, SKEW, BILLING)
    assert isinstance(outcome, Rejection), f"expected a rejection, got {outcome!r}"
    assert outcome.reason
    return outcome.field


def accepted(candidate: RawPulse) -> Pulse:
    outcome = validate(candidate, NOW, SKEW, BILLING)
    assert isinstance(outcome, Pulse), f"expected a pulse, got {outcome!r}"
    return outcome


@pytest.mark.parametrize(
    ("candidate", "field"),
    [
        (raw(pulse_id=""), "pulse_id"),
        (raw(pulse_id="x" * 129), "pulse_id"),
        (raw(pulse_id="a\nb"), "pulse_id"),
        (raw(pulse_id=" p-1"), "pulse_id"),
        (raw(tenant=""), "tenant_id"),
        (raw(tenant="t" * 129), "tenant_id"),
        (raw(tenant="acme corp"), "tenant_id"),
        (raw(tenant="acme/eu"), "tenant_id"),
        (raw(tenant="ácme"), "tenant_id"),
        (raw(tenant="acme\n"), "tenant_id"),
        (raw(sku=""), "product_sku"),
        (raw(sku="s" * 129), "product_sku"),
        (raw(sku="sku\x00"), "product_sku"),
        (raw(unit=""), "use_unit"),
        (raw(unit="parsec"), "use_unit"),
        (raw(unit="gb"), "use_unit"),
        (raw(seconds=None), "occurred_at"),
        (raw(nanos=-1), "occurred_at"),
        (raw(nanos=1_000_000_000), "occurred_at"),
        (raw(seconds=10**15), "occurred_at"),
        (raw(seconds=-(10**15)), "occurred_at"),
        (raw(resource_id="r" * 257), "resource_id"),
        (raw(region="r" * 257), "region"),
        (raw(source="s" * 257), "source"),
        (raw(attributes={f"k{i}": "v" for i in range(33)}), "attributes"),
        (raw(attributes={"": "v"}), "attributes"),
        (raw(attributes={"k" * 65: "v"}), "attributes"),
        (raw(attributes={"k": "v" * 257}), "attributes"),
    ],
)
def test_each_rule_names_its_field(candidate: RawPulse, field: str) -> None:
    # given a pulse broken in exactly one field / when / then
    assert rejected_field(candidate) == field


def test_rejection_carries_the_pulse_id_truncated_to_128() -> None:
    # given
    candidate = raw(pulse_id="x" * 500)

    # when
    outcome = validate(candidate, NOW, SKEW, BILLING)

    # then
    assert isinstance(outcome, Rejection)
    assert outcome.pulse_id == "x" * 128


NASTY_AMOUNTS = [
    "",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "-1",
    "-0.5",
    "1e400",
    "1e20",
    "100000000000000000000",
    "0.0000000000000000001",
    "abc",
    " 1",
    "1 ",
    "1,5",
    "0x10",
    "1" * 65,
]


@pytest.mark.parametrize("amount", NASTY_AMOUNTS)
def test_nasty_amounts_are_rejected_naming_used_amount(amount: str) -> None:
    # given / when / then
    assert rejected_field(raw(amount=amount, unit="B", sku="x")) == "used_amount"


@pytest.mark.parametrize(
    "amount",
    [
        "0",
        "-0",
        "1e19",
        "0.000000000000000001",
        "1.500000000000000000",
        "12345678901234567890",
        pytest.param(
            "99999999999999999999.999999999999999999",
        ),
        pytest.param(
            "12345678901234567890.123456789012345678",
        ),
    ],
)
def test_edge_amounts_are_accepted_exactly(amount: str) -> None:
    # given / when
    pulse = accepted(raw(amount=amount, unit="B", sku="x"))

    # then: numerically equal, nothing rounded
    assert pulse.used_amount == Decimal(amount)


def test_more_than_18_decimals_are_rejected_even_past_28_digits() -> None:
    # given / when / then
    assert rejected_field(raw(amount="1.000000000000000000000000000000001")) == "used_amount"


def test_a_tiny_nonzero_amount_is_not_turned_into_zero() -> None:
    # given / when / then
    assert rejected_field(raw(amount="1e-9999999")) == "used_amount"


@pytest.mark.parametrize(
    ("sku", "unit", "amount"),
    [
        ("network.egress", "vCPU-hour", "1"),  # billed in GB
        ("compute.vcpu", "GB", "1"),
        ("network.egress", "GB-hour", "1"),
        ("compute.vcpu", "vCPU-minute", "7"),  # 7/60 hour does not terminate
    ],
)
def test_units_the_product_cannot_bill_exactly_are_rejected(
    sku: str, unit: str, amount: str
) -> None:
    # given / when / then
    assert rejected_field(raw(sku=sku, unit=unit, amount=amount)) == "use_unit"


def test_incompatible_unit_with_a_gb_billing_unit() -> None:
    # given
    def billed_in_gb(_sku: str) -> str | None:
        return "GB"

    # when
    outcome = validate(raw(sku="any", unit="vCPU-hour"), NOW, SKEW, billed_in_gb)

    # then
    assert isinstance(outcome, Rejection)
    assert outcome.field == "use_unit"
    assert "vCPU-hour" in outcome.reason and "GB" in outcome.reason


def test_one_vcpu_second_cannot_be_billed_exactly_in_vcpu_hours() -> None:
    # given / when / then
    assert rejected_field(raw(sku="compute.vcpu", unit="vCPU-second", amount="1")) == "use_unit"


def test_unknown_sku_is_accepted_in_any_known_unit() -> None:
    # given / when
    pulse = accepted(raw(sku="not.in.catalog", unit="vCPU-minute", amount="7"))

    # then
    assert (pulse.product_sku, pulse.use_unit) == ("not.in.catalog", "vCPU-minute")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        NOW + SKEW + timedelta(seconds=1),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
    ],
)
def test_times_out_of_range_are_rejected(moment: datetime) -> None:
    # given / when / then
    assert rejected_field(raw(seconds=int(moment.timestamp()))) == "occurred_at"


@pytest.mark.parametrize(
    "moment", [NOW + SKEW, datetime(2000, 1, 1, tzinfo=UTC), NOW - timedelta(days=3650)]
)
def test_times_at_the_edges_are_accepted(moment: datetime) -> None:
    # given / when
    pulse = accepted(raw(seconds=int(moment.timestamp())))

    # then
    assert pulse.occurred_at == moment


def test_nanos_are_truncated_to_microseconds() -> None:
    # given
    candidate = raw(seconds=int(T0.timestamp()), nanos=123_456_789)

    # when
    pulse = accepted(candidate)

    # then
    assert pulse.occurred_at == T0 + timedelta(microseconds=123_456)
    assert pulse.occurred_at.tzinfo is not None


def test_thirty_two_attributes_are_accepted_and_sorted() -> None:
    # given
    attributes = {f"k{i:02d}": "v" * 256 for i in reversed(range(32))}

    # when
    pulse = accepted(raw(attributes=attributes))

    # then
    assert pulse.attributes == tuple((f"k{i:02d}", "v" * 256) for i in range(32))


# --- properties ----------------------------------------------------------------------------

# Any text without controls, separators or bidi formatting characters (kernel.text).
safe = st.characters(
    exclude_categories=("Cc", "Cs"),
    exclude_characters="\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
)
ids = st.text(safe, min_size=1, max_size=128).filter(lambda s: s == s.strip())
# Up to 38 significant digits, built from text so no context rounds them.
amounts = st.integers(0, 18).flatmap(
    lambda places: st.builds(
        lambda digits: Decimal(f"{digits}E-{places}"),
        st.integers(0, 10 ** (20 + places) - 1),
    )
)


@given(
    pulse_id=ids,
    tenant=st.from_regex(r"[A-Za-z0-9._:\-]{1,128}", fullmatch=True),
    sku=ids,
    amount=amounts,
    scientific=st.booleans(),
    unit=st.sampled_from(sorted(units.UNITS)),
    seconds=st.integers(int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()), NOW_S),
    nanos=st.integers(0, 999_999_999),
    texts=st.tuples(*[st.text(safe, max_size=256)] * 3),
    attributes=st.dictionaries(
        st.text(safe, min_size=1, max_size=64), st.text(safe, max_size=256), max_size=32
    ),
)
def test_valid_fields_come_back_unchanged(
    pulse_id: str,
    tenant: str,
    sku: str,
    amount: Decimal,
    scientific: bool,
    unit: str,
    seconds: int,
    nanos: int,
    texts: tuple[str, str, str],
    attributes: Mapping[str, str],
) -> None:
    # given
    text = str(amount) if scientific else format(amount, "f")
    candidate = RawPulse(pulse_id, tenant, sku, text, unit, seconds, nanos, *texts, attributes)

    # when
    pulse = validate(candidate, NOW, SKEW)

    # then
    assert isinstance(pulse, Pulse), pulse
    assert (pulse.pulse_id, pulse.tenant_id, pulse.product_sku) == (pulse_id, tenant, sku)
    assert pulse.used_amount == amount
    assert pulse.use_unit == unit
    expected_time = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        seconds=seconds, microseconds=nanos // 1000
    )
    assert pulse.occurred_at == expected_time
    assert (pulse.resource_id, pulse.region, pulse.source) == texts
    assert pulse.attributes == tuple(sorted(attributes.items()))


@given(
    fields=st.tuples(*[st.text()] * 5),
    seconds=st.none() | st.integers(-(2**63), 2**63 - 1),
    nanos=st.integers(-(2**31), 2**31 - 1),
    texts=st.tuples(*[st.text()] * 3),
    attributes=st.none() | st.dictionaries(st.text(), st.text()),
)
def test_arbitrary_text_gets_a_pulse_or_a_rejection(
    fields: tuple[str, str, str, str, str],
    seconds: int | None,
    nanos: int,
    texts: tuple[str, str, str],
    attributes: Mapping[str, str] | None,
) -> None:
    # given
    candidate = RawPulse(*fields, seconds, nanos, *texts, attributes)

    # when
    outcome = validate(candidate, NOW, SKEW, BILLING)

    # then
    assert isinstance(outcome, Pulse | Rejection)


@given(amount=st.from_regex(r"-?[0-9]{0,25}(\.[0-9]{0,40})?([eE][-+]?[0-9]{1,8})?", fullmatch=True))
@example(amount="1e1000000")
def test_decimal_shaped_text_gets_a_pulse_or_a_rejection(amount: str) -> None:
    # given
    candidate = raw(amount=amount, unit="B", sku="x")

    # when
    outcome = validate(candidate, NOW, SKEW, BILLING)

    # then
    assert isinstance(outcome, Pulse | Rejection)


# Characters that rewrite what a terminal, a log line or a report shows: C0/C1 controls, NUL,
# ESC, DEL, line/paragraph separators and the bidirectional embeddings, overrides, isolates.
HOSTILE_CHARACTERS = [
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9b",
    "\u2028",
    "\u2029",
    *[chr(c) for c in range(0x202A, 0x202F)],
    *[chr(c) for c in range(0x2066, 0x206A)],
]
HOSTILE_FIELDS = {
    "pulse_id": lambda text: raw(pulse_id=f"p{text}1"),
    "product_sku": lambda text: raw(sku=f"sku{text}x"),
    "resource_id": lambda text: raw(resource_id=f"vm{text}1"),
    "region": lambda text: raw(region=f"br{text}ne1"),
    "source": lambda text: raw(source=f"svc{text}"),
    "attributes": lambda text: raw(attributes={"env": f"prod{text}"}),
    "attributes ": lambda text: raw(attributes={f"e{text}nv": "prod"}),
}


@pytest.mark.parametrize("character", HOSTILE_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("field", sorted(HOSTILE_FIELDS))
def test_control_and_bidi_characters_are_rejected_naming_the_field(
    field: str, character: str
) -> None:
    # given a pulse with one hostile character in one text field
    candidate = HOSTILE_FIELDS[field](character)

    # when
    outcome = validate(candidate, NOW, SKEW, BILLING)

    # then
    assert isinstance(outcome, Rejection), f"{field} with U+{ord(character):04X} was accepted"
    assert outcome.field == field.strip()
    assert f"U+{ord(character):04X}" in outcome.reason


@pytest.mark.parametrize("text", ["café", "東京", "région-é", "a b", "x\u200dy"])
def test_ordinary_unicode_text_is_accepted(text: str) -> None:
    # given / when / then
    assert accepted(raw(pulse_id=f"p-{text}", resource_id=text, attributes={"k": text}))


def _unsafe_by_the_rule(character: str) -> bool:
    """The module doc's list, written out: C0 controls, DEL, C1 controls, the line and
    paragraph separators, bidi embeddings/overrides (U+202A-E) and isolates (U+2066-9)."""
    code = ord(character)
    return (
        code <= 0x1F
        or 0x7F <= code <= 0x9F
        or code in (0x2028, 0x2029)
        or 0x202A <= code <= 0x202E
        or 0x2066 <= code <= 0x2069
    )


@pytest.mark.parametrize("block", range(0, 0x2100, 0x100), ids=hex)
def test_every_character_is_judged_by_the_rule(block: int) -> None:
    # given: each character of the block alone and inside ASCII text (the fast path)
    for code in range(block, block + 0x100):
        character = chr(code)
        for value in (character, f"ab{character}cd"):
            # when
            found = unsafe_character(value)

            # then
            assert (found is not None) == _unsafe_by_the_rule(character), hex(code)


def _amount_by_the_rule(text: str) -> bool | None:
    """The DESIGN rule in plain Decimal arithmetic: finite, >= 0, < 1e20, at most 18
    decimal places once trailing zeros are dropped. None: not decimal-shaped."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        return None
    if not value.is_finite():
        return False
    if value.is_zero():
        return True
    exact = Context(prec=200, Emax=10**9, Emin=-(10**9))
    exponent = value.normalize(exact).as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    return value > 0 and value < Decimal("1e20") and exponent >= -18


@given(
    amount=st.from_regex(r"[-+]?[0-9]{0,25}(\.[0-9]{0,40})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
)
@example(amount="1.0000000000000000000")  # 19 places, all but 1 trailing zeros
@example(amount="0.0000000000000000001")
@example(amount="1000000000000000000000e-20")
@example(amount="99999999999999999999.999999999999999999")
@example(amount="-0.0")
def test_amounts_are_accepted_exactly_by_the_rule(amount: str) -> None:
    # given
    expected = _amount_by_the_rule(amount)

    # when
    outcome = validate(raw(amount=amount, unit="B", sku="x"), NOW, SKEW, BILLING)

    # then
    if expected is None:
        assert isinstance(outcome, Rejection)
    else:
        assert isinstance(outcome, Pulse) == expected, outcome
        if isinstance(outcome, Pulse):
            assert outcome.used_amount == Decimal(amount)
