"""`pulse keys create|list|revoke` on the embedded store, and keys never reaching a log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from access.sqlite import SQLiteKeyStore
from access.verifier import KeyVerifier
from ingestor.hosting import create_server
from ingestor.server import IngestServicer
from ledger.sqlite import SQLitePulseLog
from ledger.sqlite_store import SQLiteLedgerStore
from projections.sqlite import SQLiteUsageStore
from pulse.cli import app
from pulse.demo.client import IngestClient, make_pulse
from query.app import create_app
from tests.unit.helpers import SKEW, catalog

ROOT = Path(__file__).resolve().parents[2]


def pulse_cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`pulse ARGS` in a fresh interpreter on this checkout's code (exit codes of main())."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PULSE_EMBEDDED__PATH": str(data),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-c", "from pulse.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_create_prints_the_key_last_list_never_shows_it_revoke_marks_it(tmp_path: Path) -> None:
    # given / when
    created = pulse_cli(
        tmp_path,
        "keys",
        "create",
        "--role",
        "tenant",
        "--tenant",
        "acme",
        "--name",
        "acme portal",
        "--embedded",
    )
    token = created.stdout.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    listed = pulse_cli(tmp_path, "keys", "list", "--embedded")
    revoked = pulse_cli(tmp_path, "keys", "revoke", key_id, "--embedded")
    after = pulse_cli(tmp_path, "keys", "list", "--embedded")
    # then
    assert created.returncode == 0, created.stderr
    assert token.startswith("pl_") and len(token) == 3 + 16 + 1 + 43
    assert listed.returncode == 0
    for column in (key_id, "tenant", "acme", "acme portal"):
        assert column in listed.stdout
    secret = token.split("_", 2)[2]
    assert secret not in listed.stdout + after.stdout and "scrypt" not in listed.stdout
    assert revoked.returncode == 0 and key_id in revoked.stdout
    store = SQLiteKeyStore(tmp_path / "keys.sqlite")
    record = store.get(key_id)
    store.close()
    assert record is not None and record.revoked is not None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("create", "--role", "admin"), 2, "--role"),
        (("create", "--role", "tenant"), 2, "tenant"),
        (("create", "--role", "operator", "--tenant", "acme"), 2, "operator"),
        (("revoke", "0123456789abcdef"), 3, "0123456789abcdef"),
    ],
)
def test_bad_requests_are_clear_exit_codes(
    tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    done = pulse_cli(tmp_path, "keys", *args, "--embedded")
    assert done.returncode == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def test_keys_never_reach_the_logs(tmp_path: Path, debug_logs: pytest.LogCaptureFixture) -> None:
    # given: keys made by the command line, in this process, with every logger at DEBUG
    env = {"PULSE_EMBEDDED__PATH": str(tmp_path)}
    runner = CliRunner()
    tokens = []
    for role in (["--role", "tenant", "--tenant", "acme"], ["--role", "producer"]):
        done = runner.invoke(app, ["keys", "create", *role, "--embedded"], env=env)
        assert done.exit_code == 0, done.output
        tokens.append(done.output.strip().splitlines()[-1])
    reader, producer = tokens
    store = SQLiteKeyStore(tmp_path / "keys.sqlite")
    verifier = KeyVerifier(store, ttl=5.0)
    # when: they are used, wrongly used and revoked, over HTTP and gRPC
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    usage = SQLiteUsageStore(tmp_path / "usage.sqlite")
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=1)
    servicer = IngestServicer(
        log, catalog().billing_unit, max_batch=10, future_skew=SKEW, auth=verifier
    )
    server, port = create_server(servicer, "127.0.0.1:0", max_message_bytes=1 << 20)
    server.start()
    at = datetime.now(UTC) - timedelta(minutes=1)
    with TestClient(create_app(ledger, usage, auth=verifier)) as http:
        url = "/v1/tenants/acme/conflicts"
        assert http.get(url, headers={"Authorization": f"Bearer {reader}"}).status_code == 200
        assert http.get(url, headers={"Authorization": f"Bearer {reader}x"}).status_code == 401
        assert http.get(url, headers={"Authorization": f"Bearer {producer}"}).status_code == 403
        for token in (producer, reader, producer[:-1]):
            client = IngestClient(f"127.0.0.1:{port}", key=token)
            try:
                client.ingest([make_pulse("p1", "acme", "network.egress", "1", "GB", at)])
            except Exception as error:  # the refused ones
                logging.getLogger("test").info("refused: %s", error)
            client.close()
        done = runner.invoke(app, ["keys", "revoke", reader.split("_")[1], "--embedded"], env=env)
        assert done.exit_code == 0
        runner.invoke(app, ["keys", "list", "--embedded"], env=env)
    server.stop(None).wait()
    for closeable in (store, ledger, usage, log):
        closeable.close()
    # then: something was logged, and no part of a secret or its hash is in it
    assert debug_logs.records
    text = debug_logs.text
    for token in tokens:
        secret = token.split("_", 2)[2]
        assert secret[:12] not in text
    assert "scrypt$" not in text
