"""Starts, reuses and stops the local Kafka and Cassandra of `pulse dev` (detached JVMs)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools import cassandra as dev_cassandra
from devtools import kafka as dev_kafka
from devtools.config import DevSettings
from devtools.layout import HOST, DevPaths, DevServerError, Echo
from devtools.maven import resolve_jars
from devtools.ports import PortSetting, check_ports_free, port_accepts
from devtools.process import (
    is_alive,
    log_excerpt,
    process_command_line,
    rss_kib,
    signal_group,
    wait_gone,
)

log = logging.getLogger(__name__)


PROBE_TIMEOUT_SECONDS = 2.0
POLL_SECONDS = 0.25
KILL_WAIT_SECONDS = 10.0
FORMAT_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class DevEndpoints:
    kafka_bootstrap: str
    cql_host: str
    cql_port: int


@dataclass(frozen=True)
class ServerStatus:
    name: str
    state: str  # "ready", "not answering" (process alive, client port silent) or "stopped"
    pid: int | None
    endpoint: str
    log_file: Path
    rss_kib: int | None


@dataclass(frozen=True)
class ServerSpec:
    """One dev server: how to prepare and launch it, recognise its process, and probe it."""

    name: str
    profile: str  # the Maven profile of devtools/pom.xml that resolves its jars
    main_class: str
    endpoint: str
    client_port: int
    ports: tuple[PortSetting, ...]
    prepare: Callable[[Path], None]  # given the jar dir: writes configs, formats storage
    command: Callable[[Path], list[str]]  # given the jar dir
    answers: Callable[[float], bool]


@dataclass(frozen=True)
class _Pending:
    spec: ServerSpec
    pid: int
    since: float  # time.monotonic() when it was launched or found


def endpoints(dev: DevSettings) -> DevEndpoints:
    return DevEndpoints(dev_kafka.bootstrap(dev), HOST, dev.cql_port)


def server_specs(dev: DevSettings, paths: DevPaths) -> list[ServerSpec]:
    """Cassandra first: it is the long pole, so it boots while Kafka is being prepared."""
    return [_cassandra_spec(dev, paths), _kafka_spec(dev, paths)]


def _kafka_spec(dev: DevSettings, paths: DevPaths) -> ServerSpec:
    config = paths.conf / "kafka.properties"
    data = paths.data("kafka")

    def prepare(jar_dir: Path) -> None:
        data.mkdir(parents=True, exist_ok=True)
        config.write_text(dev_kafka.render_properties(dev_kafka.server_properties(dev, data)))
        # Formatting once keeps topics and offsets across down/up; a new cluster id would not.
        if not dev_kafka.is_formatted(data):
            command = dev_kafka.format_command(dev, jar_dir, config, dev_kafka.new_cluster_id())
            _run_once(command, paths.log("kafka-format"), "format the Kafka storage", dev)

    return ServerSpec(
        name="kafka",
        profile="kafka",
        main_class=dev_kafka.MAIN_CLASS,
        endpoint=dev_kafka.bootstrap(dev),
        client_port=dev.kafka_port,
        ports=(
            PortSetting(dev.kafka_port, "kafka_port"),
            PortSetting(dev.kafka_controller_port, "kafka_controller_port"),
        ),
        prepare=prepare,
        command=lambda jar_dir: dev_kafka.server_command(dev, jar_dir, config),
        answers=lambda timeout: dev_kafka.answers(dev, timeout),
    )


def _cassandra_spec(dev: DevSettings, paths: DevPaths) -> ServerSpec:
    data = paths.data("cassandra")

    def prepare(jar_dir: Path) -> None:
        for sub in dev_cassandra.DATA_SUBDIRS:
            (data / sub).mkdir(parents=True, exist_ok=True)
        config = dev_cassandra.cassandra_config(dev_cassandra.single_node(dev), data)
        (paths.conf / "cassandra.yaml").write_text(dev_cassandra.render_yaml(config))
        shutil.copyfile(dev_cassandra.LOGBACK_TEMPLATE, paths.conf / "logback.xml")
        (paths.conf / "triggers").mkdir(exist_ok=True)
        if dev_cassandra.jamm_agent(jar_dir) is None:
            raise DevServerError(f"jamm-*.jar missing from {jar_dir}; delete that directory")

    return ServerSpec(
        name="cassandra",
        profile="cassandra",
        main_class=dev_cassandra.MAIN_CLASS,
        endpoint=f"{HOST}:{dev.cql_port}",
        client_port=dev.cql_port,
        ports=(
            PortSetting(dev.cql_port, "cql_port"),
            PortSetting(dev.cassandra_storage_port, "cassandra_storage_port"),
            PortSetting(dev.cassandra_jmx_port, "cassandra_jmx_port"),
        ),
        prepare=prepare,
        command=lambda jar_dir: dev_cassandra.server_command(
            dev.java, dev_cassandra.single_node(dev), jar_dir, paths.conf, data, paths.home / "logs"
        ),
        answers=lambda timeout: dev_cassandra.answers(dev, timeout),
    )


def up(dev: DevSettings, *, echo: Echo = print) -> DevEndpoints:
    """Starts Kafka and Cassandra, or reuses ours if running; returns once both answer.

    All or nothing: if either fails to come up, whatever this call started is stopped.
    """
    paths = DevPaths.of(dev)
    paths.create()
    with exclusive(paths):
        specs = server_specs(dev, paths)
        found = {spec.name: _recorded_pid(spec, paths, forget_stale=True) for spec in specs}
        to_start = [spec for spec in specs if found[spec.name] is None]
        check_ports_free([port for spec in to_start for port in spec.ports])
        pending = [_reuse(spec, pid, echo) for spec in specs if (pid := found[spec.name])]
        started: list[_Pending] = []
        try:
            for spec in to_start:
                started.append(_start(spec, dev, paths, echo))
            _wait_until_ready([*pending, *started], dev.start_timeout_seconds, paths, echo)
        except BaseException:
            if started:
                echo("start-up failed; stopping what this `up` started")
                stop_processes([(item.spec.name, item.pid) for item in started], dev, paths, echo)
            raise
    return endpoints(dev)


def down(dev: DevSettings, *, echo: Echo = print) -> None:
    """Stops exactly the processes recorded in the pid files: SIGTERM, then SIGKILL."""
    paths = DevPaths.of(dev)
    if not paths.run.is_dir():
        echo(f"nothing to stop: no pulse dev servers under {paths.home}")
        return
    with exclusive(paths):
        targets = [
            (spec.name, pid)
            for spec in server_specs(dev, paths)
            if (pid := _recorded_pid(spec, paths, forget_stale=True))
        ]
        if not targets:
            echo(f"nothing to stop: no pulse dev servers running under {paths.home}")
            return
        stop_processes(targets, dev, paths, echo)


def status(dev: DevSettings) -> list[ServerStatus]:
    paths = DevPaths.of(dev)
    return [_status_of(spec, paths) for spec in server_specs(dev, paths)]


def _status_of(spec: ServerSpec, paths: DevPaths) -> ServerStatus:
    pid = _recorded_pid(spec, paths, forget_stale=False)
    state = "stopped" if pid is None else "ready" if _answers(spec) else "not answering"
    rss = rss_kib(pid) if pid else None
    return ServerStatus(spec.name, state, pid, spec.endpoint, paths.log(spec.name), rss)


def _answers(spec: ServerSpec) -> bool:
    # The client libraries log noisily against a closed port; a plain connect is silent.
    return port_accepts(spec.client_port) and spec.answers(PROBE_TIMEOUT_SECONDS)


def _reuse(spec: ServerSpec, pid: int, echo: Echo) -> _Pending:
    echo(f"{spec.name} already running (pid {pid}); reusing it")
    return _Pending(spec, pid, time.monotonic())


def _start(spec: ServerSpec, dev: DevSettings, paths: DevPaths, echo: Echo) -> _Pending:
    jar_dir = resolve_jars(spec.profile, dev, paths, echo)
    spec.prepare(jar_dir)
    pid = launch(spec.command(jar_dir), paths.log(spec.name), paths.pid(spec.name), dev)
    echo(f"starting {spec.name} (pid {pid}, log {paths.log(spec.name)})")
    return _Pending(spec, pid, time.monotonic())


def _wait_until_ready(pending: list[_Pending], timeout: float, paths: DevPaths, echo: Echo) -> None:
    remaining = list(pending)
    while remaining:
        for item in list(remaining):
            name, log_file = item.spec.name, paths.log(item.spec.name)
            if not is_alive(item.pid):
                raise DevServerError(
                    f"{name} (pid {item.pid}) exited during start-up.\n{log_excerpt(log_file)}"
                )
            if _answers(item.spec):
                waited = time.monotonic() - item.since
                echo(f"{name} ready on {item.spec.endpoint} after {waited:.1f} s")
                remaining.remove(item)
            elif time.monotonic() - item.since > timeout:
                raise DevServerError(
                    f"{name} did not answer on {item.spec.endpoint} within {timeout:.0f} s "
                    f"(PULSE_DEV__START_TIMEOUT_SECONDS).\n{log_excerpt(log_file)}"
                )
        if remaining:
            time.sleep(POLL_SECONDS)


def _run_once(command: list[str], log_file: Path, what: str, dev: DevSettings) -> None:
    with log_file.open("wb") as out:
        try:
            code = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, timeout=FORMAT_TIMEOUT_SECONDS
            ).returncode
        except FileNotFoundError as error:
            raise java_missing(dev) from error
        except subprocess.TimeoutExpired as error:
            raise DevServerError(f"could not {what} within {error.timeout:.0f} s") from error
    if code != 0:
        raise DevServerError(f"could not {what} (exit {code}).\n{log_excerpt(log_file)}")


def launch(command: list[str], log_file: Path, pid_file: Path, dev: DevSettings) -> int:
    """Detached (own session), so the server outlives the CLI and `down` can kill its group."""
    if log_file.exists():
        log_file.replace(log_file.with_name(log_file.name + ".1"))
    with log_file.open("wb") as out:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=pid_file.parent.parent,  # the home: a JVM crash file lands there
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise java_missing(dev) from error
    pid_file.write_text(f"{process.pid}\n")
    log.info("launched pid %s: %s", process.pid, " ".join(command))
    return process.pid


def java_missing(dev: DevSettings) -> DevServerError:
    return DevServerError(f"{dev.java!r} not found: install Java 17 or set PULSE_DEV__JAVA")


def stop_processes(
    targets: list[tuple[str, int]],
    dev: DevSettings,
    paths: DevPaths,
    echo: Echo,
    sig: signal.Signals = signal.SIGTERM,
) -> None:
    """Signals each (name, pid), SIGKILLs what outlives the timeout, removes their pid files."""
    started = time.monotonic()
    for name, pid in targets:
        echo(f"stopping {name} (pid {pid}{'' if sig == signal.SIGTERM else ', ' + sig.name})")
        signal_group(pid, sig)
    stubborn = wait_gone(targets, dev.stop_timeout_seconds)
    for name, pid in stubborn:
        echo(f"{name} (pid {pid}) still running after {dev.stop_timeout_seconds:.0f} s; SIGKILL")
        signal_group(pid, signal.SIGKILL)
    survivors = wait_gone(stubborn, KILL_WAIT_SECONDS)
    for name, _ in targets:
        if all(name != survivor for survivor, _ in survivors):
            paths.pid(name).unlink(missing_ok=True)
    if survivors:
        raise DevServerError(f"could not stop {survivors}; their pid files are kept")
    echo(f"stopped {', '.join(name for name, _ in targets)} in {time.monotonic() - started:.1f} s")


def _recorded_pid(spec: ServerSpec, paths: DevPaths, *, forget_stale: bool) -> int | None:
    """The pid in the pid file, if that process is alive and is this server of this home."""
    pid_file = paths.pid(spec.name)
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    pid = int(text) if text.isdigit() else None
    # A reused pid belongs to someone else: never signal it, never report it as ours.
    if pid is not None and is_alive(pid) and _is_ours(pid, spec, paths):
        return pid
    if forget_stale:
        log.info("removing stale pid file %s (pid %s)", pid_file, text)
        pid_file.unlink(missing_ok=True)
    return None


def _is_ours(pid: int, spec: ServerSpec, paths: DevPaths) -> bool:
    command_line = process_command_line(pid)
    return spec.main_class in command_line and str(paths.home) in command_line


@contextlib.contextmanager
def exclusive(paths: DevPaths) -> Iterator[None]:
    """Serialises `up`/`down` of one home, e.g. two pytest runs starting at once."""
    with (paths.run / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
