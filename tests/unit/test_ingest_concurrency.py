"""Many single-pulse calls in flight at once: each is answered only after its own record is
durable, a broker that never confirms means UNAVAILABLE for every one of them, and health
answers meanwhile (a real server on port 0 and a real channel)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ingestor.hosting import IngestServer, create_server
from ingestor.server import IngestServicer
from ledger.kafka import KafkaConfig, KafkaPulseLog
from ledger.ports import OutgoingRecord, PulseLog
from ledger.sqlite import SQLitePulseLog
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import make_pulse

IN_FLIGHT = 1000
ACCEPTED = pulse_pb2.PulseResult.ACCEPTED


class HeldLog(SQLitePulseLog):
    """The real embedded log, whose awaited publishes wait until the test releases them."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, partitions=2)
        self.waiting = 0  # calls parked in publish_async (only the server's loop writes it)
        self._released: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def publish_async(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        if self._released is None:
            self._loop, self._released = asyncio.get_running_loop(), asyncio.Event()
        self.waiting += 1
        await self._released.wait()
        await super().publish_async(records, arrival)

    def release(self) -> None:
        if self._loop is not None and self._released is not None:
            self._loop.call_soon_threadsafe(self._released.set)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(i: int) -> bytes:
    at = datetime.now(UTC) - timedelta(minutes=1)
    pulse = make_pulse(f"c-{i}", f"tenant-{i % 7}", "x", "1", "GB", at)
    return pulse_pb2.IngestRequest(pulses=[pulse]).SerializeToString()


def serve(pulse_log: PulseLog) -> tuple[IngestServer, str]:
    servicer = IngestServicer(
        pulse_log, lambda _sku: None, max_batch=10, future_skew=timedelta(minutes=5), auth=None
    )
    server, port = create_server(
        servicer, "127.0.0.1:0", max_message_bytes=1 << 20, max_concurrent_calls=2 * IN_FLIGHT
    )
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def channel_factory() -> Iterator[list[grpc.Channel]]:
    channels: list[grpc.Channel] = []
    yield channels
    for channel in channels:
        channel.close()


def ingest_stub(
    target: str, channels: list[grpc.Channel]
) -> grpc.UnaryUnaryMultiCallable[bytes, pulse_pb2.IngestResponse]:
    channel = grpc.insecure_channel(target)
    channels.append(channel)
    return channel.unary_unary(
        "/pulse.v1.IngestService/Ingest",
        request_serializer=None,
        response_deserializer=pulse_pb2.IngestResponse.FromString,
    )


def health_status(target: str, channels: list[grpc.Channel]) -> int:
    channel = grpc.insecure_channel(target)
    channels.append(channel)
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    return int(reply.status)


def test_a_thousand_calls_wait_for_their_delivery_while_health_answers(
    tmp_path: Path, channel_factory: list[grpc.Channel]
) -> None:
    # given: a log that holds every publish until released
    held = HeldLog(tmp_path / "log.sqlite")
    server, target = serve(held)
    ingest = ingest_stub(target, channel_factory)
    try:
        # when: 1,000 single-pulse calls are sent at once
        calls = [ingest.future(request(i), timeout=60) for i in range(IN_FLIGHT)]
        deadline = time.monotonic() + 30
        while held.waiting < IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.05)

        # then: all of them wait for their delivery, none is answered, and health answers
        assert held.waiting == IN_FLIGHT
        started = time.monotonic()
        assert health_status(target, channel_factory) == health_pb2.HealthCheckResponse.SERVING
        assert time.monotonic() - started < 1.0
        assert not any(call.done() for call in calls)
        assert sum(held.end_offsets().values()) == 0

        # and when released, every call is ACCEPTED and its pulse stored once
        held.release()
        replies = [call.result() for call in calls]
        assert [r.results[0].status for r in replies] == [ACCEPTED] * IN_FLIGHT
        assert sorted(r.results[0].pulse_id for r in replies) == sorted(
            f"c-{i}" for i in range(IN_FLIGHT)
        )
        assert sum(held.end_offsets().values()) == IN_FLIGHT
    finally:
        held.release()
        server.stop(None).wait(10)
        held.close()


def test_with_the_broker_unreachable_every_concurrent_call_is_unavailable(
    channel_factory: list[grpc.Channel],
) -> None:
    # given: the Kafka log pointed at a port nobody listens on, confirming nothing within 1 s
    dead = KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}", topic="nowhere")
    kafka = KafkaPulseLog(dead, delivery_timeout=1.0)
    server, target = serve(kafka)
    ingest = ingest_stub(target, channel_factory)
    try:
        # when: 200 single-pulse calls at once
        calls = [ingest.future(request(i), timeout=30) for i in range(200)]
        codes = []
        for call in calls:
            with pytest.raises(grpc.RpcError) as caught:
                call.result()
            codes.append((caught.value.code(), caught.value.details() or ""))

        # then: none was answered OK; each says nothing was accepted and to retry
        assert {code for code, _ in codes} == {grpc.StatusCode.UNAVAILABLE}
        assert all("nothing of this batch was accepted" in details for _, details in codes)
    finally:
        server.stop(None).wait(10)
        stopping = threading.Thread(target=kafka.close)  # flush gives up after its timeout
        stopping.start()
        stopping.join(15)
