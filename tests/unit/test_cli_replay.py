"""`pulse replay` as an operator runs it, on the embedded backend filled by `pulse demo`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_cli_errors import run


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    done = run("demo", "--data-dir", str(root))
    assert done.returncode == 0, done.stderr
    return root


def test_replaying_the_whole_demo_log_changes_nothing(demo_data: Path) -> None:
    # given: the demo wrote every pulse of its log to the ledger
    # when
    done = run("replay", "--all", "--embedded", "--json", PULSE_EMBEDDED__PATH=str(demo_data))

    # then
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["records"] > 0 and report["added"] == 0
    assert report["buckets"] == [] and report["drafts"] == [] and report["notes"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-offset", "x:1"], "is not PARTITION:OFFSET"),
        (["--from-offset", "٣:1"], "is not PARTITION:OFFSET"),
        (["--from-offset", "99:0"], "partition 99 does not exist"),
        (["--from-offset", "0:1", "--from-offset", "0:5"], "partition 0 is given twice"),
        (["--all", "--from-time", "2026-11-01"], "exactly one of"),
        ([], "exactly one of"),
        (["--from-time", "yesterday"], "--from-time"),
    ],
)
def test_bad_replay_ranges_are_invalid_and_change_nothing(
    demo_data: Path, args: list[str], message: str
) -> None:
    # given / when
    done = run("replay", *args, "--embedded", PULSE_EMBEDDED__PATH=str(demo_data))

    # then
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_the_demos_conflict_is_listed_and_stays_a_conflict_when_replayed(demo_data: Path) -> None:
    # given: the demo sends one reused id with another payload
    env = {"PULSE_EMBEDDED__PATH": str(demo_data)}

    # when
    listed = run("dlq", "list", "--reason", "conflict", "--embedded", **env)
    replayed = run("dlq", "replay", "--reason", "conflict", "--embedded", **env)

    # then
    assert listed.returncode == 0 and "1 dead-lettered record(s) shown" in listed.stdout
    assert replayed.returncode == 0, replayed.stderr
    assert "still a conflict" in replayed.stdout


def test_a_rebuild_of_the_demo_finds_nothing_to_change(demo_data: Path) -> None:
    done = run("rebuild", "--json", "--embedded", PULSE_EMBEDDED__PATH=str(demo_data))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["hours"] > 0 and report["buckets"] == []


def test_a_dead_letter_id_that_does_not_exist_is_not_found(demo_data: Path) -> None:
    done = run("dlq", "replay", "--id", "9:9", "--embedded", PULSE_EMBEDDED__PATH=str(demo_data))
    assert done.returncode == 3 and "no dead letter at 9:9" in done.stderr
