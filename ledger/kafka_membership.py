"""Consumer group membership of KafkaLogConsumer: static ids that survive a restart, never shared.

With static membership (KIP-345) a consumer that restarts with the same `group.instance.id`
takes its partitions back at once; without it the dead member holds them until its session
times out (45 s by default). Two live members with one id would fence each other, so each id
is claimed with an exclusive lock file on this host: the first free of `base`, `base.1`,
`base.2`… A process killed with SIGKILL releases its lock with it, so its successor claims
the same id. Ids differ across hosts through the host name (the default base).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from pathlib import Path
from typing import IO, Any

MAX_MEMBERS_PER_HOST = 64


class Claim:
    """An instance id held by this process until release()."""

    def __init__(self, instance_id: str, lock: IO[bytes]) -> None:
        self.instance_id = instance_id
        self._lock = lock

    def release(self) -> None:
        self._lock.close()  # closing the file drops the flock


def _lock_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "pulse-ledger-members"
    path.mkdir(parents=True, exist_ok=True)
    return path


def claim(group: str, base: str | None) -> Claim:
    """The first id of `base` (default: host name) not held by a live consumer of `group` here."""
    base = base or socket.gethostname()
    for n in range(MAX_MEMBERS_PER_HOST):
        instance_id = base if n == 0 else f"{base}.{n}"
        digest = hashlib.sha256(f"{group}\0{instance_id}".encode()).hexdigest()[:32]
        lock = (_lock_dir() / f"{digest}.lock").open("ab")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        lock.write(f"{os.getpid()} {group} {instance_id}\n".encode())
        lock.flush()
        return Claim(instance_id, lock)
    raise RuntimeError(f"more than {MAX_MEMBERS_PER_HOST} members of {group} on this host")


def membership_config(
    *,
    protocol: str,
    instance_id: str | None,
    session_timeout_ms: int | None,
) -> dict[str, Any]:
    """librdkafka settings for the group protocol; the consumer protocol (KIP-848) takes its
    timeouts and assignor from the broker, so it must not be given the classic ones."""
    config: dict[str, Any] = {"group.protocol": protocol}
    if instance_id is not None:
        config["group.instance.id"] = instance_id
    if protocol == "classic" and session_timeout_ms is not None:
        config["session.timeout.ms"] = session_timeout_ms
        config["heartbeat.interval.ms"] = max(session_timeout_ms // 3, 100)
    return config
