"""Runs the asyncio ingest server on an event loop thread of its own, driven like grpc.Server.

The rest of a process (roles, supervision, the CLI, tests) is threaded: it starts and stops
the ingestor with blocking calls, and the loop stays private to the server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health

from ingestor.server import IngestServicer, build_server

T = TypeVar("T")


class IngestServer:
    """The ingestor's gRPC server and the loop that runs it: start(), then stop(grace)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ended = threading.Event()
        self._stopping = False
        self._server: grpc.aio.Server | None = None
        threading.Thread(target=self._serve, name="ingest-loop", daemon=True).start()

    def _serve(self) -> None:
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()
            self._ended.set()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def bind(self, servicer: IngestServicer, address: str, **options: Any) -> int:
        self._server, port = self._run(build_server(servicer, address, **options))
        return port

    def start(self) -> None:
        assert self._server is not None, "bind() first"
        self._run(self._server.start())

    def stop(self, grace: float | None) -> threading.Event:
        """Refuses new calls at once (UNAVAILABLE) and lets calls in flight finish for up to
        `grace` seconds (None: cancels them now); the event is set once all are done and the
        loop has ended. Like grpc.Server.stop it does not block; calling it again is safe."""
        if self._stopping:
            return self._ended
        self._stopping = True
        server = self._server

        async def stop_all() -> None:
            try:
                if server is not None:
                    await server.stop(grace)
                # Threads still publishing to the embedded log (asyncio.to_thread) end first.
                await self._loop.shutdown_default_executor()
            finally:
                self._loop.stop()

        asyncio.run_coroutine_threadsafe(stop_all(), self._loop)
        return self._ended


def create_server(
    servicer: IngestServicer,
    address: str,
    *,
    max_message_bytes: int,
    max_concurrent_calls: int = 2000,
    max_in_flight_bytes: int = 64 * 1024 * 1024,
    credentials: grpc.ServerCredentials | None = None,
    health_servicer: health.HealthServicer | None = None,
    reuse_port: bool = False,
) -> tuple[IngestServer, int]:
    """A bound, not yet started server on `address`; port 0 picks a free one.

    At most `max_concurrent_calls` Ingest calls and `max_in_flight_bytes` of their requests are
    in flight at once (more are refused with RESOURCE_EXHAUSTED); health checks are answered
    beside them. Plaintext unless
    `credentials` (TLS) given. Pass `health_servicer` to keep setting its status afterwards
    (the process's readiness). With `reuse_port`, other ingestor processes may bind the same
    port and the kernel spreads connections among them.
    """
    server = IngestServer()
    try:
        port = server.bind(
            servicer,
            address,
            max_message_bytes=max_message_bytes,
            max_concurrent_calls=max_concurrent_calls,
            max_in_flight_bytes=max_in_flight_bytes,
            credentials=credentials,
            health_servicer=health_servicer,
            reuse_port=reuse_port,
        )
    except BaseException:
        server.stop(None).wait(10)
        raise
    return server, port
