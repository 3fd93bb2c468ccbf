"""Hostile input through every edge (gRPC, HTTP, operator YAML, settings): each case gets a
clear answer (a per-pulse rejection, a 4xx problem, exit code 2) and none changes stored data.

The cases are counted: `test_the_suite_tries_every_case` states how many there are."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient

from ingestor.hosting import create_server
from ingestor.server import IngestServicer
from ledger.sqlite import SQLitePulseLog
from projections.invoices import Invoicing, writer_commits
from proto.pulse.v1 import pulse_pb2
from pulse.bootstrap import build
from pulse.cli import main
from pulse.demo.client import IngestClient, make_pulse
from pulse.settings import Backend, EmbeddedSettings, Settings
from query.app import create_app
from tests.unit.helpers import event, pulse
from tests.unit.test_catalog_files import PRODUCT, billion_laughs
from tests.unit.test_settings_input import BAD_SETTINGS
from tests.unit.test_validation import HOSTILE_CHARACTERS

SAMPLES = Path(__file__).resolve().parents[2] / "pulse" / "sample"


# --- gRPC ------------------------------------------------------------------------------------

FIELDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "pulse_id": lambda c: {"pulse_id": f"p{c}1"},
    "product_sku": lambda c: {"sku": f"s{c}x"},
    "resource_id": lambda c: {"resource_id": f"vm{c}"},
    "region": lambda c: {"region": f"br{c}"},
    "source": lambda c: {"source": f"svc{c}"},
    "attributes": lambda c: {"attributes": {"k": f"v{c}"}},
}
GRPC_PULSES = [(f, c) for f in FIELDS for c in HOSTILE_CHARACTERS]
GRPC_PAYLOADS = {
    "garbage": b"\xff\xfe garbage",
    "2.1M-empty-pulses": b"\x0a\x00" * (2 * 1024 * 1024 - 16),
    "truncated-varint": b"\x0a\xff\xff\xff",
    "length-beyond-end": b"\x0a\xff\xff\xff\x7f" + b"x" * 10,
    "group-wire-type": b"\x0b\x0c",
    "unknown-fields-only": b"\x10\x01" * 5000,
    "nested-garbage": b"\x0a\x04\xff\xff\xff\xff",
}


@pytest.fixture(scope="module")
def ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IngestClient, Any]]:
    log = SQLitePulseLog(tmp_path_factory.mktemp("hostile") / "log.sqlite", partitions=2)
    servicer = IngestServicer(
        log, lambda _sku: None, max_batch=2000, future_skew=timedelta(minutes=5), auth=None
    )
    server, port = create_server(servicer, "127.0.0.1:0", max_message_bytes=4 * 1024 * 1024)
    server.start()
    client = IngestClient(f"127.0.0.1:{port}")
    yield client, log
    client.close()
    server.stop(None).wait()
    log.close()


def log_contents(log: SQLitePulseLog) -> list[Any]:
    return [(r.key, r.value) for r in log.consumer(f"peek-{datetime.now(UTC)}").poll(10**6, 0)]


@pytest.mark.parametrize(("field", "character"), GRPC_PULSES)
def test_grpc_hostile_pulses_are_rejected_naming_the_field_and_store_nothing(
    ingest: tuple[IngestClient, SQLitePulseLog], field: str, character: str
) -> None:
    # given
    client, log = ingest
    before = log_contents(log)
    at = datetime.now(UTC) - timedelta(minutes=1)
    options = {"pulse_id": "p1", "sku": "x", **FIELDS[field](character)}
    message = make_pulse(
        options.pop("pulse_id"), "acme", options.pop("sku"), "1", "GB", at, **options
    )

    # when
    [result] = client.ingest([message])

    # then
    assert (result.status, result.field) == (pulse_pb2.PulseResult.REJECTED, field)
    assert log_contents(log) == before


@pytest.mark.parametrize("name", sorted(GRPC_PAYLOADS))
def test_grpc_hostile_payloads_are_invalid_and_store_nothing(
    ingest: tuple[IngestClient, SQLitePulseLog], name: str
) -> None:
    # given
    client, log = ingest
    before = log_contents(log)

    # when
    try:
        response = client.ingest_bytes(GRPC_PAYLOADS[name], timeout=30)
        code = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code, response = exc.code(), None

    # then: refused whole, or (unknown fields only) an empty batch refused
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, response)
    assert log_contents(log) == before


# --- HTTP ------------------------------------------------------------------------------------

USAGE = "/v1/tenants/acme/usage"
HTTP_CASES: list[tuple[str, dict[str, str]]] = [
    (USAGE, {"start": "0001-01-01T00:00:00+01:00", "end": "2026-01-01"}),
    (USAGE, {"start": "2026-01-01", "end": "9999-12-31T23:59:59-01:00"}),
    (USAGE, {"start": "2026-01-01", "end": "2025-01-01"}),
    (USAGE, {"start": "yesterday", "end": "2026-01-01"}),
    (USAGE, {"start": "2026-01-01\x00", "end": "2026-01-02"}),
    (USAGE, {"start": "9" * 500, "end": "2026-01-02"}),
    (USAGE, {"start": "2026-01-01T00:00Z", "end": "2036-01-01T00:00Z", "granularity": "month"}),
    (USAGE, {"start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z", "granularity": "\x1b"}),
    (USAGE, {"start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z", "group_by": "sku,\x00"}),
    (USAGE, {"start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z", "region": "\u202e"}),
    ("/v1/tenants/acme/conflicts", {"limit": "1000000"}),
    ("/v1/tenants/acme/conflicts", {"limit": "0"}),
    ("/v1/tenants/acme/conflicts", {"limit": "1e3"}),
    ("/v1/tenants/acme/conflicts", {"cursor": "W10"}),  # "[]"
    ("/v1/tenants/acme/conflicts", {"cursor": "eyJhIjoxfQ"}),  # {"a":1}
    ("/v1/tenants/acme/conflicts", {"cursor": "WyJ4IiwgMS41LCAyXQ"}),  # ["x", 1.5, 2]
    ("/v1/tenants/acme/conflicts", {"cursor": "%%%"}),
    ("/v1/tenants/acme/conflicts", {"cursor": "x" * 5000}),
    ("/v1/tenants/acme/pulses/%00", {}),
    ("/v1/tenants/acme/pulses/%1b%5b2J", {}),
    ("/v1/tenants/acme/pulses/" + "x" * 10_000, {}),
    ("/v1/tenants/acme/pulse", {"pulse_id": ""}),
    ("/v1/tenants/acme/pulse", {"pulse_id": "x" * 10_000}),
    ("/v1/tenants/%E2%80%AEacme/usage", {"start": "2026-01-01", "end": "2026-01-02"}),
    ("/v1/tenants/acme/invoices/2026-13/draft", {}),
    ("/v1/tenants/acme/invoices/../../etc/passwd", {}),
    ("/v1/tenants/acme/invoices/%D9%A2%D9%A0%D9%A2%D9%A6-01", {}),
]


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    """The real app as `pulse serve api --embedded` builds it, with one stored pulse."""
    directory = tmp_path_factory.mktemp("hostile-http")
    chosen = Settings(backend=Backend.EMBEDDED, embedded=EmbeddedSettings(path=directory))
    parts = build(chosen)
    parts.ledger.append([event(pulse("p-1"))])
    commits = writer_commits(parts.log, chosen.kafka.writer_group)
    invoicing = Invoicing(parts.billing, parts.ledger, parts.usage, commits)
    app = create_app(parts.ledger, parts.usage, invoicing, auth=None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, directory
    parts.close()


def digest(directory: Path) -> dict[str, str]:
    """Stored bytes of every database file (-shm is SQLite's shared-memory index: reads
    touch it)."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.endswith("-shm")
    }


