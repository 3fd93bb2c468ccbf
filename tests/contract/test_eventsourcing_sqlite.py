"""The eventsourcing library's own recorder test cases on its built-in SQLite module.

The embedded default for catalog, contracts and invoice events; the same cases run on our CQL
module in test_eventsourcing_cql.py, so both backends are held to one contract.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any, ClassVar, Literal
from unittest import TestCase
from uuid import UUID, uuid4

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)
from eventsourcing.tests import persistence as library
from eventsourcing.utils import Environment

# In-memory databases, except where concurrent writers need a file, as in the library's own
# SQLite tests.
MEMORY = ":memory:"


class WithFileDatabase(TestCase):
    """A database file in a temporary directory, removed (with -wal and -shm) after the test."""

    def new_file_db(self) -> str:
        directory = tempfile.mkdtemp(prefix="es_sqlite_")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        return f"file:{directory}/events.db"

    def file_datastore(self, **options: Any) -> SQLiteDatastore:
        # Not closed at cleanup: the library's concurrency test leaves reader threads running,
        # and closing their connections under them crashes sqlite3. Unlinked files are fine.
        return SQLiteDatastore(self.new_file_db(), **options)


class WithTextOriginatorID:
    originator_id_type: ClassVar[Literal["uuid", "text"]] = "text"

    def new_originator_id(self) -> UUID | str:
        return f"test-{uuid4()}"


class TestSQLiteAggregateRecorder(library.AggregateRecorderTestCase):
    originator_id_type: ClassVar[Literal["uuid", "text"]] = "uuid"

    def create_recorder(self) -> AggregateRecorder:
        datastore = SQLiteDatastore(MEMORY, originator_id_type=self.originator_id_type)
        recorder = SQLiteAggregateRecorder(datastore)
        recorder.create_table()
        return recorder


class TestSQLiteAggregateRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestSQLiteAggregateRecorder
):
    pass


class TestSQLiteApplicationRecorder(
    WithFileDatabase, library.ApplicationRecorderTestCase[SQLiteApplicationRecorder]
):
    originator_id_type: ClassVar[Literal["uuid", "text"]] = "uuid"
    file_db = False

    def create_recorder(self) -> SQLiteApplicationRecorder:
        options: dict[str, Any] = {"pool_size": 100, "originator_id_type": self.originator_id_type}
        if self.file_db:
            datastore = self.file_datastore(**options)
        else:
            datastore = SQLiteDatastore(MEMORY, **options)
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        return recorder

    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:
        self.file_db = True
        super().test_concurrent_no_conflicts()

    def test_concurrent_throughput(self) -> None:
        self.file_db = True
        super().test_concurrent_throughput()


class TestSQLiteApplicationRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestSQLiteApplicationRecorder
):
    pass


class TestSQLiteNonInterleavingNotificationIDs(
    WithFileDatabase, library.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> ApplicationRecorder:
        recorder = SQLiteApplicationRecorder(self.file_datastore())
        recorder.create_table()
        return recorder


class TestSQLiteTrackingRecorder(library.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        recorder = SQLiteTrackingRecorder(SQLiteDatastore(MEMORY))
        recorder.create_table()
        return recorder


class TestSQLiteProcessRecorder(library.ProcessRecorderTestCase):
    originator_id_type: ClassVar[Literal["uuid", "text"]] = "uuid"

    def create_recorder(self) -> ProcessRecorder:
        datastore = SQLiteDatastore(MEMORY, originator_id_type=self.originator_id_type)
        recorder = SQLiteProcessRecorder(datastore)
        recorder.create_table()
        return recorder


class TestSQLiteProcessRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestSQLiteProcessRecorder
):
    pass


class SQLiteTrackingRecorderSubclass(SQLiteTrackingRecorder):
    pass


class TestSQLiteInfrastructureFactory(library.InfrastructureFactoryTestCase[SQLiteFactory]):
    def expected_factory_class(self) -> type[SQLiteFactory]:
        return SQLiteFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return SQLiteAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return SQLiteApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return SQLiteTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return SQLiteTrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return SQLiteProcessRecorder

    def setUp(self) -> None:
        self.env = Environment("TestCase")
        self.env[InfrastructureFactory.PERSISTENCE_MODULE] = "eventsourcing.sqlite"
        self.env[SQLiteFactory.SQLITE_DBNAME] = MEMORY
        super().setUp()
