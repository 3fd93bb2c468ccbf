"""The gRPC ingestor on a real server (port 0) and a real channel, over the SQLite pulse log."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ingestor.hosting import create_server
from ingestor.server import IngestServicer
from kernel.errors import Unavailable
from ledger import codec
from ledger.model import LogRecord, Position
from ledger.ports import DeadLetter, LogConsumer, OutgoingRecord, PulseLog
from ledger.sqlite import SQLitePulseLog
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse
from tests.unit.helpers import SKEW, catalog

MAX_BATCH = 50
LIMIT = 4 * 1024 * 1024
ACCEPTED = pulse_pb2.PulseResult.ACCEPTED
REJECTED = pulse_pb2.PulseResult.REJECTED
_ids = itertools.count()

Serve = Callable[[PulseLog], IngestClient]


def valid(
    pulse_id: str | None = None, *, tenant: str = "acme", amount: str = "1.5", unit: str = "GB"
) -> pulse_pb2.Pulse:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return make_pulse(pulse_id or f"p-{next(_ids)}", tenant, "network.egress", amount, unit, at)


def status_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return error.code(), error.details() or ""


def stored(log: SQLitePulseLog) -> list[LogRecord]:
    return log.consumer(f"inspect-{next(_ids)}").poll(1_000_000, 0)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts an ingestor over the given log; stops everything at the end of the test."""
    stops: list[Callable[[], object]] = []

    def start(pulse_log: PulseLog) -> IngestClient:
        servicer = IngestServicer(
            pulse_log,
            catalog().billing_unit,
            max_batch=MAX_BATCH,
            future_skew=SKEW,
            auth=None,  # no keys: these tests are about ingest (keys: test_access_matrix)
        )
        server, port = create_server(servicer, "127.0.0.1:0", max_message_bytes=LIMIT)
        server.start()
        client = IngestClient(f"127.0.0.1:{port}")
        stops.extend([lambda: server.stop(None).wait(), client.close])
        return client

    yield start
    for stop in reversed(stops):
        stop()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SQLitePulseLog]:
    pulse_log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=3)
    yield pulse_log
    pulse_log.close()


@pytest.fixture
def client(serve: Serve, log: SQLitePulseLog) -> IngestClient:
    return serve(log)


def assert_still_serving(client: IngestClient, log: SQLitePulseLog) -> None:
    before = sum(log.end_offsets().values())
    results = client.ingest([valid()])
    assert [r.status for r in results] == [ACCEPTED]
    assert sum(log.end_offsets().values()) == before + 1


