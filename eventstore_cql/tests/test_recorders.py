"""The eventsourcing library's own recorder test cases, run on eventstore_cql against real CQL.

The endpoint: PULSE_TEST_CQL (host:port) if set, else `pulse dev up` (reuses running servers).
Without a server the classes are skipped locally and fail on CI (CI=true). Each class works in
a fresh keyspace, dropped at its end; each recorder a test creates gets its own tables.
"""

from __future__ import annotations

import logging
import os
import unittest
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    OperationalError,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.tests import persistence as library
from eventsourcing.utils import Environment

from devtools import servers as devservers
from devtools.config import DevSettings
from eventstore_cql import (
    ScyllaAggregateRecorder,
    ScyllaApplicationRecorder,
    ScyllaDatastore,
    ScyllaFactory,
    ScyllaProcessRecorder,
    ScyllaTrackingRecorder,
    connect,
)
from eventstore_cql.datastore import BATCH_BYTES, Key, LogLock, PendingTracking

pytestmark = pytest.mark.servers

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


_from_session: list[tuple[str, int]] = []


@pytest.fixture(scope="module", autouse=True)
def _suite_servers(request: pytest.FixtureRequest) -> None:
    """Under pytest, take the server from the suite's session fixture (tests/conftest.py): it
    is started once, and stopped at the end of the run if the run started it. Module scope
    runs before the classes' setUpClass."""
    _from_session.append(request.getfixturevalue("cql_endpoint"))


@cache
def cql_endpoint() -> tuple[str, int]:
    if _from_session:
        return _from_session[-1]
    configured = os.environ.get("PULSE_TEST_CQL", "").strip()
    if configured:
        host, _, port = configured.rpartition(":")
        return host, int(port)
    dev = DevSettings()
    if not dev.home.is_absolute():  # the same servers whatever the working directory
        dev = dev.model_copy(update={"home": REPO_ROOT / dev.home})
    found = devservers.up(dev, echo=log.info)
    return found.cql_host, found.cql_port


class CqlKeyspaceTestCase(unittest.TestCase):
    """A fresh keyspace per class on the real server; `datastore` is a session on it."""

    originator_id_type: ClassVar[Literal["uuid", "text"]] = "uuid"
    endpoint: ClassVar[tuple[str, int]]
    keyspace: ClassVar[str]
    datastore: ClassVar[ScyllaDatastore]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.keyspace = f"es_test_{uuid4().hex[:12]}"
        try:
            cls.endpoint = cql_endpoint()
            cls.datastore = cls.new_datastore()
        except Exception as error:  # no Java, ports taken, no answer: all mean "no server"
            reason = f"no CQL server: {type(error).__name__}: {error}"
            if os.environ.get("CI", "").lower() == "true":
                raise cls.failureException(f"real servers unavailable on CI: {reason}") from None
            raise unittest.SkipTest(reason) from None
        cls.datastore.ensure_keyspace()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.datastore.execute(f"DROP KEYSPACE IF EXISTS {cls.keyspace}")
        cls.datastore.close()
        super().tearDownClass()

    @classmethod
    def new_datastore(cls, **options: Any) -> ScyllaDatastore:
        """Another session on the keyspace: to the module, another process."""
        cluster, session = connect([cls.endpoint[0]], cls.endpoint[1])
        options.setdefault("originator_id_type", cls.originator_id_type)
        return ScyllaDatastore(session, cls.keyspace, cluster=cluster, **options)

    @staticmethod
    def fresh(suffix: str) -> str:
        """A table name no other test uses: each recorder starts empty."""
        return f"t{uuid4().hex[:12]}_{suffix}"


class WithTextOriginatorID:
    originator_id_type: ClassVar[Literal["uuid", "text"]] = "text"

    def new_originator_id(self) -> UUID | str:
        return f"test-{uuid4()}"


