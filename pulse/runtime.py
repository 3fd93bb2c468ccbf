"""Starts the pipeline's roles (ingestor, writer, projector, api) in this process and stops them."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import grpc
import uvicorn
from grpc_health.v1 import health, health_pb2

from access.verifier import KeyVerifier
from ingestor.hosting import IngestServer, create_server
from ingestor.server import SERVICE, IngestServicer, server_credentials
from kernel.errors import Invalid, Unavailable
from ledger.writer import LedgerWriter
from projections.runner import HourlyProjector, ProjectorSettings
from pulse.bootstrap import Parts
from pulse.metrics import Metrics, serve_on
from pulse.settings import Settings, TlsSettings
from pulse.supervision import Health, supervise, watch
from query.app import create_app

log = logging.getLogger(__name__)


def key_verifier(settings: Settings, parts: Parts, server: str) -> KeyVerifier | None:
    """The edges' key check, or None in development mode (said loudly: anyone gets in)."""
    if settings.auth.mode == "off":
        log.warning(
            "AUTH IS OFF (PULSE_AUTH__MODE=off): the %s answers anyone without an API key. "
            "Development only; never expose this port.",
            server,
        )
        return None
    return KeyVerifier(parts.keys, ttl=settings.auth.cache_seconds)


@dataclass
class Running:
    """Handles of the roles started by `start`; stop() drains and joins them."""

    health: Health
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    grpc_server: IngestServer | None = None
    grpc_port: int = 0
    metrics: Metrics = field(default_factory=Metrics)
    metrics_port: int = 0  # the roles' own /metrics listener; 0 when none was started
    _metrics_server: Any = None

    def wait(self, stop: threading.Event) -> str | None:
        """Blocks until `stop` is set (a signal) or a role gave up; returns what failed."""
        while not stop.wait(0.2):
            if self.health.failed.is_set():
                return self.health.failure() or "a role failed"
        return None

    def stop(self, grace: float = 5.0) -> None:
        if self.grpc_server is not None:
            # Stops accepting, lets in-flight batches finish (they answer only after delivery).
            self.grpc_server.stop(grace).wait()
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=grace + 10)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()


def start(
    settings: Settings,
    parts: Parts,
    roles: set[str],
    *,
    grpc_address: str | None = None,
    metrics_listener: bool = True,
) -> Running:
    """Starts the requested roles of {"ingestor", "writer", "projector"}, supervised
    (pulse.supervision); `running.health` reports them, and the API started by `start_api`.

    `running.metrics` counts what the roles do; with PULSE_METRICS__PORT set and
    `metrics_listener` (false when the API of this process serves /metrics) it is exposed on
    its own port."""
    policy = settings.supervision
    running = Running(Health(stuck_after=policy.stuck_seconds))
    metrics = running.metrics
    grpc_health = health.HealthServicer()
    if "ingestor" in roles:
        servicer = IngestServicer(
            parts.log,
            parts.catalog.billing_unit,
            max_batch=settings.ingest.max_batch,
            future_skew=timedelta(seconds=settings.ingest.future_skew_seconds),
            auth=key_verifier(settings, parts, "gRPC ingestor"),
            observer=metrics,
        )
        server, port = create_server(
            servicer,
            grpc_address or settings.ingest.address,
            max_message_bytes=settings.ingest.max_message_bytes,
            max_concurrent_calls=settings.ingest.max_concurrent_calls,
            max_in_flight_bytes=settings.ingest.max_in_flight_bytes,
            credentials=_grpc_credentials(settings.tls),
            health_servicer=grpc_health,
            reuse_port=settings.ingest.reuse_port,
        )
        server.start()
        running.grpc_server, running.grpc_port = server, port
        running.health.add("ingestor", loop=False).beat()
        log.info("ingestor listening on port %d", port, extra={"role": "ingestor"})
    if "writer" in roles:

        def make_writer() -> LedgerWriter:
            return LedgerWriter(
                parts.log,
                parts.ledger,
                parts.log.consumer(settings.kafka.writer_group),
                stop=running.stop_event,
                on_batch=metrics.writer_batch,
            )

        running.threads.append(
            supervise("writer", make_writer, running.health, running.stop_event, policy)
        )
    if "projector" in roles:
        from pulse.bootstrap import invoicing as invoicing_of

        invoicing = invoicing_of(settings, parts)

        def note_corrections(touched: set[tuple[str, datetime]]) -> None:
            notes = invoicing.correct_touched(touched)
            for note in notes:
                log.info(
                    "%s issued: %s",
                    note.title,
                    note.references[:16],
                    extra={"role": "projector", "invoice": note.references[:16]},
                )
            metrics.corrected(str(note.kind) for note in notes)

        def make_projector() -> HourlyProjector:
            return HourlyProjector(
                parts.log,
                parts.log.consumer(settings.kafka.projector_group),
                parts.ledger,
                parts.usage,
                parts.catalog,
                ProjectorSettings(writer_group=settings.kafka.writer_group),
                stop=running.stop_event,
                after=note_corrections,
                on_projected=metrics.projected,
            )

        running.threads.append(
            supervise("projector", make_projector, running.health, running.stop_event, policy)
        )

    def serving(ready: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE):
            grpc_health.set(service, status)

    running.threads.append(watch(running.health, running.stop_event, serving, policy.health_file))
    groups = [
        group
        for role, group in (
            ("writer", settings.kafka.writer_group),
            ("projector", settings.kafka.projector_group),
        )
        if role in roles
    ]
    if groups:
        metrics.watch_lag(parts.log, groups)
    metrics.watch_health(running.health.report)
    if metrics_listener and settings.metrics.port:
        from prometheus_client import start_http_server

        listener, _ = start_http_server(
            settings.metrics.port, settings.metrics.host, registry=metrics.registry
        )
        running._metrics_server, running.metrics_port = listener, listener.server_port
        log.info("metrics on http://%s:%d/metrics", settings.metrics.host, listener.server_port)
    return running


