"""Graceful shutdown: a batch in flight when the ingestor stops is finished and answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from ingestor.hosting import create_server
from ingestor.server import IngestServicer
from ledger.ports import OutgoingRecord
from ledger.sqlite import SQLitePulseLog
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse


class SlowLog(SQLitePulseLog):
    """A real SQLite log whose acknowledgement takes a while, like a busy Kafka."""

    def __init__(self, path: Path, entered: threading.Event) -> None:
        super().__init__(path, partitions=1)
        self.entered = entered

    def publish(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        self.entered.set()
        time.sleep(1.0)
        super().publish(records, arrival)


def test_stopping_drains_the_batch_in_flight_then_refuses_new_calls(tmp_path: Path) -> None:
    # given: a batch whose publish is under way
    entered = threading.Event()
    log = SlowLog(tmp_path / "log.sqlite", entered)
    servicer = IngestServicer(
        log, lambda _sku: None, max_batch=100, future_skew=timedelta(minutes=5), auth=None
    )
    server, port = create_server(servicer, "127.0.0.1:0", max_message_bytes=1 << 20)
    server.start()
    client = IngestClient(f"127.0.0.1:{port}")
    at = datetime.now(UTC) - timedelta(minutes=1)
    batch = [make_pulse(f"p{i}", "acme", "x", "1", "GB", at) for i in range(10)]
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(client.ingest, batch)
        assert entered.wait(5)
        # when
        server.stop(grace=10).wait()
        results = call.result(timeout=15)
    # then: the in-flight batch was answered ACCEPTED and stored; later calls are refused
    assert [r.status for r in results] == [pulse_pb2.PulseResult.ACCEPTED] * 10
    assert sum(log.end_offsets().values()) == 10
    with pytest.raises(grpc.RpcError) as caught:
        client.ingest(batch, timeout=2)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    client.close()
