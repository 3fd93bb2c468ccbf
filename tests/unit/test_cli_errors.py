"""The CLI maps failures to a clear message and an exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PULSE = str(Path(sys.executable).parent / "pulse")


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PULSE, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_bad_settings_are_invalid_and_name_the_setting() -> None:
    # given / when
    done = run("config", "check", PULSE_BACKEND="bogus")
    # then
    assert done.returncode == 2
    assert "invalid" in done.stderr and "PULSE_BACKEND" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_database_is_unavailable_exit_4() -> None:
    # given: nothing listens on port 1
    # when
    done = run(
        "usage",
        "acme",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
        PULSE_BACKEND="servers",
        PULSE_CQL__PORT="1",
    )
    # then
    assert done.returncode == 4
    assert "unavailable" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_date_is_invalid_exit_2(tmp_path: Path) -> None:
    # given / when
    done = run(
        "usage",
        "acme",
        "--from",
        "yesterday",
        "--to",
        "2026-11-02",
        "--embedded",
        PULSE_EMBEDDED__PATH=str(tmp_path),
    )
    # then
    assert done.returncode == 2
    assert "--from" in done.stderr and "yesterday" in done.stderr


def test_pulse_dev_works_from_a_checkout_through_the_installed_script(tmp_path: Path) -> None:
    # given: the console script of an editable install (devtools/ is not a shipped package)
    # when
    done = run("dev", "status", PULSE_DEV__HOME=str(tmp_path))
    # then
    assert done.returncode == 0, done.stderr
    assert "kafka" in done.stdout and "stopped" in done.stdout
