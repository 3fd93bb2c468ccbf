"""Turns an ingest request into per-pulse results and the records to publish (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.ports import OutgoingRecord
from ledger.validation import MAX_ID, BillingUnitOf, RawPulse, Rejection, validate
from proto.pulse.v1 import pulse_pb2


@dataclass(frozen=True)
class Checked:
    """The response to give once `records` are durable, and the records themselves."""

    results: list[pulse_pb2.PulseResult]
    records: list[OutgoingRecord]


def raw_of(message: pulse_pb2.Pulse) -> RawPulse:
    has_time = message.HasField("occurred_at")
    return RawPulse(
        pulse_id=message.pulse_id,
        tenant_id=message.tenant_id,
        product_sku=message.product_sku,
        used_amount=message.used_amount,
        use_unit=message.use_unit,
        occurred_seconds=message.occurred_at.seconds if has_time else None,
        occurred_nanos=message.occurred_at.nanos if has_time else 0,
        resource_id=message.resource_id,
        region=message.region,
        source=message.source,
        attributes=message.attributes,
    )


def check_batch(
    pulses: Sequence[pulse_pb2.Pulse],
    now: datetime,
    future_skew: timedelta,
    billing_unit_of: BillingUnitOf,
    *,
    may_send: Callable[[str], bool] | None = None,
) -> Checked:
    """Validates each pulse; valid ones become records keyed by tenant (one partition per
    tenant keeps a tenant's pulses in order, which the writer's dedup relies on).

    `may_send` (the caller's key) refuses pulses of tenants the key is not for, one by one:
    the rest of the batch is still processed."""
    accepted = pulse_pb2.PulseResult.ACCEPTED
    rejected = pulse_pb2.PulseResult.REJECTED
    results: list[pulse_pb2.PulseResult] = []
    records: list[OutgoingRecord] = []
    for message in pulses:
        if may_send is not None and not may_send(message.tenant_id):
            results.append(
                pulse_pb2.PulseResult(
                    status=rejected,
                    pulse_id=message.pulse_id[:MAX_ID],
                    field="tenant_id",
                    reason="this API key may not send pulses for this tenant",
                )
            )
            continue
        outcome = validate(raw_of(message), now, future_skew, billing_unit_of)
        if isinstance(outcome, Rejection):
            results.append(
                pulse_pb2.PulseResult(
                    status=rejected,
                    pulse_id=outcome.pulse_id,
                    field=outcome.field,
                    reason=outcome.reason,
                )
            )
            continue
        results.append(pulse_pb2.PulseResult(status=accepted, pulse_id=outcome.pulse_id))
        # The validated message already is the log's encoding of the pulse (codec.decode
        # normalizes amount text and time precision the same way validation did); sending
        # it as is saves building a second message per pulse on the hot path.
        records.append(
            OutgoingRecord(
                outcome.tenant_id.encode(), message.SerializeToString(deterministic=True)
            )
        )
    return Checked(results, records)
