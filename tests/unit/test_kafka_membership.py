"""Static consumer ids: stable across a restart, never shared by two live members of a group."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from ledger.kafka_membership import claim, membership_config

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_member_on_the_same_host_gets_its_own_id() -> None:
    # given
    group = f"g-{uuid.uuid4().hex}"
    first = claim(group, "host-a")
    # when
    second = claim(group, "host-a")
    # then
    assert (first.instance_id, second.instance_id) == ("host-a", "host-a.1")
    first.release()
    second.release()


def test_a_restarted_member_gets_the_id_of_the_one_it_replaces() -> None:
    # given: two members; the first one goes away
    group = f"g-{uuid.uuid4().hex}"
    first, second = claim(group, "host-a"), claim(group, "host-a")
    first.release()
    # when
    restarted = claim(group, "host-a")
    # then: its successor takes over its partitions at once (same static id)
    assert restarted.instance_id == "host-a"
    restarted.release()
    second.release()


def test_a_killed_process_leaves_its_id_free() -> None:
    # given: a process that claims an id and dies without releasing it (like SIGKILL)
    group = f"g-{uuid.uuid4().hex}"
    code = (
        "import os; from ledger.kafka_membership import claim; "
        f"c = claim({group!r}, 'host-a'); print(c.instance_id, flush=True); os._exit(0)"
    )
    died = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    # when
    successor = claim(group, "host-a")
    # then
    assert died.stdout.strip() == "host-a"
    assert successor.instance_id == "host-a"
    successor.release()


def test_ids_are_per_group_so_writer_and_projector_may_share_a_host_name() -> None:
    writer, projector = claim(f"w-{uuid.uuid4().hex}", None), claim(f"p-{uuid.uuid4().hex}", None)
    assert writer.instance_id == projector.instance_id  # the host name, in two groups
    writer.release()
    projector.release()


def test_the_consumer_protocol_gets_no_classic_timeouts() -> None:
    classic = membership_config(protocol="classic", instance_id="h", session_timeout_ms=6000)
    consumer = membership_config(protocol="consumer", instance_id="h", session_timeout_ms=6000)
    assert classic["session.timeout.ms"] == 6000
    assert "session.timeout.ms" not in consumer and "heartbeat.interval.ms" not in consumer
    assert consumer["group.instance.id"] == "h"
