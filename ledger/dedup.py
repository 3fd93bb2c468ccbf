"""Classifies a batch of decoded events into new, duplicate and conflicting (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ledger.model import LedgerEvent
from ledger.ports import ConflictRecord


@dataclass(frozen=True)
class Classified:
    new: list[LedgerEvent] = field(default_factory=list)
    duplicates: list[LedgerEvent] = field(default_factory=list)
    conflicts: list[ConflictRecord] = field(default_factory=list)


def classify(events: Sequence[LedgerEvent], seen: Mapping[tuple[str, str], str]) -> Classified:
    """Events in log order; `seen` maps ids already in the ledger to their payload hash.

    The first occurrence of an id (in the ledger, else in log order within the batch) wins;
    an identical payload later is a duplicate (a retry or a redelivery), a different payload
    is a conflict.
    """
    result = Classified()
    first: dict[tuple[str, str], str] = dict(seen)
    for event in events:
        key = (event.pulse.tenant_id, event.pulse.pulse_id)
        known = first.get(key)
        if known is None:
            first[key] = event.payload_hash
            result.new.append(event)
        elif known == event.payload_hash:
            result.duplicates.append(event)
        else:
            result.conflicts.append(ConflictRecord(event, known))
    return result
