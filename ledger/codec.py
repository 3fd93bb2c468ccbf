"""The bytes of a pulse in the log (protobuf pulse.v1.Pulse) and back; undecodable -> error."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from kernel.decimals import plain
from ledger.model import Pulse, to_micros
from ledger.validation import RECHECK, Rejection
from proto.pulse.v1 import pulse_pb2

CONTENT_TYPE = "application/x-protobuf; messageType=pulse.v1.Pulse"


class UndecodableRecord(ValueError):
    """A log record that is not a valid encoded pulse (it goes to the dead-letter topic)."""


class InvalidRecord(UndecodableRecord):
    """A well-formed pulse that breaks a rule of the ingestor ("field: reason")."""


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
    """The pulse encoded in `data`; raises UndecodableRecord with the reason, InvalidRecord
    when it breaks a rule of the ingestor (a record written to the log by another producer
    must not reach the ledger's sums: an amount past the bounds would overflow them)."""
    message = pulse_pb2.Pulse()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise UndecodableRecord(f"not a pulse.v1.Pulse: {exc}") from None
    ts = message.occurred_at
    seconds, nanos = ts.seconds, ts.nanos
    # Unset and set to the epoch differ only in presence (and the epoch is refused anyway).
    has_time = seconds != 0 or nanos != 0 or message.HasField("occurred_at")
    checked = RECHECK.pulse(message, seconds if has_time else None, nanos)
    if isinstance(checked, Rejection):
        raise InvalidRecord(f"{checked.field}: {checked.reason}")
    return checked
