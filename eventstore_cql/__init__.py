"""eventsourcing persistence module on CQL (ScyllaDB, Cassandra 5): "eventstore_cql".

datastore: keyspace, session, write lock; recorders: the aggregate recorder and its locked
write; application: application, tracking and process recorders; factory: the one factory
class the library's lookup finds here. See README.md beside this file.
"""

from eventstore_cql.application import (
    ScyllaApplicationRecorder,
    ScyllaProcessRecorder,
    ScyllaSubscription,
    ScyllaTrackingRecorder,
)
from eventstore_cql.datastore import ScyllaDatastore
from eventstore_cql.factory import ScyllaFactory, connect
from eventstore_cql.recorders import ScyllaAggregateRecorder

Factory = ScyllaFactory

__all__ = [
    "Factory",
    "ScyllaAggregateRecorder",
    "ScyllaApplicationRecorder",
    "ScyllaDatastore",
    "ScyllaFactory",
    "ScyllaProcessRecorder",
    "ScyllaSubscription",
    "ScyllaTrackingRecorder",
    "connect",
]
