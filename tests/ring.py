"""The 3-node Cassandra ring of a pytest session (`pulse dev ring`), for the failure tests.

Started through devtools on first use, reused when a developer's `pulse dev ring up` is
running (and then left running), stopped at the end when this session started it.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from devtools import ring as devring
from devtools.config import DevSettings
from devtools.layout import DevServerError
from tests.servers import REPO_ROOT, ServersUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ring:
    """A running ring whose nodes the test may stop and start again (by their pids)."""

    dev: DevSettings
    endpoints: devring.RingEndpoints

    @property
    def node_names(self) -> list[str]:
        return [node.name for node in devring.ring_nodes(self.dev)]

    def stop(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        devring.stop_nodes(self.dev, [name], echo=log.info, sig=sig)

    def start(self, name: str) -> None:
        """Starts `name` again; returns once every node answers and sees all the others."""
        devring.up(self.dev, echo=log.info, only=name)

    def ensure_up(self) -> None:
        """Brings back whatever a failed test left stopped, so the next test gets 3 nodes."""
        devring.up(self.dev, echo=log.info)


class RingProvider:
    def __init__(self, env: Mapping[str, str], repo_root: Path = REPO_ROOT) -> None:
        self._env = env
        self._repo_root = repo_root
        self._ring: Ring | None = None
        self._to_stop: DevSettings | None = None
        self._failure: ServersUnavailable | None = None

    def ring(self) -> Ring:
        if self._failure is not None:
            raise self._failure
        if self._ring is None:
            dev = self._dev_settings()
            was_running = any(node.pid for node in devring.status(dev))
            try:
                endpoints = devring.up(dev, echo=log.info)
            except DevServerError as error:
                self._failure = ServersUnavailable(f"`pulse dev ring up` failed: {error}")
                raise self._failure from error
            self._to_stop = None if was_running else dev
            self._ring = Ring(dev, endpoints)
        return self._ring

    def close(self) -> None:
        if self._to_stop is not None:
            devring.down(self._to_stop, echo=log.info)

    def _dev_settings(self) -> DevSettings:
        try:
            dev = DevSettings()
        except ValidationError as error:
            raise ServersUnavailable(f"invalid PULSE_DEV__* settings: {error}") from error
        if dev.home.is_absolute():
            return dev
        return dev.model_copy(update={"home": self._repo_root / dev.home})
