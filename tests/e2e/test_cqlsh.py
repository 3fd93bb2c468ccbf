"""The README's analyst queries, run verbatim with the real cqlsh against the test Cassandra."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger.model import LedgerEvent, Position, Pulse
from ledger.scylla import ScyllaLedgerStore
from projections.daily import roll_up
from projections.hourly import derive_detail, derive_hour
from projections.scylla import ScyllaUsageStore

pytestmark = pytest.mark.servers

README = Path(__file__).resolve().parents[2] / "README.md"
CQLSH = str(Path(sys.executable).parent / "cqlsh")
HOUR = datetime(2026, 11, 27, 10, tzinfo=UTC)


def analyst_queries() -> list[str]:
    text = README.read_text()
    section = text.split("## Analysts", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("SELECT ")]


def cqlsh(endpoint: tuple[str, int], query: str) -> str:
    host, port = endpoint
    done = subprocess.run(
        [CQLSH, host, str(port), "--request-timeout", "30", "-e", query],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_readme_queries_answer_in_cqlsh(
    cql_session: Any, cql_endpoint: tuple[str, int], migrated_keyspace: str
) -> None:
    # given: acme's pulses of 2026-11-27 10:00 in the ledger and its hourly usage
    ledger = ScyllaLedgerStore(cql_session, migrated_keyspace)
    usage = ScyllaUsageStore(cql_session, migrated_keyspace)
    events = [
        LedgerEvent.of(
            Pulse(
                "acme-vm-20261127T10",
                "acme",
                "compute.vcpu",
                Decimal(8),
                "vCPU-hour",
                HOUR + timedelta(minutes=59),
                resource_id="vm-7",
                region="br-se1",
            ),
            Position(4, 1200),
            HOUR + timedelta(hours=1),
        ),
        LedgerEvent.of(
            Pulse(
                "acme-egress-20261127T10-0",
                "acme",
                "network.egress",
                Decimal("1500"),
                "MB",
                HOUR + timedelta(minutes=7),
            ),
            Position(4, 1201),
            HOUR + timedelta(hours=1),
        ),
    ]
    ledger.append(events)
    units = {"compute.vcpu": "vCPU-hour", "network.egress": "GB"}
    hourly_rows = derive_hour(events, units.get)
    usage.replace_hour("acme", HOUR, hourly_rows, derive_detail(events, units.get))
    usage.replace_day("acme", HOUR.date(), roll_up(hourly_rows))
    queries = [q.replace("pulse_ledger.", f"{migrated_keyspace}.") for q in analyst_queries()]
    assert len(queries) == 5

    # when
    by_hour, by_id, hourly, detail, daily = (cqlsh(cql_endpoint, q) for q in queries)

    # then
    assert "acme-vm-20261127T10" in by_hour and "acme-egress-20261127T10-0" in by_hour
    assert "(2 rows)" in by_hour
    assert "1200" in by_id and "(1 rows)" in by_id
    assert "network.egress" in hourly and "1.5" in hourly and "(2 rows)" in hourly
    assert "vm-7" in detail and "br-se1" in detail and "(2 rows)" in detail
    # hour 10 is bit 10 of the mask (1024); each SKU's one pulse is its greatest position
    assert "1024" in daily and "{4: 1201}" in daily and "(2 rows)" in daily
