"""What `pulse dev` runs as Apache Cassandra 5.0: one fast-starting node on 127.0.0.1, or
the nodes of a ring (devtools/ring.py), each described by a `Node`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from cassandra import DriverException
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.io.asyncioreactor import AsyncioConnection
from cassandra.policies import WhiteListRoundRobinPolicy

from devtools.config import DevSettings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
LOGBACK_TEMPLATE = Path(__file__).parent / "logback.xml"
DATA_SUBDIRS = ("data", "commitlog", "saved_caches", "hints", "cdc_raw")

# From Cassandra's conf/jvm17-server.options: without these the JVM dies early on Java 17.
JAVA17_MODULE_OPTIONS = (
    *(
        f"--add-exports={module}=ALL-UNNAMED"
        for module in (
            "java.base/jdk.internal.misc",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
            "jdk.compiler/com.sun.tools.javac.file",
            "jdk.attach/sun.tools.attach",
        )
    ),
    *(
        f"--add-opens={module}=ALL-UNNAMED"
        for module in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "jdk.compiler/com.sun.tools.javac",
            "java.base/java.lang",
            "java.base/java.util",
        )
    ),
)


@dataclass(frozen=True)
class Node:
    """One Cassandra node: its addresses, its place in the ring, its JVM."""

    host: str  # listen_address and rpc_address
    cql_port: int
    storage_port: int  # one storage port for the whole cluster
    jmx_port: int | None  # None: no JMX server (nothing needs nodetool)
    seeds: tuple[str, ...]
    initial_token: int  # num_tokens is 1: this token alone places the node in the ring
    heap: str
    cluster_name: str = "pulse-dev"
    auto_bootstrap: bool = True  # irrelevant for a seed or a single node
    ring_delay_ms: int = 100


def single_node(dev: DevSettings) -> Node:
    """The node of `pulse dev up` on 127.0.0.1."""
    return Node(
        host=HOST,
        cql_port=dev.cql_port,
        storage_port=dev.cassandra_storage_port,
        jmx_port=dev.cassandra_jmx_port,
        seeds=(HOST,),
        initial_token=0,
        heap=dev.cassandra_heap,
    )


def fast_start_options(node: Node) -> tuple[str, ...]:
    """No waiting for gossip to settle, a short ring delay, the token fixed, superuser set up
    at once: a single node (or a fresh ring of seeds) has nothing to wait for."""
    return (
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        f"-Dcassandra.initial_token={node.initial_token}",
        f"-Dcassandra.ring_delay_ms={node.ring_delay_ms}",
        "-Dcassandra.superuser_setup_delay_ms=0",
    )


def cassandra_config(node: Node, data_dir: Path) -> dict[str, object]:
    """The smallest cassandra.yaml Cassandra 5.0 accepts; unknown keys would be fatal."""
    seeds = ",".join(f"{seed}:{node.storage_port}" for seed in node.seeds)
    return {
        "cluster_name": node.cluster_name,
        "num_tokens": 1,
        "initial_token": node.initial_token,
        "auto_bootstrap": node.auto_bootstrap,
        "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
        "endpoint_snitch": "SimpleSnitch",
        "seed_provider": [
            {
                "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                "parameters": [{"seeds": seeds}],
            }
        ],
        "listen_address": node.host,
        "rpc_address": node.host,
        "storage_port": node.storage_port,
        "native_transport_port": node.cql_port,
        "start_native_transport": True,
        "data_file_directories": [str(data_dir / "data")],
        "commitlog_directory": str(data_dir / "commitlog"),
        "saved_caches_directory": str(data_dir / "saved_caches"),
        "hints_directory": str(data_dir / "hints"),
        "cdc_raw_directory": str(data_dir / "cdc_raw"),
        "commitlog_sync": "periodic",
        "commitlog_sync_period": "10000ms",
        # Dropping test keyspaces constantly must not leave snapshots behind.
        "auto_snapshot": False,
        "disk_access_mode": "standard",
        "memtable_allocation_type": "heap_buffers",
    }


def render_yaml(config: dict[str, object]) -> str:
    header = "# Written by `pulse dev up` on every start; edits are overwritten.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


def jamm_agent(jar_dir: Path) -> Path | None:
    """Cassandra measures object sizes with the jamm agent; it arrives as a dependency."""
    return next(iter(sorted(jar_dir.glob("jamm-*.jar"))), None)


def server_command(
    java: str, node: Node, jar_dir: Path, conf_dir: Path, data_dir: Path, log_dir: Path
) -> list[str]:
    jamm = jamm_agent(jar_dir)
    agent = [f"-javaagent:{jamm}"] if jamm else []
    jmx = [f"-Dcassandra.jmx.local.port={node.jmx_port}"] if node.jmx_port else []
    return [
        java,
        f"-Xms{node.heap}",
        f"-Xmx{node.heap}",
        "-Xss256k",
        "-XX:+UseG1GC",
        "-XX:+ParallelRefProcEnabled",
        "-XX:MaxTenuringThreshold=1",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.net.preferIPv4Stack=true",
        "-Djdk.attach.allowAttachSelf=true",
        "-Dio.netty.tryReflectionSetAccessible=true",
        *JAVA17_MODULE_OPTIONS,
        *agent,
        f"-Dcassandra.config={(conf_dir / 'cassandra.yaml').as_uri()}",
        f"-Dcassandra.storagedir={data_dir}",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.logdir={log_dir}",
        f"-Dlogback.configurationFile={conf_dir / 'logback.xml'}",
        *jmx,
        # Its default (under cassandra.home) does not exist here and earns a warning a minute.
        f"-Dcassandra.triggers_dir={conf_dir / 'triggers'}",
        *fast_start_options(node),
        "-cp",
        f"{jar_dir}/*",
        MAIN_CLASS,
    ]


def answers(dev: DevSettings, timeout: float) -> bool:
    """True when `SELECT release_version FROM system.local` answers over CQL."""
    return answers_at(HOST, dev.cql_port, timeout)


def answers_at(host: str, port: int, timeout: float) -> bool:
    return peers_of(host, port, timeout) is not None


def peers_of(host: str, port: int, timeout: float) -> set[str] | None:
    """The peers (system.peers) of the node at host:port, or None if it does not answer."""
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=timeout
    )
    cluster = Cluster(
        [host],
        port=port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=timeout,
        control_connection_timeout=timeout,
        # The default libev reactor's exit hook hangs the interpreter for 5 s in about half
        # of the runs (scylla-driver 3.29, measured); the asyncio reactor exits at once.
        connection_class=AsyncioConnection,
    )
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local").one()
        peers = {str(peer.peer) for peer in session.execute("SELECT peer FROM system.peers")}
    except (NoHostAvailable, DriverException, OSError) as error:
        log.debug("cassandra at %s:%s not answering yet: %s", host, port, error)
        return None
    finally:
        cluster.shutdown()
    log.debug("cassandra %s answers on %s:%s, peers %s", row.release_version, host, port, peers)
    return peers
