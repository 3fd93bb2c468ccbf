"""`pulse dev ring`: a Cassandra ring of 3 nodes on 127.0.0.2-4 for the real failure tests.

It runs beside the single node of `pulse dev up` (127.0.0.1) without touching it: other
addresses (the same ports on each, as Cassandra wants one storage port per cluster), JMX
off, its own cluster name (a node that reached 127.0.0.1:7000 by mistake would be turned
away) and its own home, PULSE_DEV__HOME/ring (conf, data, logs and pid files per node). The
jars are the single node's (PULSE_DEV__HOME/jars/cassandra).

A fresh ring starts all nodes at once: each is a seed with its own evenly spaced Murmur3
token and `auto_bootstrap: false`, so no node streams data or waits for gossip to settle.
Ready means every node answers CQL and lists every other node in `system.peers`.
"""

from __future__ import annotations

import errno
import logging
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from devtools import cassandra as dev_cassandra
from devtools.config import DevSettings
from devtools.layout import DevPaths, DevServerError, Echo
from devtools.maven import resolve_jars
from devtools.ports import port_accepts, port_is_free
from devtools.process import (
    is_alive,
    log_excerpt,
    process_command_line,
    rss_kib,
)
from devtools.servers import (
    POLL_SECONDS,
    PROBE_TIMEOUT_SECONDS,
    ServerStatus,
    exclusive,
    launch,
    stop_processes,
)

log = logging.getLogger(__name__)

CLUSTER_NAME = "pulse-ring"
RING_DELAY_MS = 1000  # how long a node waits for gossip before it trusts its own ring view
MIN_TOKEN = -(2**63)  # Murmur3Partitioner's token range is [-2**63, 2**63)


@dataclass(frozen=True)
class RingNode:
    name: str  # node1, node2, ...
    node: dev_cassandra.Node

    @property
    def endpoint(self) -> str:
        return f"{self.node.host}:{self.node.cql_port}"


@dataclass(frozen=True)
class RingEndpoints:
    hosts: tuple[str, ...]
    cql_port: int

    @property
    def contact_points(self) -> str:
        """PULSE_CQL__CONTACT_POINTS for the ring."""
        return ",".join(self.hosts)


def hosts(dev: DevSettings) -> tuple[str, ...]:
    return tuple(host.strip() for host in dev.ring_hosts.split(","))