class TestScyllaAggregateRecorder(CqlKeyspaceTestCase, library.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        recorder = ScyllaAggregateRecorder(self.datastore, events_table_name=self.fresh("events"))
        recorder.create_table()
        return recorder

    def test_write_larger_than_one_batch_is_all_or_nothing(self) -> None:
        # given an aggregate with one event, and a write of 2 x BATCH_BYTES ending in a conflict
        recorder = self.create_recorder()
        oid = self.new_originator_id()
        recorder.insert_events([StoredEvent(oid, 100, "topic", b"x")])
        big = [StoredEvent(oid, v, "topic", b"s" * 1024) for v in range(1, 2 * BATCH_BYTES // 1024)]
        # when
        with self.assertRaises(IntegrityError):
            recorder.insert_events([*big, StoredEvent(oid, 100, "topic", b"y")])
        # then nothing of it was written; without the conflict all of it is
        self.assertEqual([e.originator_version for e in recorder.select_events(oid)], [100])
        recorder.insert_events(big)
        self.assertEqual(len(recorder.select_events(oid)), len(big) + 1)

    def test_write_of_several_aggregates_is_all_or_nothing(self) -> None:
        recorder = self.create_recorder()
        a, b = self.new_originator_id(), self.new_originator_id()
        recorder.insert_events([StoredEvent(b, 1, "topic", b"")])
        with self.assertRaises(IntegrityError):
            recorder.insert_events([StoredEvent(a, 1, "t", b""), StoredEvent(b, 1, "t", b"")])
        self.assertEqual(recorder.select_events(a), [])


class TestScyllaAggregateRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestScyllaAggregateRecorder
):
    pass


class TestScyllaApplicationRecorder(
    CqlKeyspaceTestCase, library.ApplicationRecorderTestCase[ScyllaApplicationRecorder]
):
    def create_recorder(self) -> ScyllaApplicationRecorder:
        recorder = ScyllaApplicationRecorder(self.datastore, events_table_name=self.fresh("events"))
        recorder.create_table()
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()

    def test_write_of_several_aggregates_is_all_or_nothing(self) -> None:
        # given
        recorder = self.create_recorder()
        a, b = self.new_originator_id(), self.new_originator_id()
        self.assertEqual(recorder.insert_events([StoredEvent(b, 1, "topic", b"")]), [1])
        # when the second aggregate's event conflicts
        with self.assertRaises(IntegrityError):
            recorder.insert_events([StoredEvent(a, 1, "t", b""), StoredEvent(b, 1, "t", b"")])
        # then nothing was written and no id was used up
        self.assertEqual(recorder.select_events(a), [])
        self.assertEqual(recorder.max_notification_id(), 1)
        self.assertEqual(recorder.insert_events([StoredEvent(a, 1, "t", b"")]), [2])
        self.assertEqual([n.id for n in recorder.select_notifications(None, 10)], [1, 2])

    def test_ids_unique_gap_free_across_processes(self) -> None:
        """Three sessions (to the module, three processes) x 4 threads race on one log."""
        # given
        table = self.fresh("events")
        recorders = [
            ScyllaApplicationRecorder(self.new_datastore(), events_table_name=table)
            for _ in range(3)
        ]
        recorders[0].create_table()
        writes = [(recorders[i % 3], self.new_originator_id()) for i in range(60)]

        def write(job: tuple[ScyllaApplicationRecorder, UUID | str]) -> Sequence[int] | None:
            recorder, oid = job
            return recorder.insert_events([StoredEvent(oid, v, "topic", b"") for v in (1, 2)])

        # when
        try:
            with ThreadPoolExecutor(max_workers=12) as pool:
                returned = list(pool.map(write, writes))
        finally:
            for recorder in recorders:
                recorder.datastore.close()
        # then every write got two consecutive ids; together they are exactly 1..120
        self.assertTrue(all(ids is not None and ids[1] == ids[0] + 1 for ids in returned))
        reader = ScyllaApplicationRecorder(self.datastore, events_table_name=table)
        notifications = reader.select_notifications(None, 1000)
        self.assertEqual([n.id for n in notifications], list(range(1, 121)))
        self.assertEqual(sorted(i for ids in returned if ids for i in ids), list(range(1, 121)))
        for notification in notifications:  # each one also in its aggregate's sequence
            stored = reader.select_events(notification.originator_id)
            self.assertIn(notification.originator_version, [e.originator_version for e in stored])

    def test_missing_keyspace_raises_programming_error(self) -> None:
        datastore = ScyllaDatastore(self.datastore.session, f"es_missing_{uuid4().hex[:8]}")
        recorder = ScyllaApplicationRecorder(datastore)
        event = StoredEvent(uuid4(), 1, "topic", b"")
        for call in (
            lambda: recorder.insert_events([event]),
            lambda: recorder.select_events(uuid4()),
            lambda: recorder.select_notifications(1, 1),
            recorder.max_notification_id,
        ):
            with self.assertRaises(ProgrammingError):
                call()

    def test_write_to_missing_tables_raises_and_frees_the_lock(self) -> None:
        # given a recorder whose tables were never created
        recorder = ScyllaApplicationRecorder(self.datastore, events_table_name=self.fresh("x"))
        event = StoredEvent(uuid4(), 1, "topic", b"")
        # when / then
        with self.assertRaises(ProgrammingError):
            recorder.insert_events([event])
        recorder.create_table()
        self.assertEqual(recorder.insert_events([event]), [1])  # no wait for a lease to expire


class TestScyllaApplicationRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestScyllaApplicationRecorder
):
    pass


class TestScyllaNonInterleavingNotificationIDs(
    CqlKeyspaceTestCase, library.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> ApplicationRecorder:
        recorder = ScyllaApplicationRecorder(self.datastore, events_table_name=self.fresh("events"))
        recorder.create_table()
        return recorder


class TestScyllaTrackingRecorder(CqlKeyspaceTestCase, library.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        recorder = ScyllaTrackingRecorder(
            self.datastore, tracking_table_name=self.fresh("tracking")
        )
        recorder.create_table()
        return recorder


class TestScyllaProcessRecorder(CqlKeyspaceTestCase, library.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        recorder = ScyllaProcessRecorder(
            self.datastore,
            events_table_name=self.fresh("events"),
            tracking_table_name=self.fresh("tracking"),
        )
        recorder.create_table()
        return recorder


class TestScyllaProcessRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestScyllaProcessRecorder
):
    pass


class SimulatedCrash(BaseException):
    """The process dies between writing and committing: no except-Exception cleanup runs."""


class CrashingProcessRecorder(ScyllaProcessRecorder):
    def _commit(
        self, lock: LogLock, count: int, keys: list[Key], pending_tracking: PendingTracking | None
    ) -> None:
        raise SimulatedCrash


class TestScyllaCrashRecovery(CqlKeyspaceTestCase):
    def test_next_writer_undoes_a_dead_writers_rows_after_its_lease(self) -> None:
        # given a writer that dies after writing events and tracking, before committing
        tables = {"events_table_name": self.fresh("events"), "tracking_table_name": self.fresh("t")}
        dead = CrashingProcessRecorder(self.new_datastore(lock_lease=1.0), **tables)
        dead.create_table()
        a, b = uuid4(), uuid4()
        dead.insert_tracking(Tracking("upstream", 4))
        with self.assertRaises(SimulatedCrash):
            dead.insert_events([StoredEvent(a, 1, "t", b"")], tracking=Tracking("upstream", 5))
        dead.datastore.close()
        survivor = ScyllaProcessRecorder(self.datastore, **tables)
        self.assertEqual(len(survivor.select_events(a)), 1)  # the dead writer's row is there
        self.assertEqual(survivor.max_tracking_id("upstream"), 5)
        self.assertIsNone(survivor.max_notification_id())  # but it was never committed
        # when another writer writes once the lease has expired
        ids = survivor.insert_events([StoredEvent(b, 1, "t", b"")], tracking=Tracking("up2", 1))
        # then the dead writer's rows are gone, and ids continue without a gap
        self.assertEqual(ids, [1])
        self.assertEqual(survivor.select_events(a), [])
        self.assertEqual(survivor.max_tracking_id("upstream"), 4)
        self.assertEqual([n.originator_id for n in survivor.select_notifications(None, 9)], [b])

    def test_writer_waits_for_a_live_lock_then_times_out(self) -> None:
        # given a lock held by a writer that died a moment ago, with a long lease
        table = self.fresh("events")
        dead = CrashingProcessRecorder(self.new_datastore(lock_lease=60.0), events_table_name=table)
        dead.create_table()
        with self.assertRaises(SimulatedCrash):
            dead.insert_events([StoredEvent(uuid4(), 1, "t", b"")])
        dead.datastore.close()
        waiting = self.new_datastore(lock_timeout=0.5)
        try:
            recorder = ScyllaApplicationRecorder(waiting, events_table_name=table)
            # when / then
            with self.assertRaises(OperationalError):
                recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"")])
        finally:
            waiting.close()