@pytest.mark.parametrize(("path", "params"), HTTP_CASES)
def test_http_hostile_requests_get_a_4xx_problem_and_change_nothing(
    http: tuple[TestClient, Path], path: str, params: dict[str, str]
) -> None:
    # given
    client, directory = http
    before = digest(directory)

    # when
    response = client.get(path, params=params)

    # then
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    assert digest(directory) == before


# --- operator YAML and settings, through the command line -------------------------------------

YAML_FILES: dict[str, bytes] = {
    "billion-laughs": billion_laughs().encode(),
    "recursive-alias": b"products: &x [*x]\n",
    "deep-nesting": b"products: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "latin-1": PRODUCT.format(price="1").replace("name: A", "name: Caf\xe9").encode("latin-1"),
    "too-large": b"# " + b"x" * (2 * 1024 * 1024) + b"\n",
    "underscore-price": PRODUCT.format(price="1_000").encode(),
    "arabic-indic-price": PRODUCT.format(price="\u0661\u0662\u0663").encode(),
    "huge-exponent-price": PRODUCT.format(price="1e999999").encode(),
    "esc-in-name": PRODUCT.format(price="1").replace("name: A", 'name: "A\\e[2J"').encode(),
    "bidi-in-sku": PRODUCT.format(price="1").replace("sku: a", 'sku: "a\\u202e"').encode(),
    "nul-in-category": PRODUCT.format(price="1").replace("category: c", 'category: "\\0"').encode(),
    "python-tag": b"products: !!python/object/apply:os.system ['true']\n",
    "binary": bytes(range(256)),
}


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["pulse", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    code = exited.value.code
    return code if isinstance(code, int) else 1


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded data directory holding the sample catalog."""
    data = tmp_path / "data"
    monkeypatch.setenv("PULSE_EMBEDDED__PATH", str(data))
    assert (
        run_cli(monkeypatch, "catalog", "apply", str(SAMPLES / "catalog.yaml"), "--embedded") == 0
    )
    return data


@pytest.mark.parametrize("name", sorted(YAML_FILES))
def test_hostile_catalog_files_exit_2_and_record_nothing(
    embedded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # given
    file = tmp_path / f"{name}.yaml"
    file.write_bytes(YAML_FILES[name])
    before = digest(embedded)

    # when
    code = run_cli(monkeypatch, "catalog", "apply", str(file), "--embedded")
    contracts = run_cli(monkeypatch, "contracts", "apply", str(file), "--embedded")

    # then
    assert (code, contracts) == (2, 2)
    assert digest(embedded) == before


@pytest.mark.parametrize(("variables", "named"), BAD_SETTINGS, ids=[n for _, n in BAD_SETTINGS])
def test_hostile_settings_exit_2_and_record_nothing(
    embedded: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    # given
    before = digest(embedded)
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)

    # when
    code = run_cli(monkeypatch, "catalog", "apply", str(SAMPLES / "contracts.yaml"), "--embedded")

    # then
    assert code == 2
    assert digest(embedded) == before


def test_the_suite_tries_every_case() -> None:
    # given / when
    counts = {
        "gRPC pulses": len(GRPC_PULSES),
        "gRPC payloads": len(GRPC_PAYLOADS),
        "HTTP requests": len(HTTP_CASES),
        "YAML files (catalog and contracts)": 2 * len(YAML_FILES),
        "settings": len(BAD_SETTINGS),
    }

    # then
    print(f"hostile cases: {sum(counts.values())} {counts}")
    assert sum(counts.values()) >= 150
