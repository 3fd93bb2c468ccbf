"""Supervision of the roles one process runs: restart with back-off, give up loudly, report health.

Invariant 11: a role that can no longer work never leaves a process that looks alive. A role
loop that raises is restarted after a back-off (doubling, bounded); more than `max_restarts`
failures within `window_seconds` mark the role dead, and `Health.failed` tells the main thread
to stop the process with a non-zero exit. Transient backend errors never get here: the roles
retry those themselves (ledger.retry).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pulse.settings import SupervisionSettings

log = logging.getLogger(__name__)


class State(StrEnum):
    STARTING = "starting"  # started or restarted; no loop iteration finished yet
    READY = "ready"
    RESTARTING = "restarting"  # failed; waiting out the back-off
    DEAD = "dead"  # gave up: the process is ending
    STOPPED = "stopped"  # asked to stop


class RoleLoop(Protocol):
    """A role's main loop (LedgerWriter, HourlyProjector): returns when stopped, raises when
    it cannot go on; calls `on_cycle` after each iteration."""

    def run(self, on_cycle: Callable[[], None]) -> None: ...


class RoleHealth:
    """State and heartbeat of one role, written by its thread, read by health endpoints."""

    def __init__(self, name: str, *, loop: bool, probe: Callable[[], bool] | None = None) -> None:
        self.name = name
        self._loop = loop  # only looping roles have a heartbeat that can go stale
        self._probe = probe  # e.g. "the HTTP server is listening"
        self._lock = threading.Lock()
        self._state = State.STARTING
        self._beat = time.monotonic()
        self._restarts = 0
        self._last_error: str | None = None

    def _set(self, state: State, error: BaseException | str | None = None) -> None:
        with self._lock:
            self._state = state
            self._beat = time.monotonic()
            if error is not None:
                self._last_error = error if isinstance(error, str) else _describe(error)

    def beat(self) -> None:
        self._set(State.READY)

    def starting(self) -> None:
        self._set(State.STARTING)

    def restarting(self, error: BaseException) -> None:
        with self._lock:
            self._restarts += 1
        self._set(State.RESTARTING, error)

    def dead(self, error: BaseException | str) -> None:
        self._set(State.DEAD, error)

    def stopped(self) -> None:
        self._set(State.STOPPED)

    def report(self, stuck_after: float) -> dict[str, Any]:
        with self._lock:
            state, beat = self._state, self._beat
            restarts, error = self._restarts, self._last_error
        if state is State.STARTING and self._probe is not None and self._probe():
            state = State.READY
        age = time.monotonic() - beat
        stuck = self._loop and state is State.READY and age > stuck_after
        return {
            "state": state.value,
            "ready": state is State.READY and not stuck,
            "stuck": stuck,
            "seconds_since_heartbeat": round(age, 3) if self._loop else None,
            "restarts": restarts,
            "last_error": error,
        }


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class Health:
    """Every role of this process. Live unless a role is dead; ready when every role is ready
    (none starting, restarting, dead or stuck)."""

    def __init__(self, stuck_after: float) -> None:
        self._stuck_after = stuck_after
        self._roles: dict[str, RoleHealth] = {}
        self._roles_lock = threading.Lock()  # the API role is added while others report
        self.failed = threading.Event()  # a role gave up: the process must end non-zero

    def add(
        self, name: str, *, loop: bool = True, probe: Callable[[], bool] | None = None
    ) -> RoleHealth:
        role = RoleHealth(name, loop=loop, probe=probe)
        with self._roles_lock:
            self._roles[name] = role
        return role

    def give_up(self, role: RoleHealth, error: BaseException | str) -> None:
        role.dead(error)
        self.failed.set()

    def report(self) -> dict[str, Any]:
        with self._roles_lock:
            current = sorted(self._roles.items())
        roles = {name: r.report(self._stuck_after) for name, r in current}
        return {
            "live": not self.failed.is_set() and all(r["state"] != "dead" for r in roles.values()),
            "ready": all(r["ready"] for r in roles.values()),
            "roles": roles,
        }

    def ready(self) -> bool:
        return bool(self.report()["ready"])

    def failure(self) -> str | None:
        """'writer: RuntimeError: …' for each dead role, or None."""
        dead = [
            f"{name}: {r['last_error']}"
            for name, r in self.report()["roles"].items()
            if r["state"] == "dead"
        ]
        return "; ".join(dead) or None


def supervise(
    name: str,
    make: Callable[[], RoleLoop],
    health: Health,
    stop: threading.Event,
    policy: SupervisionSettings,
) -> threading.Thread:
    """Runs `make().run(...)` in a thread; on an exception, a fresh role after a back-off.

    `make` builds the role with a fresh consumer each time: the failed one closed its own
    (its partitions go to the next member), and nothing of a half-done batch was committed,
    so the new role resumes after the last commit.
    """
    role = health.add(name)

    def run() -> None:
        failures: deque[float] = deque()
        while not stop.is_set():
            role.starting()
            try:
                make().run(role.beat)
                break  # returned: asked to stop
            except Exception as exc:
                now = time.monotonic()
                failures.append(now)
                while now - failures[0] > policy.window_seconds:
                    failures.popleft()
                if len(failures) > policy.max_restarts:
                    log.critical(
                        "%s failed %d times within %.0f s; giving up, the process stops: %s",
                        name,
                        len(failures),
                        policy.window_seconds,
                        _describe(exc),
                        exc_info=exc,
                    )
                    health.give_up(role, exc)
                    return
                delay = min(
                    policy.backoff_seconds * 2 ** (len(failures) - 1), policy.backoff_max_seconds
                )
                log.error(
                    "restarting %s after %s (failure %d of at most %d within %.0f s) in %.1f s",
                    name,
                    _describe(exc),
                    len(failures),
                    policy.max_restarts,
                    policy.window_seconds,
                    delay,
                    exc_info=exc,
                )
                role.restarting(exc)
                stop.wait(delay)
        role.stopped()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def watch(
    health: Health,
    stop: threading.Event,
    on_readiness: Callable[[bool], None],
    health_file: Path | None = None,
    interval: float = 0.5,
) -> threading.Thread:
    """Reports readiness to `on_readiness` (e.g. gRPC health) and to `health_file` until stop."""

    def run() -> None:
        while True:
            try:
                report = health.report()
                on_readiness(bool(report["ready"]) and not stop.is_set())
                if health_file is not None:
                    _write_atomically(health_file, {**report, "written_at": time.time()})
            except Exception:  # a reporter that dies would freeze the last status: go on
                log.exception("reporting health failed")
            if stop.wait(interval):
                on_readiness(False)
                return

    thread = threading.Thread(target=run, name="health", daemon=True)
    thread.start()
    return thread


def _write_atomically(path: Path, report: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(report))
        partial.replace(path)  # readers never see half a file
    except OSError as exc:
        log.warning("cannot write the health file %s: %s", path, exc)