class ScyllaTrackingRecorderSubclass(ScyllaTrackingRecorder):
    pass


class TestScyllaInfrastructureFactory(
    CqlKeyspaceTestCase, library.InfrastructureFactoryTestCase[ScyllaFactory]
):
    def expected_factory_class(self) -> type[ScyllaFactory]:
        return ScyllaFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return ScyllaAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return ScyllaApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return ScyllaTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return ScyllaTrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return ScyllaProcessRecorder

    def setUp(self) -> None:
        self.env = Environment("TestCase")
        self.env.update(self.module_env())
        super().setUp()

    def module_env(self) -> dict[str, str]:
        return {
            InfrastructureFactory.PERSISTENCE_MODULE: "eventstore_cql",
            ScyllaFactory.CQL_CONTACT_POINTS: self.endpoint[0],
            ScyllaFactory.CQL_PORT: str(self.endpoint[1]),
            ScyllaFactory.CQL_KEYSPACE: self.keyspace,
        }

    def test_construct_raises_environment_error_when_keyspace_missing(self) -> None:
        del self.env[ScyllaFactory.CQL_KEYSPACE]
        with self.assertRaises(OSError) as raised:
            InfrastructureFactory.construct(self.env)
        self.assertIn("TESTCASE_CQL_KEYSPACE, CQL_KEYSPACE", str(raised.exception))

    def test_invalid_settings_raise_environment_error(self) -> None:
        for key, value in [
            ("CQL_PORT", "x"),
            ("CQL_LOCK_LEASE", "y"),
            ("ORIGINATOR_ID_TYPE", "int"),
        ]:
            with self.subTest(key=key), self.assertRaises(OSError):
                ScyllaFactory(Environment("TestCase", {**self.env, key: value}))

    def test_unreachable_server_raises_operational_error(self) -> None:
        with self.assertRaises(OperationalError):
            ScyllaFactory(Environment("TestCase", {**self.env, "CQL_PORT": "1"}))

    def test_application_saves_and_reads_aggregates(self) -> None:
        # given an Application configured only through its environment
        env = {**self.module_env(), "IS_SNAPSHOTTING_ENABLED": "y"}
        app = Application[UUID](env=env)
        try:
            account = Account()
            account.credit(5)
            account.credit(7)
            # when
            app.save(account)
            app.take_snapshot(account.id)
            # then
            self.assertEqual(app.repository.get(account.id).balance, 12)
            topics = [n.topic for n in app.notification_log.select(start=1, limit=10)]
            self.assertEqual(len(topics), 3)
            self.assertEqual(app.recorder.max_notification_id(), 3)
        finally:
            app.close()


class Account(Aggregate):
    @event("Opened")
    def __init__(self) -> None:
        self.balance = 0

    @event("Credited")
    def credit(self, amount: int) -> None:
        self.balance += amount
