"""The log encoding of a pulse, its payload hash, positions and exact time arithmetic."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import codec
from ledger.model import Position, Pulse, from_micros, hour_of, to_micros
from proto.pulse.v1 import pulse_pb2
from tests.unit.helpers import T0, pulse

# Pulses the ingestor accepts: decode checks its rules again.
# What the ingestor accepts in free-text fields: no control, separator or format characters
# (decode re-checks the ingestor's rules, so only such pulses round-trip).
texts = st.text(st.characters(exclude_categories=["Cs", "Cc", "Cf", "Zl", "Zp"]), max_size=40)
ids = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40).filter(
    lambda s: s == s.strip()
)
tenants = st.from_regex(r"[A-Za-z0-9._:\-]{1,40}", fullmatch=True)
known_units = st.sampled_from(["B", "KB", "GB", "GiB", "GB-hour", "vCPU-hour", "request"])
# At most 28 significant digits: see test_encode_keeps_all_38_digits for what happens past that.
amounts = st.integers(0, 18).flatmap(
    lambda places: st.builds(
        lambda digits: Decimal(digits).scaleb(-places),
        st.integers(0, min(10**28, 10 ** (20 + places)) - 1),
    )
)
# hypothesis takes naive bounds and attaches the time zone itself
moments = st.datetimes(
    min_value=datetime(2000, 1, 1, tzinfo=UTC).replace(tzinfo=None),
    max_value=datetime(2200, 1, 1, tzinfo=UTC).replace(tzinfo=None),
    timezones=st.just(UTC),
)
pulses = st.builds(
    Pulse,
    pulse_id=ids,
    tenant_id=tenants,
    product_sku=ids,
    used_amount=amounts,
    use_unit=known_units,
    occurred_at=moments,
    resource_id=texts,
    region=texts,
    source=texts,
    attributes=st.dictionaries(texts.filter(bool), texts, max_size=5).map(
        lambda d: tuple(sorted(d.items()))
    ),
)


@given(p=pulses)
def test_encode_decode_round_trip(p: Pulse) -> None:
    # given a pulse / when
    back = codec.decode(codec.encode(p))

    # then: equal field by field (the amount in value)
    assert dataclasses.replace(back, used_amount=Decimal(0)) == dataclasses.replace(
        p, used_amount=Decimal(0)
    )
    assert back.used_amount == p.used_amount


def test_encode_keeps_all_38_digits() -> None:
    # given: the largest amount shape the contract allows (20 + 18 digits)
    p = pulse(amount="12345678901234567890.123456789012345678")

    # when
    back = codec.decode(codec.encode(p))

    # then
    assert back.used_amount == Decimal("12345678901234567890.123456789012345678")


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe garbage", b"\x0a\x05ab", b"", b"\x0a\x01p", b"\x0a\x01p\x12\x01t"],
    ids=["garbage", "truncated", "empty", "no-tenant", "no-time"],
)
def test_undecodable_bytes_raise_undecodable_record(data: bytes) -> None:
    # given bytes that are not a complete pulse / when / then
    with pytest.raises(codec.UndecodableRecord):
        codec.decode(data)


@pytest.mark.parametrize("amount", ["", "abc", "-1", "NaN", "Infinity"])
def test_a_bad_amount_in_the_log_is_undecodable(amount: str) -> None:
    # given
    message = pulse_pb2.Pulse(pulse_id="p", tenant_id="t", used_amount=amount, use_unit="B")
    message.occurred_at.seconds = int(T0.timestamp())

    # when / then
    with pytest.raises(codec.UndecodableRecord):
        codec.decode(message.SerializeToString())


def test_a_time_out_of_range_in_the_log_is_undecodable() -> None:
    # given
    message = pulse_pb2.Pulse(pulse_id="p", tenant_id="t", used_amount="1", use_unit="B")
    message.occurred_at.seconds = 2**62

    # when / then
    with pytest.raises(codec.UndecodableRecord):
        codec.decode(message.SerializeToString())


@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_undecodable_record(data: bytes) -> None:
    # given arbitrary bytes / when / then: no other exception escapes
    try:
        outcome = codec.decode(data)
    except codec.UndecodableRecord:
        return
    assert isinstance(outcome, Pulse)


def test_payload_hash_is_the_stored_format() -> None:
    """Hashes stored by earlier releases must still match: SHA-256 of the compact JSON list
    of the fields (amount as plain text, time in microseconds, attributes sorted, non-ASCII
    kept as is)."""
    # given
    p = pulse(
        "é-1",
        amount="0.50",
        tenant="acme",
        attributes=(("zone", "são-paulo"), ("az", "1")),
    )
    text = (
        '["acme","é-1","network.egress","0.5","GB",'
        f'{to_micros(p.occurred_at)},"","","",[["az","1"],["zone","são-paulo"]]]'
    )
    # when / then
    assert p.payload_hash() == hashlib.sha256(text.encode()).hexdigest()


def test_payload_hash_ignores_trailing_zeros_and_attribute_order() -> None:
    # given
    a = pulse(amount="1.5", attributes=(("a", "1"), ("b", "2")))
    b = pulse(amount="1.50", attributes=(("b", "2"), ("a", "1")))

    # when / then
    assert a.payload_hash() == b.payload_hash()


@pytest.mark.parametrize(
    "change",
    [
        {"pulse_id": "p-2"},
        {"tenant_id": "other"},
        {"product_sku": "storage.block"},
        {"used_amount": Decimal("1.5000001")},
        {"use_unit": "GiB"},
        {"occurred_at": T0 + timedelta(microseconds=1)},
        {"resource_id": "vm-1"},
        {"region": "br-se1"},
        {"source": "nova"},
        {"attributes": (("a", "1"),)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_payload_hash_differs_when_any_field_differs(change: dict[str, object]) -> None:
    # given
    base = pulse()

    # when
    other = dataclasses.replace(base, **change)  # type: ignore[arg-type]

    # then
    assert other.payload_hash() != base.payload_hash()


def test_payload_hash_differs_in_the_38th_digit() -> None:
    # given: two payloads that differ only in the last allowed decimal
    a = pulse(amount="12345678901234567890.123456789012345678")
    b = pulse(amount="12345678901234567890.123456789012345679")

    # when / then: otherwise a conflict is taken for a retry and silently dropped
    assert a.payload_hash() != b.payload_hash()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0:1500", Position(0, 1500)), ("12:0", Position(12, 0)), ("007:08", Position(7, 8))],
)
def test_position_parses_partition_and_offset(text: str, expected: Position) -> None:
    # given / when / then
    assert Position.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "0", ":1", "1:", "a:1", "1:b", "-1:0", "0:-1", "1:2:3", " 1:2", "1.5:2", "0x1:2"]
)
def test_position_rejects_malformed_text_naming_it(text: str) -> None:
    # given / when
    with pytest.raises(ValueError) as caught:
        Position.parse(text)

    # then
    assert repr(text) in str(caught.value)


def test_position_prints_as_it_parses() -> None:
    # given / when / then
    assert str(Position(3, 42)) == "3:42"


@pytest.mark.parametrize(
    ("moment", "hour"),
    [
        (
            datetime(2024, 5, 1, 10, 59, 59, 999_999, tzinfo=UTC),
            datetime(2024, 5, 1, 10, tzinfo=UTC),
        ),
        (datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (
            datetime(2024, 5, 1, 1, 30, tzinfo=timezone(timedelta(hours=3))),
            datetime(2024, 4, 30, 22, tzinfo=UTC),
        ),
    ],
)
def test_hour_of_is_the_utc_hour(moment: datetime, hour: datetime) -> None:
    # given / when
    bucket = hour_of(moment)

    # then: same instant and expressed in UTC
    assert bucket == hour
    assert bucket.utcoffset() == timedelta(0)


def test_to_micros_of_known_instants() -> None:
    # given / when / then
    assert to_micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert to_micros(datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=UTC)) == 1_714_557_600_000_001
    assert to_micros(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1


@given(micros=st.integers(-(10**16), 10**17))
def test_micros_round_trip(micros: int) -> None:
    # given microseconds since the epoch / when / then
    assert to_micros(from_micros(micros)) == micros


@given(moment=st.datetimes(timezones=st.just(UTC)))
def test_datetimes_round_trip_through_micros(moment: datetime) -> None:
    # given / when / then
    assert from_micros(to_micros(moment)) == moment


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("used_amount", "1" + "0" * 30, "used_amount"),  # past 1e20: would overflow the sums
        ("used_amount", "0." + "0" * 18 + "1", "used_amount"),  # 19 decimal places
        ("tenant_id", "a tenant", "tenant_id"),
        ("use_unit", "parsecs", "use_unit"),
        ("pulse_id", "x" * 129, "pulse_id"),
    ],
)
def test_a_record_that_breaks_the_ingestor_rules_is_invalid(
    field: str, value: str, named: str
) -> None:
    # given: a record that reached the log without the ingestor (another producer, a replay)
    message = pulse_pb2.Pulse(pulse_id="p", tenant_id="t", product_sku="s", used_amount="1")
    message.use_unit = "B"
    setattr(message, field, value)
    message.occurred_at.seconds = int(T0.timestamp())
    # when / then: the same rules as at ingestion, the field named
    with pytest.raises(codec.InvalidRecord) as caught:
        codec.decode(message.SerializeToString())
    assert str(caught.value).startswith(f"{named}: ")
