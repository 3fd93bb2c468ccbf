"""Runs the read API with uvicorn in a background thread (for `pulse serve`)."""

from __future__ import annotations

import threading

import uvicorn

from pulse.bootstrap import Parts
from pulse.settings import Settings
from query.app import create_app


class ApiServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start_api(settings: Settings, parts: Parts) -> ApiServer:
    from projections.invoices import Invoicing

    invoicing = Invoicing(parts.billing, parts.ledger, parts.usage)
    config = uvicorn.Config(
        create_app(parts.ledger, parts.usage, invoicing),
        host=settings.api.host,
        port=settings.api.port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    return ApiServer(server, thread)
