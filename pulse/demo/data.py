"""A sample day of pulses for a few tenants, with the awkward cases a ledger must survive."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import make_pulse

TENANTS = ("acme", "globex", "initech")


@dataclass(frozen=True)
class SampleDay:
    """Batches to send in order, and what the demo expects to see happen."""

    batches: list[list[pulse_pb2.Pulse]]
    duplicates: int
    conflicts: int
    invalid: int


def _usage_of_hour(rng: random.Random, tenant: str, hour: datetime) -> list[pulse_pb2.Pulse]:
    day_hour = hour.strftime("%Y%m%dT%H")
    vcpus = {"acme": 8, "globex": 32, "initech": 2}[tenant]
    busy = 1.0 if 8 <= hour.hour < 20 else 0.4
    pulses = [
        make_pulse(
            f"{tenant}-vm-{day_hour}",
            tenant,
            "compute.vcpu",
            Decimal(vcpus),
            "vCPU-hour",
            hour + timedelta(minutes=59),
            resource_id=f"{tenant}-vm-1",
            region="br-se1",
            source="compute",
        ),
        make_pulse(
            f"{tenant}-mem-{day_hour}",
            tenant,
            "compute.memory",
            Decimal(vcpus * 4),
            "GiB-hour",
            hour + timedelta(minutes=59),
            resource_id=f"{tenant}-vm-1",
            region="br-se1",
            source="compute",
        ),
        make_pulse(
            f"{tenant}-vol-{day_hour}",
            tenant,
            "storage.block",
            Decimal(500),
            "GB-hour",
            hour + timedelta(minutes=58),
            resource_id=f"{tenant}-vol-1",
            region="br-se1",
            source="block-storage",
        ),
    ]
    for quarter in range(4):
        egress_mb = Decimal(int(rng.uniform(50, 900) * busy * vcpus))
        pulses.append(
            make_pulse(
                f"{tenant}-egress-{day_hour}-{quarter}",
                tenant,
                "network.egress",
                egress_mb,
                "MB",
                hour + timedelta(minutes=15 * quarter + 7),
                region="br-se1",
                source="network",
            )
        )
        requests = Decimal(int(rng.uniform(1000, 5000) * busy))
        pulses.append(
            make_pulse(
                f"{tenant}-api-{day_hour}-{quarter}",
                tenant,
                "api.requests",
                requests,
                "request",
                hour + timedelta(minutes=15 * quarter + 3),
                source="gateway",
            )
        )
    return pulses


def sample_day(day: datetime, seed: int = 7) -> SampleDay:
    """One UTC day of usage for TENANTS, shuffled (out of order), in batches of 50, then:
    a re-sent batch (duplicates), a reused id with another amount (conflict), a late pulse
    for the first hour, and one invalid pulse (negative amount)."""
    rng = random.Random(seed)
    pulses = [
        p
        for tenant in TENANTS
        for h in range(24)
        for p in _usage_of_hour(rng, tenant, day + timedelta(hours=h))
    ]
    rng.shuffle(pulses)
    batches = [pulses[i : i + 50] for i in range(0, len(pulses), 50)]
    retried = batches[3]  # a client that timed out and re-sent a whole batch
    conflicting = pulse_pb2.Pulse()
    conflicting.CopyFrom(pulses[0])
    conflicting.used_amount = str(Decimal(conflicting.used_amount) + 1)
    late = make_pulse(
        "acme-late-backfill-1",
        "acme",
        "storage.object",
        "120",
        "GB-hour",
        day + timedelta(minutes=30),
        source="object-storage",
    )
    invalid = make_pulse(
        "globex-bad-1", "globex", "network.egress", "-5", "MB", day + timedelta(hours=3)
    )
    batches += [list(retried), [conflicting, late, invalid]]
    return SampleDay(batches=batches, duplicates=len(retried), conflicts=1, invalid=1)