def _read_pem(path: object, what: str) -> bytes:
    try:
        with open(str(path), "rb") as stream:
            return stream.read()
    except OSError as exc:
        raise Invalid(f"PULSE_TLS__{what}: cannot read {path}: {exc.strerror}") from None


def _grpc_credentials(tls: TlsSettings) -> grpc.ServerCredentials | None:
    if not tls.enabled:
        return None
    return server_credentials(
        _read_pem(tls.cert_file, "CERT_FILE"),
        _read_pem(tls.key_file, "KEY_FILE"),
        _read_pem(tls.client_ca_file, "CLIENT_CA_FILE") if tls.client_ca_file else None,
    )


def _uvicorn_tls(tls: TlsSettings) -> dict[str, Any]:
    if not tls.enabled:
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}
    if tls.client_ca_file is not None:
        options |= {"ssl_ca_certs": str(tls.client_ca_file), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options


def caught_up(settings: Settings, parts: Parts) -> bool:
    """True when writer and projector have both committed everything in the log."""
    ends = {p: o for p, o in parts.log.end_offsets().items() if o > 0}
    for group in (settings.kafka.writer_group, settings.kafka.projector_group):
        committed = parts.log.committed(group)
        if any(committed.get(p, 0) < o for p, o in ends.items()):
            return False
    return True


class ApiServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when the settings said 0)."""
        for listener in getattr(self._server, "servers", []):
            for sock in listener.sockets:
                return int(sock.getsockname()[1])
        return 0

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start_api(
    settings: Settings, parts: Parts, health_: Health, metrics: Metrics | None = None
) -> ApiServer:
    """The HTTP API in a thread, reported as role "api" of `health_` (its /health/* routes
    answer for every role of this process). A server that stops on its own (a port in use)
    marks the role dead, which ends the process. Serves /metrics of `metrics` (the process's,
    `running.metrics`; its own when None)."""
    from pulse.bootstrap import invoicing as invoicing_of
    from pulse.bootstrap import reconciliation
    from query.operations import OperatorTools

    invoicing = invoicing_of(settings, parts)
    tools = OperatorTools(reconciliation(settings, parts), parts.log)
    app = create_app(
        parts.ledger,
        parts.usage,
        invoicing,
        auth=key_verifier(settings, parts, "HTTP API"),
        billing_unit_of=parts.catalog.billing_unit,
        operator_tools=tools,
        health=health_.report,
    )
    serve_on(app, metrics or Metrics())
    config = uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_level="warning",
        **_uvicorn_tls(settings.tls),
    )
    server = uvicorn.Server(config)
    role = health_.add("api", loop=False, probe=lambda: server.started)

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # uvicorn calls sys.exit(1) when it cannot bind
            health_.give_up(role, exc)
            log.critical("the HTTP API stopped: %r", exc)
            return
        if not server.should_exit:
            health_.give_up(role, "the HTTP server stopped on its own")
        else:
            role.stopped()

    thread = threading.Thread(target=run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # listening, or it failed (bad certificate, port taken)
        if not thread.is_alive() or time.monotonic() > deadline:
            raise Unavailable(f"the API did not start on {settings.api.host}:{settings.api.port}")
        time.sleep(0.01)
    return ApiServer(server, thread)
