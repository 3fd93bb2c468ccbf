"""The pure core imports no I/O library (checked in a fresh interpreter, free of other tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_CORE = [
    "kernel.units",
    "kernel.decimals",
    "kernel.errors",
    "catalog.products",
    "catalog.terms",
    "catalog.terms_codec",
    "catalog.files",
    "catalog.pricing",
    "catalog.grains",
    "catalog.day_columns",
    "catalog.lines",
    "projections.daily",
    "catalog.plans",
    "catalog.invoice",
    "catalog.focus",
    "ledger.model",
    "ledger.validation",
    "ledger.dedup",
    "projections.hourly",
    "projections.usage_report",
    "ingestor.core",
    "ingestor.wire",
    "access.keys",
    "access.verifier",
]
IO_LIBRARIES = {"cassandra", "confluent_kafka", "grpc", "fastapi"}


def io_imports_of(modules: list[str]) -> set[str]:
    """Top-level I/O packages present in sys.modules after importing `modules` afresh."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout)) & IO_LIBRARIES


@pytest.mark.parametrize("module", PURE_CORE)
def test_pure_core_module_imports_no_io_library(module: str) -> None:
    # given a fresh interpreter / when
    found = io_imports_of([module])

    # then
    assert found == set(), f"{module} pulls in {sorted(found)}"


def test_the_check_sees_an_io_import() -> None:
    # given: the gRPC edge, which must import grpc (proves the check can fail)

    # when
    found = io_imports_of(["ingestor.server"])

    # then
    assert "grpc" in found
