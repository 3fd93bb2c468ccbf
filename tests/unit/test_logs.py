"""Logs an operator can ship: `pulse serve` with PULSE_LOG_FORMAT=json writes one JSON object
per line, with the role and positions, and never a key or a secret, even at DEBUG."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from access.keys import Role, new_key
from access.sqlite import SQLiteKeyStore
from pulse.demo.client import IngestClient, make_pulse
from pulse.logs import JsonFormatter, scrub

SASL_PASSWORD = "kafka-password-that-must-not-leak"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lines_of(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_serve_with_json_logs_at_debug_writes_json_lines_without_secrets(tmp_path: Path) -> None:
    # given: a producer key in the store and in the environment (PULSE_KEY), a Kafka password
    data = tmp_path / "data"
    data.mkdir()
    made = new_key(Role.PRODUCER, [], "loader", datetime.now(UTC), cost=2**10)
    keys = SQLiteKeyStore(data / "keys.sqlite")
    keys.add(made.record)
    keys.close()
    secret = made.token.rsplit("_", 1)[1]
    ingest, api = free_port(), free_port()
    env = {
        **os.environ,
        "PULSE_LOG_FORMAT": "json",
        "PULSE_EMBEDDED__PATH": str(data),
        "PULSE_INGEST__ADDRESS": f"127.0.0.1:{ingest}",
        "PULSE_API__PORT": str(api),
        "PULSE_AUTH__MODE": "on",
        "PULSE_KEY": made.token,
        "PULSE_KAFKA__SASL_USERNAME": "loader",
        "PULSE_KAFKA__SASL_PASSWORD": SASL_PASSWORD,
    }
    stderr = tmp_path / "stderr.log"
    command = [sys.executable, "-c", "from pulse.cli import main; main()"]
    with stderr.open("w") as sink:
        process = subprocess.Popen(
            [*command, "serve", "all", "--embedded", "--verbose"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        # when: pulses with the key, a call with a wrong secret, the key shown to the HTTP API
        client = IngestClient(f"127.0.0.1:{ingest}", key=made.token)
        at = datetime.now(UTC) - timedelta(minutes=1)
        pulses = [make_pulse(f"p-{i}", "acme", "network.egress", "1", "GB", at) for i in range(3)]

        def sent() -> bool:
            try:
                return len(client.ingest(pulses, timeout=2)) == 3
            except grpc.RpcError:
                return False

        assert wait_for(sent)
        client.ingest([make_pulse("p-bad", "acme", "network.egress", "-1", "GB", at)])
        wrong = IngestClient(f"127.0.0.1:{ingest}", key=made.token[:-4] + "AAAA")
        with pytest.raises(grpc.RpcError):
            wrong.ingest(pulses, timeout=5)
        wrong.close()
        client.close()
        usage = f"http://127.0.0.1:{api}/v1/tenants/acme/usage?start=2020-01-01&end=2030-01-01"
        assert httpx.get(usage, headers={"authorization": f"Bearer {made.token}"}).status_code
        assert wait_for(lambda: '"role": "projector"' in stderr.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    # then: every line is one JSON object; the roles and positions are there; no secret is
    lines = lines_of(stderr)
    parsed = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(parsed[0])
    assert any(p["level"] == "DEBUG" for p in parsed)
    writer = [p for p in parsed if p.get("role") == "writer" and "first" in p]
    assert writer and writer[0]["first"].count(":") == 1  # a position partition:offset
    assert any(p.get("role") == "projector" and "last" in p for p in parsed)
    rejected = [p for p in parsed if p.get("role") == "ingestor" and p.get("field")]
    assert rejected == [rejected[0]] and rejected[0]["tenant"] == "acme"
    assert any(p.get("role") == "ingestor" and p.get("code") == "UNAUTHENTICATED" for p in parsed)
    text = stderr.read_text()
    assert secret not in text
    assert SASL_PASSWORD not in text
    assert process.returncode == 0


def test_json_formatter_masks_keys_and_keeps_exceptions_on_one_line() -> None:
    # given
    key = "pl_0123456789abcdef_" + "s" * 43
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "with %s", (key,), sys.exc_info()
        )
    record.tenant = "acme"

    # when
    line = JsonFormatter().format(record)

    # then
    assert "\n" not in line
    found = json.loads(line)
    assert found["tenant"] == "acme"
    assert "s" * 43 not in line
    assert found["message"] == "with pl_0123456789abcdef_***"
    assert "ValueError" in found["exception"]
    assert scrub("Bearer abc.def") == "Bearer ***"
