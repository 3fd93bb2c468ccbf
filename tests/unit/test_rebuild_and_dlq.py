"""`pulse rebuild` with a range and a report, and dead letters sent through the path again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from ledger import codec
from ledger.model import LogRecord, Position
from ledger.ports import DeadLetter
from projections.rebuild import rebuild
from tests.unit.helpers import catalog
from tests.unit.test_replay import NOW, OCT, World, egress, world

__all__ = ["world"]


def test_rebuild_puts_back_what_the_ledger_says_and_reports_each_difference(world: World) -> None:
    # given: two hours of acme and one of globex; acme's first hour was overwritten wrongly
    world.publish(
        [egress("acme", "a", "5"), egress("acme", "b", "1", hour=1), egress("globex", "g", "2")]
    )
    world.write_all()
    (row,) = world.usage.usage("acme", OCT, OCT + timedelta(hours=1))
    world.usage.replace_hour("acme", OCT, [replace(row, quantity=Decimal(3))])

    # when: only acme's first hour is in the range
    report = rebuild(
        world.ledger,
        world.usage,
        catalog(),
        start=OCT,
        end=OCT + timedelta(hours=1),
        tenant="acme",
    )

    # then
    assert (report.hours, report.tenants) == (1, 1)
    assert [(b.tenant_id, b.hour, b.before, b.after) for b in report.buckets] == [
        ("acme", OCT, Decimal(3), Decimal(5))
    ]
    assert world.usage_gb("acme") == {OCT: Decimal(5), OCT + timedelta(hours=1): Decimal(1)}


def test_a_rebuild_of_a_healthy_projection_reports_nothing(world: World) -> None:
    world.publish([egress("acme", f"p{i}", "1", hour=i) for i in range(5)])
    world.write_all()
    report = rebuild(world.ledger, world.usage, catalog())
    assert report.hours == 5 and report.buckets == []


def test_dead_letters_replayed_after_a_fix_are_written_and_conflicts_stay_conflicts(
    world: World,
) -> None:
    # given: a valid pulse that an older decoder dead-lettered (it never reached the ledger),
    # and a reuse of an id with another payload, dead-lettered as a conflict by the writer
    world.publish([egress("acme", "kept", "1"), egress("acme", "kept", "9")])
    world.write_all()
    wrongly = LogRecord(Position(7, 7), NOW, b"acme", codec.encode(egress("acme", "fixed", "4")))
    world.log.dead_letter([DeadLetter(wrongly, "undecodable", "decoder bug, since fixed")])
    letters = world.log.dead_letters(100)
    assert sorted(d.reason for d in letters) == ["conflict", "undecodable"]

    # when
    outcomes, report = world.replay().resubmit([d.record for d in letters])

    # then
    by_reason = {d.reason: o for d, o in zip(letters, outcomes, strict=True)}
    assert by_reason == {
        "undecodable": "written to the ledger",
        "conflict": "still a conflict: the ledger keeps the first payload",
    }
    assert report.added == 1 and world.ledger_ids() == ["fixed", "kept"]
    assert world.usage_gb("acme") == {OCT: Decimal(5)}
