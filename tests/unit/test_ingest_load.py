"""The ingestor under load: a cap on concurrent Ingest calls, health always answerable, and a
request's memory bounded before it is parsed (a real server on port 0, a real channel)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console

from ingestor.hosting import create_server
from ingestor.server import IngestServicer
from ledger.ports import OutgoingRecord
from ledger.sqlite import SQLitePulseLog
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse
from pulse.demo.loadgen import LoadSpec, run_load

CAP = 2
MESSAGE_LIMIT = 4 * 1024 * 1024


class GatedLog(SQLitePulseLog):
    """A real SQLite log whose publish waits for the test to open the gate."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, partitions=1)
        self.gate = threading.Event()
        self.inside = threading.Semaphore(0)

    def publish(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        self.inside.release()
        self.gate.wait(30)
        super().publish(records, arrival)


def batch(n: int = 3) -> list[pulse_pb2.Pulse]:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return [make_pulse(f"p{i}-{n}", "acme", "x", "1", "GB", at) for i in range(n)]


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[GatedLog, str]]:
    log = GatedLog(tmp_path / "log.sqlite")
    servicer = IngestServicer(
        log, lambda _sku: None, max_batch=2000, future_skew=timedelta(1), auth=None
    )
    server, port = create_server(
        servicer, "127.0.0.1:0", max_message_bytes=MESSAGE_LIMIT, max_concurrent_calls=CAP
    )
    server.start()
    yield log, f"127.0.0.1:{port}"
    log.gate.set()
    server.stop(None).wait()
    log.close()


def health(target: str, timeout: float) -> int:
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout
        )
        return int(reply.status)


def test_calls_beyond_the_cap_are_resource_exhausted_and_health_still_answers(
    gated: tuple[GatedLog, str],
) -> None:
    # given: CAP calls stuck in publish, and more than the old 8 threads waiting behind them
    log, target = gated
    clients = [IngestClient(target) for _ in range(12)]
    with ThreadPoolExecutor(12) as pool:
        stuck = [pool.submit(clients[i].ingest, batch(), 30) for i in range(CAP)]
        for _ in range(CAP):
            assert log.inside.acquire(timeout=10)

        # when: one more ingest call, and a health check, while the CAP are in flight
        extra = [pool.submit(clients[CAP + i].ingest, batch(), 5) for i in range(8)]
        status = health(target, timeout=2)
        errors = []
        for call in extra:
            with pytest.raises(grpc.RpcError) as caught:
                call.result(timeout=10)
            errors.append(caught.value)

        # then: refused at once with a retryable code; health answered; the CAP go through
        assert status == health_pb2.HealthCheckResponse.SERVING
        assert {e.code() for e in errors} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert "retry" in (errors[0].details() or "")
        log.gate.set()
        assert all(len(call.result(timeout=10)) == 3 for call in stuck)
    for client in clients:
        client.close()


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_request_of_millions_of_empty_pulses_is_refused_before_it_is_parsed(
    tmp_path: Path,
) -> None:
    # given: 4 MiB holding 2.1 million empty pulses (2 bytes each: tag 0x0a, length 0)
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=1)
    servicer = IngestServicer(
        log, lambda _sku: None, max_batch=2000, future_skew=timedelta(1), auth=None
    )
    server, port = create_server(servicer, "127.0.0.1:0", max_message_bytes=MESSAGE_LIMIT)
    server.start()
    client = IngestClient(f"127.0.0.1:{port}")
    payload = b"\x0a\x00" * (MESSAGE_LIMIT // 2 - 16)
    before = _rss_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss_bytes())

    sampler = threading.Thread(target=sample)
    sampler.start()

    # when: sent three times (parsing it once took 350 MB, not always given back)
    try:
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as caught:
                client.ingest_bytes(payload, timeout=30)
    finally:
        done.set()
        sampler.join()
    grown = max(peak[0], _rss_bytes()) - before

    # then: refused by count, naming the field, without materializing the pulses
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pulses" in (caught.value.details() or "")
    assert "2000" in (caught.value.details() or "")
    assert grown < 40 * 1024 * 1024, f"the process grew by {grown / 2**20:.0f} MiB at its peak"
    assert sum(log.end_offsets().values()) == 0
    client.close()
    server.stop(None).wait()
    log.close()


def test_the_load_generator_backs_off_on_resource_exhausted_and_gets_through(
    gated: tuple[GatedLog, str],
) -> None:
    # given: the CAP slots taken by calls stuck in publish
    log, target = gated
    holders = [IngestClient(target) for _ in range(CAP)]
    with ThreadPoolExecutor(CAP + 1) as pool:
        stuck = [pool.submit(h.ingest, batch(), 30) for h in holders]
        for _ in range(CAP):
            assert log.inside.acquire(timeout=10)

        # when: `pulse send` runs meanwhile; the slots free up half a second later
        spec = LoadSpec(
            total=20, rate=0, tenants=2, skus=1, duplicate_ratio=0, batch_size=10, seed=1
        )
        sending = pool.submit(run_load, target, spec, Console(file=io.StringIO()))
        threading.Timer(0.5, log.gate.set).start()
        report = sending.result(timeout=30)

        # then: refused batches were retried after a pause, none given up
        assert report.shed >= 1
        assert report.errors == 0
        assert report.statuses["ACCEPTED"] == 20
        assert all(call.result(timeout=10) for call in stuck)
    for h in holders:
        h.close()


def test_large_batches_beyond_the_byte_budget_are_refused_while_small_calls_still_get_in(
    tmp_path: Path,
) -> None:
    # given: room for two and a half large batches; two of them stuck in publish
    log = GatedLog(tmp_path / "log.sqlite")
    large = pulse_pb2.IngestRequest(pulses=batch(500)).SerializeToString()
    servicer = IngestServicer(
        log, lambda _sku: None, max_batch=2000, future_skew=timedelta(1), auth=None
    )
    server, port = create_server(
        servicer,
        "127.0.0.1:0",
        max_message_bytes=MESSAGE_LIMIT,
        max_concurrent_calls=100,
        max_in_flight_bytes=len(large) * 5 // 2,
    )
    server.start()
    clients = [IngestClient(f"127.0.0.1:{port}") for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            stuck = [pool.submit(clients[i].ingest_bytes, large, 30) for i in range(2)]
            for _ in range(2):
                assert log.inside.acquire(timeout=10)

            # when: a third large batch, then a single pulse
            with pytest.raises(grpc.RpcError) as caught:
                clients[2].ingest_bytes(large, timeout=5)
            small = pool.submit(clients[3].ingest, batch(1), 30)
            assert log.inside.acquire(timeout=10)  # the single pulse reached publish

            # then: the large one was refused as retryable, naming the byte budget
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "bytes of requests in flight" in (caught.value.details() or "")
            log.gate.set()
            assert [r.status for r in small.result(timeout=10)] == [pulse_pb2.PulseResult.ACCEPTED]
            assert all(len(call.result(timeout=10).results) == 500 for call in stuck)
        assert sum(log.end_offsets().values()) == 1001
    finally:
        log.gate.set()
        for client in clients:
            client.close()
        server.stop(None).wait(10)
        log.close()
