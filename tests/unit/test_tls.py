"""TLS on both edges (gRPC ingest, the HTTP API under uvicorn) with certificates made at test
time, and the TLS options of the Kafka and CQL clients."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from ingestor.hosting import create_server
from ingestor.server import IngestServicer, server_credentials
from ledger.sqlite import SQLitePulseLog
from proto.pulse.v1 import pulse_pb2
from pulse.bootstrap import build
from pulse.demo.client import IngestClient, make_pulse
from pulse.runtime import start_api
from pulse.settings import (
    ApiSettings,
    Backend,
    CqlSettings,
    EmbeddedSettings,
    KafkaSettings,
    Settings,
    TlsSettings,
)
from pulse.supervision import Health
from storage.cql import ssl_context
from tests.pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def one_pulse() -> list[pulse_pb2.Pulse]:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return [make_pulse("tls-1", "acme", "x", "1", "GB", at)]


# --- gRPC ----------------------------------------------------------------------------------


@pytest.fixture
def grpc_tls(tmp_path: Path, pki: Pki) -> Iterator[Callable[[bool], str]]:
    """Starts a TLS ingestor (mutual TLS when asked); returns its target."""
    stops: list[Callable[[], object]] = []

    def start(mutual: bool) -> str:
        log = SQLitePulseLog(tmp_path / f"log-{mutual}.sqlite", partitions=1)
        servicer = IngestServicer(
            log, lambda _sku: None, max_batch=10, future_skew=timedelta(1), auth=None
        )
        credentials = server_credentials(
            pki.server_cert.read_bytes(),
            pki.server_key.read_bytes(),
            pki.ca.read_bytes() if mutual else None,
        )
        server, port = create_server(
            servicer, "127.0.0.1:0", max_message_bytes=1 << 20, credentials=credentials
        )
        server.start()
        stops.extend([lambda: server.stop(None).wait(), log.close])
        return f"127.0.0.1:{port}"

    yield start
    for stop in stops:
        stop()


def refused(client: IngestClient) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        client.ingest(one_pulse(), timeout=3)
    client.close()
    return caught.value.code()


def test_grpc_with_tls_answers_clients_that_trust_its_ca_only(
    grpc_tls: Callable[[bool], str], pki: Pki
) -> None:
    # given
    target = grpc_tls(False)

    # when
    trusting = IngestClient(target, ca_file=pki.ca)
    results = trusting.ingest(one_pulse(), timeout=5)
    health = health_pb2_grpc.HealthStub(trusting.channel).Check(
        health_pb2.HealthCheckRequest(), timeout=5
    )
    trusting.close()

    # then: a TLS client with the CA gets through; plaintext and an untrusting client do not
    assert [r.status for r in results] == [pulse_pb2.PulseResult.ACCEPTED]
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert refused(IngestClient(target)) == grpc.StatusCode.UNAVAILABLE
    assert refused(IngestClient(target, ca_file=pki.other_ca)) == grpc.StatusCode.UNAVAILABLE


def test_grpc_with_a_client_ca_refuses_clients_without_a_certificate(
    grpc_tls: Callable[[bool], str], pki: Pki
) -> None:
    # given
    target = grpc_tls(True)

    # when
    with_cert = IngestClient(
        target, ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
    )
    results = with_cert.ingest(one_pulse(), timeout=5)
    with_cert.close()

    # then
    assert [r.status for r in results] == [pulse_pb2.PulseResult.ACCEPTED]
    assert refused(IngestClient(target, ca_file=pki.ca)) == grpc.StatusCode.UNAVAILABLE
    server_as_client = IngestClient(
        target, ca_file=pki.ca, cert_file=pki.other_ca, key_file=pki.client_key
    )
    assert refused(server_as_client) == grpc.StatusCode.UNAVAILABLE


# --- HTTP (the real app under uvicorn, over the embedded backend) ---------------------------


@pytest.fixture
def api_tls(tmp_path: Path) -> Iterator[Callable[[TlsSettings], str]]:
    stops: list[Callable[[], object]] = []

    def start(tls: TlsSettings) -> str:
        settings = Settings(
            backend=Backend.EMBEDDED,
            embedded=EmbeddedSettings(path=tmp_path / f"data-{len(stops)}"),
            api=ApiSettings(host="127.0.0.1", port=0),
            tls=tls,
        )
        parts = build(settings)
        server = start_api(settings, parts, Health(stuck_after=60))
        stops.extend([server.stop, parts.close])
        return f"127.0.0.1:{server.port}"

    yield start
    for stop in stops:
        stop()


def context(ca: Path | None, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    trusted = ssl.create_default_context(cafile=str(ca) if ca else None)
    if cert and key:
        trusted.load_cert_chain(cert, key)
    return trusted


def test_http_with_tls_answers_clients_that_trust_its_ca_only(
    api_tls: Callable[[TlsSettings], str], pki: Pki
) -> None:
    # given
    address = api_tls(TlsSettings(cert_file=pki.server_cert, key_file=pki.server_key))

    # when
    response = httpx.get(f"https://{address}/healthz", verify=context(pki.ca), timeout=5)

    # then
    assert response.status_code == 200
    with pytest.raises(httpx.HTTPError):  # plaintext to a TLS port
        httpx.get(f"http://{address}/healthz", timeout=5)
    with pytest.raises(httpx.ConnectError):  # the system's CAs do not know ours
        httpx.get(f"https://{address}/healthz", verify=context(None), timeout=5)


def test_http_with_a_client_ca_refuses_clients_without_a_certificate(
    api_tls: Callable[[TlsSettings], str], pki: Pki
) -> None:
    # given
    address = api_tls(
        TlsSettings(cert_file=pki.server_cert, key_file=pki.server_key, client_ca_file=pki.ca)
    )
    url = f"https://{address}/healthz"

    # when
    response = httpx.get(url, verify=context(pki.ca, pki.client_cert, pki.client_key), timeout=5)

    # then
    assert response.status_code == 200
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, verify=context(pki.ca), timeout=5)


def test_tls_settings_need_certificate_and_key_together(pki: Pki) -> None:
    # given / when / then
    with pytest.raises(ValueError, match="go together"):
        TlsSettings(cert_file=pki.server_cert)
    with pytest.raises(ValueError, match="needs cert_file"):
        TlsSettings(client_ca_file=pki.ca)


# --- Kafka and CQL clients ------------------------------------------------------------------


def test_kafka_tls_settings_become_librdkafka_properties(pki: Pki) -> None:
    # given
    settings = KafkaSettings(
        ssl_ca_file=pki.ca, ssl_cert_file=pki.client_cert, ssl_key_file=pki.client_key
    )

    # when
    client = dict(settings.config().client)

    # then
    assert client == {
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(pki.ca),
        "ssl.certificate.location": str(pki.client_cert),
        "ssl.key.location": str(pki.client_key),
    }
    assert dict(KafkaSettings().config().client) == {}
    sasl = KafkaSettings(sasl_username="u", sasl_password=SecretStr("p"), ssl_ca_file=pki.ca)
    assert sasl.config().client["security.protocol"] == "SASL_SSL"
    assert sasl.config().client["ssl.ca.location"] == str(pki.ca)


def _tls_server(pki: Pki, require_client_cert: bool) -> tuple[int, threading.Thread, list[str]]:
    """A one-connection TLS server with the test certificate; records the handshake outcome."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        server_context.load_verify_locations(pki.ca)
        server_context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    outcome: list[str] = []

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            try:
                with server_context.wrap_socket(conn, server_side=True) as tls:
                    peer = tls.getpeercert()
                    outcome.append("client cert" if peer else "no client cert")
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as exc:
                outcome.append(f"refused: {exc}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return int(listener.getsockname()[1]), thread, outcome


def _handshake(context: ssl.SSLContext, port: int) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.recv(2)


def test_cql_tls_settings_make_a_verifying_context_with_the_client_certificate(pki: Pki) -> None:
    # given
    config = CqlSettings(
        ssl_ca_file=pki.ca, ssl_cert_file=pki.client_cert, ssl_key_file=pki.client_key
    ).config()
    assert config.tls is not None
    assert CqlSettings().config().tls is None

    # when: the context handshakes with a server that requires a client certificate
    context = ssl_context(config.tls)
    port, thread, outcome = _tls_server(pki, require_client_cert=True)
    answer = _handshake(context, port)
    thread.join(5)

    # then
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert answer == b"ok" and outcome == ["client cert"]


def test_cql_tls_without_our_ca_refuses_the_server(pki: Pki) -> None:
    # given: a context trusting another CA
    config = CqlSettings(ssl_ca_file=pki.other_ca).config()
    assert config.tls is not None
    port, thread, _ = _tls_server(pki, require_client_cert=False)

    # when / then
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(ssl_context(config.tls), port)
    thread.join(5)
