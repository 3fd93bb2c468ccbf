"""Process plumbing of `pulse dev`: liveness, signals, memory and log tails of the servers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import deque
from pathlib import Path

LOG_TAIL_LINES = 30


def wait_gone(targets: list[tuple[str, int]], timeout: float) -> list[tuple[str, int]]:
    deadline = time.monotonic() + timeout
    alive = [(name, pid) for name, pid in targets if is_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [(name, pid) for name, pid in alive if is_alive(pid)]
    return alive


def signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        # Our servers lead their own group (start_new_session); anything else gets only itself.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def process_command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        pass  # no procfs (macOS): ask ps
    result = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return result.stdout


def is_alive(pid: int) -> bool:
    """Whether the process still holds resources (threads, sockets), reaping our own children."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return _foreign_alive(pid)
    # Our child (pytest started it): waitpid succeeds only once its last thread is gone;
    # a JVM's leader thread shows as a zombie earlier, while the others still tear down.
    return reaped == 0


def _foreign_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = _proc_status(pid)
    # An exited process lingers as a zombie until its parent (often init) reaps it; once its
    # last thread is gone it holds no ports any more.
    return not (status.get("State", "").startswith("Z") and status.get("Threads") == "1")


def _proc_status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}  # no procfs (macOS): trust kill(pid, 0)
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def rss_kib(pid: int) -> int | None:
    """Resident memory as the kernel reports it (VmRSS in /proc/<pid>/status)."""
    rss = _proc_status(pid).get("VmRSS", "")
    return int(rss.split()[0]) if rss else None


def log_excerpt(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with log_file.open(errors="replace") as handle:
            tail = deque(handle, maxlen=lines)
    except FileNotFoundError:
        return f"(no log at {log_file})"
    body = "".join(f"  | {line}" for line in tail).rstrip("\n")
    return f"last {len(tail)} lines of {log_file}:\n{body}"