def tokens(count: int) -> list[int]:
    """Evenly spaced Murmur3 tokens, one per node: each node owns 1/count of the ring."""
    return [MIN_TOKEN + i * (2**64 // count) for i in range(count)]


def ring_nodes(dev: DevSettings) -> list[RingNode]:
    addresses = hosts(dev)
    return [
        RingNode(
            f"node{i + 1}",
            dev_cassandra.Node(
                host=host,
                cql_port=dev.ring_cql_port,
                storage_port=dev.ring_storage_port,
                jmx_port=None,
                seeds=addresses,
                initial_token=token,
                heap=dev.ring_heap,
                cluster_name=CLUSTER_NAME,
                auto_bootstrap=False,
                ring_delay_ms=RING_DELAY_MS,
            ),
        )
        for i, (host, token) in enumerate(zip(addresses, tokens(len(addresses)), strict=True))
    ]


def ring_paths(dev: DevSettings) -> DevPaths:
    return DevPaths(DevPaths.of(dev).home / "ring")


def endpoints(dev: DevSettings) -> RingEndpoints:
    return RingEndpoints(hosts(dev), dev.ring_cql_port)


def up(dev: DevSettings, *, echo: Echo = print, only: str | None = None) -> RingEndpoints:
    """Starts the nodes not running (all, or just `only`), reuses the others; returns once
    every node answers CQL and sees all the others as peers.

    All or nothing: if the ring does not come up, the nodes this call started are stopped.
    """
    paths = ring_paths(dev)
    paths.create()
    nodes = ring_nodes(dev)
    with exclusive(paths):
        running = {ring.name: _recorded_pid(ring, paths) for ring in nodes}
        to_start = [
            ring for ring in nodes if running[ring.name] is None and only in (None, ring.name)
        ]
        _check_ports_free(to_start)
        started: list[tuple[str, int]] = []
        try:
            if to_start:
                jar_dir = resolve_jars("cassandra", dev, DevPaths.of(dev), echo)
            for ring in to_start:
                pid = _start(ring, dev, paths, jar_dir)
                started.append((ring.name, pid))
                running[ring.name] = pid
                echo(f"starting {ring.name} on {ring.endpoint} (pid {pid}, {paths.log(ring.name)})")
            _wait_until_ready(nodes, running, dev.start_timeout_seconds, paths, echo)
        except BaseException:
            if started:
                echo("ring start-up failed; stopping what this call started")
                stop_processes(started, dev, paths, echo)
            raise
    return endpoints(dev)


def down(dev: DevSettings, *, echo: Echo = print) -> None:
    """Stops every node recorded in a pid file: SIGTERM, then SIGKILL after the timeout."""
    stop_nodes(dev, [ring.name for ring in ring_nodes(dev)], echo=echo)


def stop_nodes(
    dev: DevSettings, names: list[str], *, echo: Echo = print, sig: signal.Signals = signal.SIGTERM
) -> None:
    """Stops the named nodes by their recorded pids (SIGTERM: a drain; SIGKILL: a crash)."""
    paths = ring_paths(dev)
    if not paths.run.is_dir():
        echo(f"nothing to stop: no ring under {paths.home}")
        return
    with exclusive(paths):
        targets = [
            (ring.name, pid)
            for ring in ring_nodes(dev)
            if ring.name in names and (pid := _recorded_pid(ring, paths))
        ]
        if not targets:
            echo(f"nothing to stop: none of {', '.join(names)} running under {paths.home}")
            return
        stop_processes(targets, dev, paths, echo, sig)


def status(dev: DevSettings) -> list[ServerStatus]:
    paths = ring_paths(dev)
    nodes = ring_nodes(dev)
    found = []
    for ring in nodes:
        pid = _recorded_pid(ring, paths, forget_stale=False)
        state = "stopped"
        if pid is not None:
            peers = _peers(ring)
            missing = _missing_peers(ring, nodes, peers)
            state = "not answering" if peers is None else "joining" if missing else "ready"
        rss = rss_kib(pid) if pid else None
        found.append(ServerStatus(ring.name, state, pid, ring.endpoint, paths.log(ring.name), rss))
    return found


def _check_ports_free(nodes: list[RingNode]) -> None:
    absent = [ring.node.host for ring in nodes if not _address_exists(ring.node.host)]
    if absent:
        raise DevServerError(
            f"cannot start the ring: no interface has the address(es) {', '.join(absent)}. "
            "Linux routes all of 127.0.0.0/8 to lo; elsewhere (macOS) add them first, e.g. "
            "`sudo ifconfig lo0 alias 127.0.0.2 up`, or choose others with PULSE_DEV__RING_HOSTS"
        )
    taken = [
        f"{ring.node.host}:{port}"
        for ring in nodes
        for port in (ring.node.cql_port, ring.node.storage_port)
        if not port_is_free(port, ring.node.host)
    ]
    if taken:
        raise DevServerError(
            f"cannot start the ring: {', '.join(taken)} already in use by another process "
            "(PULSE_DEV__RING_HOSTS, PULSE_DEV__RING_CQL_PORT, PULSE_DEV__RING_STORAGE_PORT)"
        )


def _address_exists(host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError as error:
            return error.errno != errno.EADDRNOTAVAIL
    return True


def _start(ring: RingNode, dev: DevSettings, paths: DevPaths, jar_dir: Path) -> int:
    data = paths.data(ring.name)
    conf = paths.conf / ring.name
    for sub in dev_cassandra.DATA_SUBDIRS:
        (data / sub).mkdir(parents=True, exist_ok=True)
    (conf / "triggers").mkdir(parents=True, exist_ok=True)
    config = dev_cassandra.cassandra_config(ring.node, data)
    (conf / "cassandra.yaml").write_text(dev_cassandra.render_yaml(config))
    shutil.copyfile(dev_cassandra.LOGBACK_TEMPLATE, conf / "logback.xml")
    if dev_cassandra.jamm_agent(jar_dir) is None:
        raise DevServerError(f"jamm-*.jar missing from {jar_dir}; delete that directory")
    command = dev_cassandra.server_command(
        dev.java, ring.node, jar_dir, conf, data, paths.home / "logs"
    )
    return launch(command, paths.log(ring.name), paths.pid(ring.name), dev)


def _wait_until_ready(
    nodes: list[RingNode],
    running: dict[str, int | None],
    timeout: float,
    paths: DevPaths,
    echo: Echo,
) -> None:
    started = time.monotonic()
    remaining = [ring for ring in nodes if running[ring.name] is not None]
    while remaining:
        for ring in list(remaining):
            pid = running[ring.name]
            if pid is None or not is_alive(pid):
                raise DevServerError(
                    f"ring {ring.name} (pid {pid}) exited during start-up.\n"
                    f"{log_excerpt(paths.log(ring.name))}"
                )
            peers = _peers(ring)
            if peers is not None and not _missing_peers(ring, nodes, peers):
                waited = time.monotonic() - started
                echo(f"{ring.name} ready on {ring.endpoint}, peers {sorted(peers)}: {waited:.1f} s")
                remaining.remove(ring)
        if remaining and time.monotonic() - started > timeout:
            names = ", ".join(ring.name for ring in remaining)
            raise DevServerError(
                f"ring nodes {names} not ready (CQL answering, every other node in system.peers) "
                f"within {timeout:.0f} s (PULSE_DEV__START_TIMEOUT_SECONDS).\n"
                f"{log_excerpt(paths.log(remaining[0].name))}"
            )
        if remaining:
            time.sleep(POLL_SECONDS)


def _peers(ring: RingNode) -> set[str] | None:
    # A plain connect first: the driver logs noisily against a closed port.
    if not port_accepts(ring.node.cql_port, ring.node.host):
        return None
    return dev_cassandra.peers_of(ring.node.host, ring.node.cql_port, PROBE_TIMEOUT_SECONDS)


def _missing_peers(ring: RingNode, nodes: list[RingNode], peers: set[str] | None) -> set[str]:
    others = {other.node.host for other in nodes if other is not ring}
    return others - (peers or set())


def _recorded_pid(ring: RingNode, paths: DevPaths, *, forget_stale: bool = True) -> int | None:
    """The pid in the node's pid file, if that process is alive and is this node of this home."""
    pid_file = paths.pid(ring.name)
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    pid = int(text) if text.isdigit() else None
    # A reused pid belongs to someone else: never signal it. The node's own config path is
    # in its command line, and in no other process's.
    own_config = f"-Dlogback.configurationFile={paths.conf / ring.name / 'logback.xml'}"
    if pid is not None and is_alive(pid) and own_config in process_command_line(pid):
        return pid
    if forget_stale:
        log.info("removing stale pid file %s (pid %s)", pid_file, text)
        pid_file.unlink(missing_ok=True)
    return None
