"""The bytes of a pulse in the log (protobuf pulse.v1.Pulse) and back; undecodable -> error."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from google.protobuf.message import DecodeError

from kernel.decimals import plain
from ledger.model import Pulse, from_micros, to_micros
from proto.pulse.v1 import pulse_pb2

CONTENT_TYPE = "application/x-protobuf; messageType=pulse.v1.Pulse"


class UndecodableRecord(ValueError):
    """A log record that is not a valid encoded pulse (it goes to the dead-letter topic)."""


def encode(pulse: Pulse) -> bytes:
    message = pulse_pb2.Pulse(
        pulse_id=pulse.pulse_id,
        tenant_id=pulse.tenant_id,
        product_sku=pulse.product_sku,
        used_amount=plain(pulse.used_amount),
        use_unit=pulse.use_unit,
        resource_id=pulse.resource_id,
        region=pulse.region,
        source=pulse.source,
        attributes=dict(pulse.attributes),
    )
    micros = to_micros(pulse.occurred_at)
    message.occurred_at.seconds = micros // 1_000_000
    message.occurred_at.nanos = (micros % 1_000_000) * 1000
    return message.SerializeToString(deterministic=True)


def decode(data: bytes) -> Pulse:
    """The pulse encoded in `data`; raises UndecodableRecord with the reason."""
    message = pulse_pb2.Pulse()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise UndecodableRecord(f"not a pulse.v1.Pulse: {exc}") from None
    if not (message.pulse_id and message.tenant_id and message.HasField("occurred_at")):
        raise UndecodableRecord("pulse_id, tenant_id or occurred_at missing")
    try:
        amount = Decimal(message.used_amount)
    except InvalidOperation:
        raise UndecodableRecord(f"used_amount {message.used_amount!r} is not decimal") from None
    if not amount.is_finite() or (amount.is_signed() and not amount.is_zero()):
        raise UndecodableRecord(f"used_amount {message.used_amount!r} is not a usage amount")
    amount = amount.copy_abs()  # "-0" is zero
    ts = message.occurred_at
    try:
        occurred_at = from_micros(ts.seconds * 1_000_000 + ts.nanos // 1000)
    except OverflowError:
        raise UndecodableRecord(f"occurred_at {ts.seconds} s is out of range") from None
    return Pulse(
        pulse_id=message.pulse_id,
        tenant_id=message.tenant_id,
        product_sku=message.product_sku,
        used_amount=amount,
        use_unit=message.use_unit,
        occurred_at=occurred_at,
        resource_id=message.resource_id,
        region=message.region,
        source=message.source,
        attributes=tuple(sorted(message.attributes.items())),
    )
