"""Hostile settings and options: one clear line naming the variable, exit 2, no traceback."""

from __future__ import annotations

import sys

import pytest

from pulse.cli import main

# (variables, what the error must name)
BAD_SETTINGS = [
    ({"PULSE_KAFKA": "{bad json"}, "PULSE_KAFKA"),
    ({"PULSE_CQL": "[1, 2"}, "PULSE_CQL"),
    ({"PULSE_KAFKA": '{"topic": 5, "partitions": "many"}'}, "PULSE_KAFKA"),
    ({"PULSE_INGEST__MAX_BATCH": "abc"}, "PULSE_INGEST__MAX_BATCH"),
    ({"PULSE_INGEST__MAX_BATCH": "0"}, "PULSE_INGEST__MAX_BATCH"),
    ({"PULSE_BAKEND": "servers"}, "PULSE_BAKEND"),
    ({"PULSE_KAFKA__BOOTSTRAP": "x:1"}, "PULSE_KAFKA__BOOTSTRAP"),
    ({"PULSE_KAFKA__TOPIC__NAME": "x"}, "PULSE_KAFKA__TOPIC__NAME"),
    ({"pulse_api__hots": "0.0.0.0"}, "PULSE_API__HOTS"),
    ({"PULSE_": "x"}, "PULSE_"),
]


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["pulse", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.mark.parametrize(("variables", "named"), BAD_SETTINGS, ids=[n for _, n in BAD_SETTINGS])
def test_bad_settings_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    named: str,
) -> None:
    # given
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    # when
    code, stderr = run_cli(monkeypatch, capsys, "config", "check")

    # then
    assert code == 2, stderr
    assert named in stderr
    assert "Traceback" not in stderr


def test_dev_and_test_variables_are_not_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: variables of devtools/config.py and of the test fixtures
    monkeypatch.setenv("PULSE_DEV__KAFKA_PORT", "19092")
    monkeypatch.setenv("PULSE_TEST_CQL", "127.0.0.1:9042")
    monkeypatch.setenv("PULSE_KAFKA__TOPIC", "t")

    # when
    code, stderr = run_cli(monkeypatch, capsys, "config", "check")

    # then
    assert code == 0, stderr


@pytest.mark.parametrize(
    "args",
    [
        ["dlq", "list", "--embedded", "--limit", "0"],
        ["dlq", "list", "--embedded", "--limit", "100000000000"],
        ["send", "--total", "0"],
        ["send", "--total", "99999999999"],
        ["send", "--batch-size", "1000000"],
        ["send", "--tenants", "100000000"],
    ],
)
def test_numeric_options_are_bounded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    # given / when
    code, stderr = run_cli(monkeypatch, capsys, *args)

    # then: usage error (2) from the option's bounds, before anything runs
    assert code == 2, stderr
    assert "Traceback" not in stderr
