"""Starts the pipeline's roles (ingestor, writer, projector, api) in this process and stops them."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import grpc
import uvicorn

from access.verifier import KeyVerifier
from ingestor.server import IngestServicer, create_server
from ledger.writer import LedgerWriter
from projections.runner import HourlyProjector, ProjectorSettings
from pulse.bootstrap import Parts
from pulse.settings import Settings
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

    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    grpc_server: grpc.Server | None = None
    grpc_port: int = 0

    def stop(self, grace: float = 5.0) -> None:
        if self.grpc_server is not None:
            # Stops accepting, lets in-flight batches finish (they answer only after delivery).
            self.grpc_server.stop(grace).wait()
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=grace + 10)


def start(
    settings: Settings, parts: Parts, roles: set[str], *, grpc_address: str | None = None
) -> Running:
    """Starts the requested roles of {"ingestor", "writer", "projector"}."""
    running = Running()
    if "ingestor" in roles:
        servicer = IngestServicer(
            parts.log,
            parts.catalog.billing_unit,
            max_batch=settings.ingest.max_batch,
            future_skew=timedelta(seconds=settings.ingest.future_skew_seconds),
            auth=key_verifier(settings, parts, "gRPC ingestor"),
        )
        server, port = create_server(
            servicer,
            grpc_address or settings.ingest.address,
            max_message_bytes=settings.ingest.max_message_bytes,
        )
        server.start()
        running.grpc_server, running.grpc_port = server, port
        log.info("ingestor listening on port %d", port)
    if "writer" in roles:
        writer = LedgerWriter(
            parts.log,
            parts.ledger,
            parts.log.consumer(settings.kafka.writer_group),
            stop=running.stop_event,
        )
        running.threads.append(_thread("writer", writer.run))
    if "projector" in roles:
        from projections.invoices import Invoicing, writer_commits

        invoicing = Invoicing(
            parts.billing,
            parts.ledger,
            parts.usage,
            writer_commits(parts.log, settings.kafka.writer_group),
        )

        def note_corrections(touched: set[tuple[str, datetime]]) -> None:
            for note in invoicing.correct_touched(touched):
                log.info("%s issued: %s", note.title, note.references[:16])

        projector = HourlyProjector(
            parts.log,
            parts.log.consumer(settings.kafka.projector_group),
            parts.ledger,
            parts.usage,
            parts.catalog.billing_unit,
            ProjectorSettings(writer_group=settings.kafka.writer_group),
            stop=running.stop_event,
            after=note_corrections,
        )
        running.threads.append(_thread("projector", projector.run))
    return running


def _thread(name: str, target: object) -> threading.Thread:
    def guarded() -> None:
        try:
            target()  # type: ignore[operator]
        except Exception:
            log.exception("%s stopped on an unexpected error", name)
            raise

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread


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

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start_api(settings: Settings, parts: Parts) -> ApiServer:
    from projections.invoices import Invoicing, writer_commits
    from projections.reconcile import Reconciliation
    from query.operations import OperatorTools

    invoicing = Invoicing(
        parts.billing,
        parts.ledger,
        parts.usage,
        writer_commits(parts.log, settings.kafka.writer_group),
    )
    tools = OperatorTools(
        Reconciliation(
            parts.history,
            parts.log,
            parts.ledger,
            parts.usage,
            invoicing,
            parts.catalog.billing_unit,
        ),
        parts.log,
    )
    config = uvicorn.Config(
        create_app(
            parts.ledger,
            parts.usage,
            invoicing,
            auth=key_verifier(settings, parts, "HTTP API"),
            billing_unit_of=parts.catalog.billing_unit,
            operator_tools=tools,
        ),
        host=settings.api.host,
        port=settings.api.port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    return ApiServer(server, thread)
