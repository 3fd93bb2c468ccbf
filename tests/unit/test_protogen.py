"""The generated gRPC code under proto/ is what the .proto produces today."""

from __future__ import annotations

import os

import pytest

from devtools import protogen


def test_generated_code_matches_the_proto(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: generate() prepends the venv's bin to PATH; restore it after the test
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))

    # when
    stale = protogen.stale_files()

    # then
    assert stale == [], f"stale generated code, run `make proto`: {stale}"
