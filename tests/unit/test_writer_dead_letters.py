"""Records the ledger must not take are dead-lettered with their reason; the rest is written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ledger import codec
from ledger.ports import OutgoingRecord
from ledger.sqlite import SQLitePulseLog
from ledger.sqlite_store import SQLiteLedgerStore
from ledger.writer import LedgerWriter
from proto.pulse.v1 import pulse_pb2
from tests.unit.helpers import T0, pulse

ARRIVAL = datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_an_amount_past_the_ingestor_bounds_is_dead_lettered_not_summed(tmp_path: Path) -> None:
    # given: a record produced without the ingestor, 10^40 GB, then a valid pulse
    huge = pulse_pb2.Pulse(
        pulse_id="huge", tenant_id="acme", product_sku="network.egress", used_amount="1e40"
    )
    huge.use_unit = "GB"
    huge.occurred_at.seconds = int(T0.timestamp())
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=1)
    log.publish(
        [
            OutgoingRecord(b"acme", huge.SerializeToString()),
            OutgoingRecord(b"acme", codec.encode(pulse("ok", amount="2"))),
        ],
        ARRIVAL,
    )
    store = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    # when
    report = LedgerWriter(log, store, log.consumer("w")).run_once()
    # then: dead-lettered with the field and the reason; the valid pulse written
    [letter] = log.dead_letters(10)
    assert letter.reason == "invalid"
    assert letter.detail.startswith("used_amount: ")
    assert [e.pulse.pulse_id for e in store.events_in_hour("acme", T0)] == ["ok"]
    assert report.written == 1
