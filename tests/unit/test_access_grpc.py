"""Keys on the real gRPC ingestor (port 0, a real channel), with the key store of each backend.

Ingest x {no key, malformed key, producer key, tenant key, operator key, revoked key}; a producer
limited to some tenants; health and reflection stay open (DESIGN invariant 13).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from access.keys import Role, new_key
from access.ports import KeyStore
from access.verifier import KeyVerifier
from ingestor.hosting import create_server
from ingestor.server import IngestServicer
from ledger.model import LogRecord
from ledger.sqlite import SQLitePulseLog
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse
from tests.unit.helpers import SKEW, catalog

ACCEPTED = pulse_pb2.PulseResult.ACCEPTED
REJECTED = pulse_pb2.PulseResult.REJECTED
_ids = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Ingestor:
    target: str
    log: SQLitePulseLog
    keys: KeyStore
    clock: Clock

    def client(self, key: str | None) -> IngestClient:
        return IngestClient(self.target, key=key)

    def key(self, role: Role, *tenants: str) -> str:
        made = new_key(role, tenants, "test", datetime.now(UTC), cost=2**10)
        self.keys.add(made.record)
        return made.token

    def stored(self) -> list[LogRecord]:
        return self.log.consumer(f"inspect-{next(_ids)}").poll(1_000_000, 0)


def pulse(tenant: str = "acme") -> pulse_pb2.Pulse:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return make_pulse(f"p-{next(_ids)}", tenant, "network.egress", "1.5", "GB", at)


@pytest.fixture
def ingestor(key_store: KeyStore, tmp_path: Path) -> Iterator[Ingestor]:
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=3)
    clock = Clock()
    servicer = IngestServicer(
        log,
        catalog().billing_unit,
        max_batch=50,
        future_skew=SKEW,
        auth=KeyVerifier(key_store, ttl=5.0, clock=clock),
    )
    server, port = create_server(servicer, "127.0.0.1:0", max_message_bytes=1 << 20)
    server.start()
    yield Ingestor(f"127.0.0.1:{port}", log, key_store, clock)
    server.stop(None).wait()
    log.close()


def refused(client: IngestClient) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        client.ingest([pulse()])
    client.close()
    code: grpc.StatusCode = caught.value.code()
    return code


def test_a_producer_key_ingests(ingestor: Ingestor) -> None:
    # given
    client = ingestor.client(ingestor.key(Role.PRODUCER))
    # when
    results = client.ingest([pulse("acme"), pulse("globex")])
    client.close()
    # then
    assert [r.status for r in results] == [ACCEPTED, ACCEPTED]
    assert len(ingestor.stored()) == 2


def test_no_key_is_unauthenticated_and_nothing_is_stored(ingestor: Ingestor) -> None:
    assert refused(ingestor.client(None)) == grpc.StatusCode.UNAUTHENTICATED
    assert ingestor.stored() == []


@pytest.mark.parametrize("token", ["nonsense", "pl_0123456789abcdef_short", "pl_x_y"])
def test_a_malformed_key_is_unauthenticated(ingestor: Ingestor, token: str) -> None:
    assert refused(ingestor.client(token)) == grpc.StatusCode.UNAUTHENTICATED
    assert ingestor.stored() == []


def test_a_wrong_secret_is_unauthenticated(ingestor: Ingestor) -> None:
    token = ingestor.key(Role.PRODUCER)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert refused(ingestor.client(forged)) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("role", [Role.TENANT, Role.OPERATOR])
def test_a_reading_key_may_not_ingest(ingestor: Ingestor, role: Role) -> None:
    token = ingestor.key(role, "acme") if role is Role.TENANT else ingestor.key(role)
    assert refused(ingestor.client(token)) == grpc.StatusCode.PERMISSION_DENIED
    assert ingestor.stored() == []


def test_a_revoked_key_is_permission_denied(ingestor: Ingestor) -> None:
    # given
    token = ingestor.key(Role.PRODUCER)
    ingestor.keys.revoke(token.split("_")[1], datetime.now(UTC))
    # when / then
    assert refused(ingestor.client(token)) == grpc.StatusCode.PERMISSION_DENIED
    assert ingestor.stored() == []


def test_revocation_takes_effect_in_the_running_server_within_the_ttl(ingestor: Ingestor) -> None:
    # given: a producer key in use
    token = ingestor.key(Role.PRODUCER)
    client = ingestor.client(token)
    assert [r.status for r in client.ingest([pulse()])] == [ACCEPTED]
    # when: revoked, and the cache TTL passes
    ingestor.keys.revoke(token.split("_")[1], datetime.now(UTC))
    ingestor.clock.now += 5.001
    # then
    with pytest.raises(grpc.RpcError) as caught:
        client.ingest([pulse()])
    client.close()
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert len(ingestor.stored()) == 1


def test_a_limited_producer_gets_other_tenants_pulses_rejected_one_by_one(
    ingestor: Ingestor,
) -> None:
    # given: a key for acme and acme:eu only
    client = ingestor.client(ingestor.key(Role.PRODUCER, "acme", "acme:eu"))
    batch = [pulse("acme"), pulse("globex"), pulse("acme:eu")]
    # when
    results = client.ingest(batch)
    client.close()
    # then: the globex pulse is refused naming the field; the rest is stored
    assert [r.status for r in results] == [ACCEPTED, REJECTED, ACCEPTED]
    assert (results[1].pulse_id, results[1].field) == (batch[1].pulse_id, "tenant_id")
    assert "may not send pulses for this tenant" in results[1].reason
    assert sorted(r.key for r in ingestor.stored()) == [b"acme", b"acme:eu"]


def test_health_and_reflection_need_no_key(ingestor: Ingestor) -> None:
    # given
    with grpc.insecure_channel(ingestor.target) as channel:
        # when
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="pulse.v1.IngestService"), timeout=5
        )
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        [answer] = list(
            stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
        )
    # then
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    names = {s.name for s in answer.list_services_response.service}
    assert "pulse.v1.IngestService" in names
