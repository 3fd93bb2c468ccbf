"""CPU per pulse of the ingestor's batch path without I/O: request bytes -> parse ->
check_batch -> response and records, as the servicer does it (no gRPC, no Kafka).

Run: .venv/bin/python -m bench.ingest_cpu [--batches 20] [--profile]
Process CPU time, not wall time: on a shared machine it moves less with the neighbours.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from datetime import timedelta

from bench.ingest import pulses
from ingestor.server import IngestServicer, _parse
from proto.pulse.v1 import pulse_pb2

BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile, top 15 by own time")
    args = parser.parse_args()
    servicer = IngestServicer(
        None,  # type: ignore[arg-type]  # never published to: _check only
        {"network.egress": "GB"}.get,
        max_batch=2 * BATCH,
        future_skew=timedelta(minutes=5),
        auth=None,
    )
    requests = [
        pulse_pb2.IngestRequest(pulses=pulses(BATCH, f"cpu{n}")).SerializeToString()
        for n in range(args.batches)
    ]

    def run() -> None:
        for data in requests:
            checked, _arrival, _count = servicer._check(_parse(data, 2 * BATCH), None)
            assert len(checked.records) == BATCH

    run()  # warm-up
    per_pulse = []
    for _ in range(args.repeats):
        started = time.process_time()
        run()
        per_pulse.append((time.process_time() - started) / (args.batches * BATCH) * 1e6)
    per_pulse.sort()
    print(
        f"CPU per pulse, bytes -> results + records: min {per_pulse[0]:.2f} µs, "
        f"median {per_pulse[len(per_pulse) // 2]:.2f} µs "
        f"({args.repeats} runs of {args.batches} x {BATCH})"
    )
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run)
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
