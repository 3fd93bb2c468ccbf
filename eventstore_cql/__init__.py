"""eventsourcing persistence module on CQL (ScyllaDB, Cassandra 5): "eventstore_cql".

datastore: the keyspace, session and write lock; recorders: the aggregate recorder and its locked
write; factory: the application, tracking and process recorders and the one factory class the
library's lookup finds here. See README.md beside this file.
"""

from eventstore_cql.factory import (
    ScyllaAggregateRecorder,
    ScyllaApplicationRecorder,
    ScyllaDatastore,
    ScyllaFactory,
    ScyllaProcessRecorder,
    ScyllaSubscription,
    ScyllaTrackingRecorder,
    connect,
)

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
