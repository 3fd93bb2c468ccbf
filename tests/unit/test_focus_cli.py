"""`pulse export focus` on the embedded backend: the file, its header, and refusals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.focus import COLUMNS
from kernel.errors import Invalid
from pulse.bootstrap import SAMPLE_CATALOG
from pulse.cli import app


def test_export_writes_a_focus_csv_with_the_header_and_no_rows_without_usage(
    tmp_path: Path,
) -> None:
    # given
    env = {"PULSE_EMBEDDED__PATH": str(tmp_path)}
    runner = CliRunner()
    applied = runner.invoke(app, ["catalog", "apply", str(SAMPLE_CATALOG), "--embedded"], env=env)
    assert applied.exit_code == 0, applied.output
    out = tmp_path / "focus.csv"
    # when
    result = runner.invoke(
        app,
        [
            "export",
            "focus",
            "--period",
            "2026-10",
            "--tenant",
            "acme",
            "-o",
            str(out),
            "--embedded",
        ],
        env=env,
    )
    # then
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == [",".join(COLUMNS)]
    assert "0 row(s) of 1 tenant(s)" in " ".join(result.output.split())


@pytest.mark.parametrize("name", ["focus.xlsx", "focus.parquet"])
def test_export_refuses_a_format_it_cannot_write(tmp_path: Path, name: str) -> None:
    if name.endswith(".parquet") and importlib.util.find_spec("pyarrow") is not None:
        pytest.skip("pyarrow is installed: Parquet is written")
    # given
    env = {"PULSE_EMBEDDED__PATH": str(tmp_path)}
    # when
    result = CliRunner().invoke(
        app,
        ["export", "focus", "--period", "2026-10", "-o", str(tmp_path / name), "--embedded"],
        env=env,
    )
    # then: Invalid (exit 2 through main()), naming the file
    assert isinstance(result.exception, Invalid) and name in str(result.exception)
    assert not (tmp_path / name).exists()
