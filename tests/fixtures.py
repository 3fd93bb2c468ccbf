"""Session fixtures shared by every test package (loaded by the root conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cassandra.cluster import Session

from tests import ring, servers

# ---------------------------------------------------------------------------------------
# Real servers (Kafka, CQL) — logic in tests/servers.py. Started lazily: only a test that
# requests one of these fixtures makes the session obtain the servers. Without servers a
# test is skipped locally and fails on CI (CI=true).
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server_provider() -> Iterator[servers.ServerProvider]:
    provider = servers.ServerProvider(os.environ)
    yield provider
    provider.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(server_provider: servers.ServerProvider) -> str:
    """Bootstrap address (host:port) of a real Kafka."""
    return servers.obtain(server_provider.kafka_bootstrap, os.environ)


@pytest.fixture(scope="session")
def cql_endpoint(server_provider: servers.ServerProvider) -> tuple[str, int]:
    """(host, port) of a real CQL server: ScyllaDB or Cassandra."""
    return servers.obtain(server_provider.cql_endpoint, os.environ)


@pytest.fixture(scope="session")
def cql_session(cql_endpoint: tuple[str, int]) -> Iterator[Session]:
    cluster, session = servers.connect_cql(*cql_endpoint)
    yield session
    cluster.shutdown()


@pytest.fixture(scope="session")
def test_keyspace(cql_session: Session) -> Iterator[str]:
    """A fresh keyspace (SimpleStrategy, RF 1) for this session, dropped at its end."""
    name = servers.new_test_keyspace(cql_session)
    yield name
    servers.drop_keyspace(cql_session, name)


@pytest.fixture(scope="session")
def topic_suffix() -> str:
    """Unique per session: append to topic names so runs never share topics."""
    return servers.new_topic_suffix()


@pytest.fixture(scope="session")
def ring_provider() -> Iterator[ring.RingProvider]:
    provider = ring.RingProvider(os.environ)
    yield provider
    provider.close()


@pytest.fixture
def cassandra_ring(ring_provider: ring.RingProvider) -> Iterator[ring.Ring]:
    """A 3-node Cassandra ring (`pulse dev ring`, 127.0.0.2-4), all nodes up at the start."""
    found = servers.obtain(ring_provider.ring, os.environ)
    found.ensure_up()
    yield found


# ---------------------------------------------------------------------------------------
# End of the real-server section.
# ---------------------------------------------------------------------------------------
