"""Ports of the dev servers: chosen by settings, checked free before anything starts."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass

from devtools.layout import HOST, DevServerError


@dataclass(frozen=True)
class PortSetting:
    port: int
    setting: str  # the DevSettings field that chooses the port

    @property
    def env_var(self) -> str:
        return f"PULSE_DEV__{self.setting.upper()}"


def check_ports_free(ports: Sequence[PortSetting]) -> None:
    """Fails before anything starts when a port is taken or two settings share one."""
    seen: dict[int, PortSetting] = {}
    problems = []
    for wanted in ports:
        if wanted.port in seen:
            other = seen[wanted.port]
            problems.append(f"{wanted.env_var} and {other.env_var} both choose port {wanted.port}")
        elif not port_is_free(wanted.port):
            problems.append(
                f"port {wanted.port} on {HOST} is already in use by another process; stop it "
                f"or choose another port, e.g. export {wanted.env_var}={suggest(wanted.port)}"
            )
        seen[wanted.port] = wanted
    if problems:
        raise DevServerError("cannot start the dev servers:\n  " + "\n  ".join(problems))


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Java binds with SO_REUSEADDR too, so TIME_WAIT leftovers of our last run don't count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def suggest(port: int) -> int:
    return port + 10000 if port + 10000 <= 65535 else port - 10000


def port_accepts(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
