"""Where a `pulse dev` home keeps things, and the one error of dev tooling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.config import DevSettings

HOST = "127.0.0.1"
Echo = Callable[[str], None]


class DevServerError(Exception):
    """`pulse dev` could not do what was asked; the message says why and what to change."""


@dataclass(frozen=True)
class DevPaths:
    """Where one `pulse dev` home keeps jars, configs, data, logs and pid files."""

    home: Path

    @classmethod
    def of(cls, dev: DevSettings) -> DevPaths:
        return cls(dev.home.expanduser().resolve())

    @property
    def conf(self) -> Path:
        return self.home / "conf"

    @property
    def run(self) -> Path:
        return self.home / "run"

    def jars(self, profile: str) -> Path:
        return self.home / "jars" / profile

    def data(self, name: str) -> Path:
        return self.home / "data" / name

    def log(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def pid(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def create(self) -> None:
        for directory in (self.conf, self.run, self.home / "logs", self.home / "data"):
            directory.mkdir(parents=True, exist_ok=True)