def test_a_valid_batch_is_accepted_and_stored_with_a_millisecond_arrival(
    client: IngestClient, log: SQLitePulseLog
) -> None:
    # given
    batch = [valid(f"v-{i}", tenant=f"tenant-{i % 3}") for i in range(7)]
    before = datetime.now(UTC)

    # when
    results = client.ingest(batch)

    # then
    after = datetime.now(UTC)
    assert [(r.status, r.pulse_id) for r in results] == [(ACCEPTED, f"v-{i}") for i in range(7)]
    assert sum(log.end_offsets().values()) == 7
    records = stored(log)
    assert sorted(codec.decode(r.value).pulse_id for r in records) == sorted(
        f"v-{i}" for i in range(7)
    )
    floor = before.replace(microsecond=before.microsecond // 1000 * 1000)
    for record in records:
        assert record.arrival.microsecond % 1000 == 0
        assert floor <= record.arrival <= after
        assert record.key == codec.decode(record.value).tenant_id.encode()


def test_a_mixed_batch_gets_results_in_order_and_stores_only_the_valid(
    client: IngestClient, log: SQLitePulseLog
) -> None:
    # given
    batch = [
        valid("ok-1"),
        valid("bad-amount", amount="-1"),
        valid("ok-2", unit="MB"),
        valid("bad-tenant", tenant="acme corp"),
        valid("bad-unit", unit="vCPU-hour"),
    ]

    # when
    results = client.ingest(batch)

    # then
    assert [(r.pulse_id, r.status, r.field) for r in results] == [
        ("ok-1", ACCEPTED, ""),
        ("bad-amount", REJECTED, "used_amount"),
        ("ok-2", ACCEPTED, ""),
        ("bad-tenant", REJECTED, "tenant_id"),
        ("bad-unit", REJECTED, "use_unit"),
    ]
    assert all(r.reason for r in results if r.status == REJECTED)
    assert sorted(codec.decode(r.value).pulse_id for r in stored(log)) == ["ok-1", "ok-2"]


@pytest.mark.parametrize(
    ("batch", "expected_code", "mentions"),
    [
        pytest.param([], grpc.StatusCode.INVALID_ARGUMENT, "pulses", id="empty"),
        pytest.param(
            [valid() for _ in range(MAX_BATCH + 1)],
            grpc.StatusCode.INVALID_ARGUMENT,
            str(MAX_BATCH + 1),
            id="over-max-batch",
        ),
        pytest.param(
            [valid("x" * 10_000_000)], grpc.StatusCode.RESOURCE_EXHAUSTED, "", id="10MB-pulse_id"
        ),
    ],
)
def test_hostile_batches_are_refused_whole_and_the_server_goes_on(
    client: IngestClient,
    log: SQLitePulseLog,
    batch: Sequence[pulse_pb2.Pulse],
    expected_code: grpc.StatusCode,
    mentions: str,
) -> None:
    # given a batch the server must refuse / when
    with pytest.raises(grpc.RpcError) as caught:
        client.ingest(batch)

    # then
    code, details = status_of(caught.value)
    assert code == expected_code
    assert mentions in details
    assert sum(log.end_offsets().values()) == 0
    assert_still_serving(client, log)


def test_a_100k_pulse_batch_is_refused_and_nothing_stored(
    client: IngestClient, log: SQLitePulseLog
) -> None:
    # given: far past max_batch and past the 4 MiB message limit
    batch = [valid(f"big-{i}") for i in range(100_000)]

    # when
    with pytest.raises(grpc.RpcError) as caught:
        client.ingest(batch, timeout=60)

    # then
    code, _ = status_of(caught.value)
    assert code in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert sum(log.end_offsets().values()) == 0
    assert_still_serving(client, log)


def test_garbage_bytes_are_an_invalid_argument(client: IngestClient, log: SQLitePulseLog) -> None:
    # given / when
    with pytest.raises(grpc.RpcError) as caught:
        client.ingest_bytes(b"\xff\xfe garbage")

    # then
    code, details = status_of(caught.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "request" in details
    assert sum(log.end_offsets().values()) == 0
    assert_still_serving(client, log)


def test_an_overflowing_amount_is_rejected_alone(client: IngestClient, log: SQLitePulseLog) -> None:
    # given
    batch = [valid("ok"), valid("huge", amount="1e1000000")]

    # when
    results = client.ingest(batch)

    # then
    assert [(r.status, r.field) for r in results] == [(ACCEPTED, ""), (REJECTED, "used_amount")]


class UnavailableLog:
    """A pulse log whose broker never confirms a publish."""

    def __init__(self) -> None:
        self.publish_calls = 0

    def publish(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        self.publish_calls += 1
        raise Unavailable(f"broker did not confirm {len(records)} records")

    async def publish_async(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        self.publish(records, arrival)

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        raise Unavailable("broker down")

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        return []

    def consumer(self, group: str) -> LogConsumer:
        raise NotImplementedError("the ingestor never consumes")

    def committed(self, group: str) -> dict[int, int]:
        return {}

    def end_offsets(self) -> dict[int, int]:
        return {}

    def close(self) -> None:
        pass


def test_an_unavailable_log_means_unavailable_and_nothing_accepted(serve: Serve) -> None:
    # given
    broken = UnavailableLog()
    client = serve(broken)

    # when
    with pytest.raises(grpc.RpcError) as caught:
        client.ingest([valid(), valid()])

    # then: an error status, so no ACCEPTED result reaches the client
    code, details = status_of(caught.value)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "nothing" in details
    assert broken.publish_calls == 1


@pytest.mark.parametrize("service", ["", "pulse.v1.IngestService"])
def test_health_check_answers_serving(client: IngestClient, service: str) -> None:
    # given
    stub = health_pb2_grpc.HealthStub(client.channel)

    # when
    response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)

    # then
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def reflect(client: IngestClient, **request: str) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10
    )
    (response,) = list(responses)
    return response


def test_reflection_lists_the_ingest_service(client: IngestClient) -> None:
    # given / when
    response = reflect(client, list_services="")

    # then
    names = {s.name for s in response.list_services_response.service}
    assert {"pulse.v1.IngestService", "grpc.health.v1.Health"} <= names


def test_reflection_describes_the_ingest_service(client: IngestClient) -> None:
    # given: what grpcurl asks before calling a method without the .proto file

    # when
    response = reflect(client, file_containing_symbol="pulse.v1.IngestService")

    # then
    assert response.file_descriptor_response.file_descriptor_proto


def test_records_keep_their_order_per_tenant(client: IngestClient, log: SQLitePulseLog) -> None:
    # given: one tenant's pulses in two batches
    first = [valid(f"o-{i}", tenant="ordered") for i in range(5)]
    second = [valid(f"o-{i}", tenant="ordered") for i in range(5, 10)]

    # when
    client.ingest(first)
    client.ingest(second)

    # then: one partition, offsets in send order
    records = [r for r in stored(log) if r.key == b"ordered"]
    assert len({r.position.partition for r in records}) == 1
    by_offset = sorted(records, key=lambda r: r.position.offset)
    assert [codec.decode(r.value).pulse_id for r in by_offset] == [f"o-{i}" for i in range(10)]
    assert [r.position for r in by_offset] == [
        Position(by_offset[0].position.partition, by_offset[0].position.offset + i)
        for i in range(10)
    ]
