"""CQL errors by category: a request the server refuses for good surfaces, it is never retried."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kernel.errors import BackendError, Unavailable
from ledger.retry import retrying
from ledger.scylla import ScyllaLedgerStore
from storage.cql import translated

pytestmark = pytest.mark.servers


def test_a_missing_keyspace_is_a_backend_error_not_unavailable(cql_session: Any) -> None:
    # given / when: the schema was never migrated
    with pytest.raises(BackendError) as caught:
        ScyllaLedgerStore(cql_session, "no_such_keyspace")
    # then: not a category that retry loops wait on for ever
    assert not isinstance(caught.value, Unavailable)
    assert "no_such_keyspace" in str(caught.value)


def test_a_statement_the_server_cannot_parse_is_a_backend_error(cql_session: Any) -> None:
    # given / when / then
    with pytest.raises(BackendError), translated("reading"):
        cql_session.execute("SELEC nothing")


def test_a_role_retrying_a_backend_error_stops_at_the_first_attempt(cql_session: Any) -> None:
    # given
    attempts = 0

    def write() -> None:
        nonlocal attempts
        attempts += 1
        with translated("writing a batch"):
            cql_session.execute("INSERT INTO no_such_keyspace.t (k) VALUES (1)")

    # when / then: raised to the role (which stops loudly), after one attempt
    with pytest.raises(BackendError):
        retrying(write, threading.Event(), "writing a batch")
    assert attempts == 1
