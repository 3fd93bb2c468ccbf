"""Recovery benchmark: how long a SIGKILLed writer (or projector) leaves the log unprocessed.

Run: .venv/bin/python -m bench.recovery [--role writer|projector] [--repeat 3] [--variant NAME]

Per variant of consumer group membership (see VARIANTS): a fresh topic (6 partitions), the
role running and caught up; then SIGKILL, 360 new records (about 60 per partition), and the
role restarted at once. Recovery = time from the kill until the role's group has committed up
to the end of every partition (for the writer: everything is in the ledger; hourly usage is
exact again one projector cycle later). It is split into start-up (restart until the new
process reports ready in its health file: imports, connections, first loop iteration) and
takeover (ready until its first commit): the takeover is the time the dead member kept its
partitions, the part the membership settings decide.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bench.common import fresh_settings, header, percentile, servers, stop, wait_for
from ledger import codec
from ledger.kafka import KafkaPulseLog
from ledger.model import Pulse
from ledger.ports import OutgoingRecord
from pulse.settings import Settings, as_env

ROOT = Path(__file__).resolve().parents[1]

# name -> PULSE_KAFKA__* settings of the restarted role (and of its first run).
VARIANTS: dict[str, dict[str, str]] = {
    "classic, dynamic members, session.timeout.ms=45000 (librdkafka default)": {
        "PULSE_KAFKA__STATIC_MEMBERSHIP": "false",
        "PULSE_KAFKA__SESSION_TIMEOUT_MS": "45000",
    },
    "classic, dynamic members, session.timeout.ms=6000": {
        "PULSE_KAFKA__STATIC_MEMBERSHIP": "false",
        "PULSE_KAFKA__SESSION_TIMEOUT_MS": "6000",
    },
    "classic, static members, session.timeout.ms=45000": {
        "PULSE_KAFKA__STATIC_MEMBERSHIP": "true",
        "PULSE_KAFKA__SESSION_TIMEOUT_MS": "45000",
    },
    "classic, static members, session.timeout.ms=10000 (our default)": {
        "PULSE_KAFKA__STATIC_MEMBERSHIP": "true",
        "PULSE_KAFKA__SESSION_TIMEOUT_MS": "10000",
    },
    "consumer protocol (KIP-848), dynamic members": {
        "PULSE_KAFKA__STATIC_MEMBERSHIP": "false",
        "PULSE_KAFKA__GROUP_PROTOCOL": "consumer",
    },
    "consumer protocol (KIP-848), static members": {
        "PULSE_KAFKA__STATIC_MEMBERSHIP": "true",
        "PULSE_KAFKA__GROUP_PROTOCOL": "consumer",
    },
}


def role_process(
    settings: Settings, role: str, variant: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """`pulse serve ROLE` on this checkout's code (not the installed entry point)."""
    env = {**os.environ, **as_env(settings), **variant, "PYTHONPATH": str(ROOT)}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", "from pulse.cli import app; app()", "serve", role],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def publish(log: KafkaPulseLog, count: int, run: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pulses = [
        Pulse(f"{run}-{i}", f"rec-{run}-{i % 24}", "network.egress", Decimal(1), "MB", now)
        for i in range(count)
    ]
    log.publish([OutgoingRecord(p.tenant_id.encode(), codec.encode(p)) for p in pulses], now)


def caught_up(log: KafkaPulseLog, group: str) -> bool:
    ends = log.end_offsets()
    committed = log.committed(group)
    return all(committed.get(p, 0) >= o for p, o in ends.items())


def ready_in(health_file: Path) -> bool:
    """The restarted process has imported, connected and run its first loop iteration."""
    try:
        return bool(json.loads(health_file.read_text())["ready"])
    except (OSError, ValueError, KeyError):
        return False


def measure(
    role: str, name: str, variant: dict[str, str], logs: Path
) -> tuple[float, float, float]:
    """Seconds from the kill until caught up; from the restart until the new process is
    ready (start-up: imports, connections); from then until its first commit (takeover)."""
    settings = fresh_settings(servers())
    group = settings.kafka.writer_group if role == "writer" else settings.kafka.projector_group
    log = KafkaPulseLog(settings.kafka.config())
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        if role == "projector":  # the projector reads only what the writer committed
            helpers.append(role_process(settings, "writer", variant, logs / "writer.log"))
        run = uuid.uuid4().hex[:8]
        publish(log, 6000, f"warm-{run}")
        first = role_process(settings, role, variant, logs / f"{role}.log")
        wait_for(lambda: caught_up(log, group), 120, f"the first {role}")
        before = dict(log.committed(group))

        first.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        first.wait()
        publish(log, 360, f"after-kill-{run}")  # about 60 per partition
        if role == "projector":
            wait_for(lambda: caught_up(log, settings.kafka.writer_group), 60, "the writer")
        health_file = logs / f"{role}-{run}-health.json"
        second = role_process(
            settings,
            role,
            variant | {"PULSE_SUPERVISION__HEALTH_FILE": str(health_file)},
            logs / f"{role}.log",
        )
        restarted = time.perf_counter()
        first_commit = started = 0.0
        deadline = restarted + 120
        while not caught_up(log, group):
            if not started and ready_in(health_file):
                started = time.perf_counter()
            if not first_commit and log.committed(group) != before:
                first_commit = time.perf_counter()
            assert second.poll() is None, f"{role} exited; see {logs}"
            assert time.perf_counter() < deadline, f"{role} did not catch up; see {logs}"
            time.sleep(0.05)
        done = time.perf_counter()
        stop(second)
        first_commit, started = first_commit or done, started or done
        # The health file is rewritten every 0.5 s: a takeover shorter than that reads as 0.
        return done - killed, started - restarted, max(0.0, first_commit - started)
    finally:
        for helper in helpers:
            stop(helper)
        log.close()


def _runs(values: list[float]) -> str:
    return f"median {percentile(values, 50):.1f} s ({', '.join(f'{v:.1f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", choices=("writer", "projector"), default="writer")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variant", action="append", help="substring of a variant name")
    args = parser.parse_args()
    chosen = {
        name: env
        for name, env in VARIANTS.items()
        if not args.variant or any(v in name for v in args.variant)
    }
    print(header(f"recovery of a SIGKILLed {args.role}, {args.repeat} runs per variant"))
    logs = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    print(f"role logs: {logs}")
    for name, env in chosen.items():
        recoveries: list[float] = []
        startups: list[float] = []
        takeovers: list[float] = []
        for _ in range(args.repeat):
            try:
                recovery, startup, takeover = measure(args.role, name, env, logs)
            except AssertionError as exc:
                print(f"{name}: FAILED: {exc}", flush=True)
                break
            recoveries.append(recovery)
            startups.append(startup)
            takeovers.append(takeover)
        if not recoveries:
            continue
        print(
            f"{name}: kill -> caught up {_runs(recoveries)}; "
            f"start-up {_runs(startups)}; takeover (ready -> first commit) {_runs(takeovers)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
