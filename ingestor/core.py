"""Turns an ingest request into per-pulse results and the records to publish (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.ports import OutgoingRecord
from ledger.validation import MAX_ID, BillingUnitOf, Validator
from proto.pulse.v1 import pulse_pb2


@dataclass(frozen=True)
class Checked:
    """The response to give once `records` are durable, and the records themselves."""

    response: pulse_pb2.IngestResponse
    records: list[OutgoingRecord]
    rejected: int


def check_batch(
    pulses: Sequence[pulse_pb2.Pulse],
    now: datetime,
    future_skew: timedelta,
    billing_unit_of: BillingUnitOf,
    *,
    may_send: Callable[[str], bool] | None = None,
    encoded: Sequence[bytes] | None = None,
) -> Checked:
    """Validates each pulse; valid ones become records keyed by tenant (one partition per
    tenant keeps a tenant's pulses in order, which the writer's dedup relies on).

    `may_send` (the caller's key) refuses pulses of tenants the key is not for, one by one:
    the rest of the batch is still processed. `encoded[i]`, when given, is the encoding of
    `pulses[i]` as received; it must parse to exactly that message (ingestor.wire)."""
    validator = Validator(now, future_skew, billing_unit_of)
    accepted = pulse_pb2.PulseResult.ACCEPTED
    rejected = pulse_pb2.PulseResult.REJECTED
    response = pulse_pb2.IngestResponse()
    add = response.results.add
    records: list[OutgoingRecord] = []
    refused = 0
    for index, message in enumerate(pulses):
        tenant_id = message.tenant_id
        if may_send is not None and not may_send(tenant_id):
            refused += 1
            add(
                status=rejected,
                pulse_id=message.pulse_id[:MAX_ID],
                field="tenant_id",
                reason="this API key may not send pulses for this tenant",
            )
            continue
        ts = message.occurred_at
        seconds, nanos = ts.seconds, ts.nanos
        # HasField only tells unset from the epoch (both read as 0, and both are refused).
        has_time = seconds != 0 or nanos != 0 or message.HasField("occurred_at")
        rejection = validator.rejection(message, seconds if has_time else None, nanos)
        if rejection is not None:
            refused += 1
            add(
                status=rejected,
                pulse_id=rejection.pulse_id,
                field=rejection.field,
                reason=rejection.reason,
            )
            continue
        add(status=accepted, pulse_id=message.pulse_id)
        # The log's decoder (codec.decode) parses the record and re-applies validation's
        # rules, normalizing amount text and time precision the same way: the bytes the
        # sender encoded serve as they are; without them, the message is encoded once.
        value = (
            encoded[index] if encoded is not None else message.SerializeToString(deterministic=True)
        )
        records.append(OutgoingRecord(tenant_id.encode(), value))
    return Checked(response, records, refused)
