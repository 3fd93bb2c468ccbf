"""Event store benchmark: single-event aggregate saves through an eventsourcing Application.

Run: .venv/bin/python -m eventstore_cql.bench [--saves 2000] [--threads 1 4]

The same Application saves new one-event aggregates on our CQL module (eventstore_cql, real
Cassandra/ScyllaDB: PULSE_TEST_CQL=host:port, else `pulse dev up`) and on the library's SQLite
module (a file database, as the embedded default uses) as the baseline. Each save is one
`insert_events` call: on CQL that is three LWTs (acquire the log, the aggregate's conditional
batch, commit) plus the notification row. After each run the notification log is read back
and must hold exactly ids 1..N.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.common import header, percentile, servers
from eventstore_cql.factory import connect

WARM_UP = 20


class Meter(Aggregate):
    @event("Registered")
    def __init__(self, sku: str) -> None:
        self.sku = sku


@cache
def cql_endpoint() -> tuple[str, str]:
    configured = os.environ.get("PULSE_TEST_CQL", "").strip()
    if configured:
        host, _, port = configured.rpartition(":")
        return host, port
    found = servers()
    return found.cql_host, str(found.cql_port)


def cql_env() -> dict[str, str]:
    host, port = cql_endpoint()
    return {
        "PERSISTENCE_MODULE": "eventstore_cql",
        "CQL_CONTACT_POINTS": host,
        "CQL_PORT": port,
        "CQL_KEYSPACE": f"bench_es_{uuid.uuid4().hex[:8]}",
    }


def drop_keyspace(env: dict[str, str]) -> None:
    cluster, session = connect([env["CQL_CONTACT_POINTS"]], int(env["CQL_PORT"]))
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {env['CQL_KEYSPACE']}")
    finally:
        cluster.shutdown()


def sqlite_env(directory: str) -> dict[str, str]:
    db = os.path.join(directory, f"{uuid.uuid4().hex[:8]}.db")
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": db}


def run(env: dict[str, str], saves: int, threads: int) -> tuple[float, list[float]]:
    """(events per second, per-save latencies in ms) for `saves` saves from `threads` threads."""
    app = Application[UUID](env=env)
    try:
        for i in range(WARM_UP):
            app.save(Meter(f"warm-{i}"))

        def save(i: int) -> float:
            started = time.perf_counter()
            app.save(Meter(f"sku-{i}"))
            return (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            latencies = list(pool.map(save, range(saves)))
        elapsed = time.perf_counter() - started
        check_log(app, WARM_UP + saves)
    finally:
        app.close()
    return saves / elapsed, latencies


def check_log(app: Application[UUID], expected: int) -> None:
    ids: list[int] = []
    while len(ids) < expected + 1:
        page = app.recorder.select_notifications(len(ids) + 1, 500)
        if not page:
            break
        ids.extend(n.id for n in page)
    if ids != list(range(1, expected + 1)):
        raise SystemExit(f"notification log is not 1..{expected}: {len(ids)} ids")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    print(header("eventsourcing event store: one-event aggregate saves via Application.save"))
    print(f"{'backend':<8} {'threads':>7} {'saves':>6} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7}")
    with tempfile.TemporaryDirectory(prefix="bench_es_") as directory:
        backends: list[tuple[str, Callable[[], dict[str, str]]]] = [
            ("sqlite", lambda: sqlite_env(directory)),
            ("cql", cql_env),
        ]
        for name, make_env in backends:
            for threads in args.threads:
                env = make_env()
                try:
                    rate, latencies = run(env, args.saves, threads)
                finally:
                    if name == "cql":
                        drop_keyspace(env)
                p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
                print(
                    f"{name:<8} {threads:>7} {args.saves:>6} {rate:>9.0f} {p50:>7.2f} {p99:>7.2f}"
                )


if __name__ == "__main__":
    main()
