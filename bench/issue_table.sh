#!/usr/bin/env bash
# Re-measures every row of issue 13's table in one sitting, one benchmark after another (never
# two at once: they share the machine), each log kept in $OUT. Needs the servers up
# (`.venv/bin/pulse dev up`) and ghz for the single-pulse rows
# (`go install github.com/bojand/ghz/cmd/ghz@latest`; GHZ=path if not on PATH; bench.grpc_single reads it).
#   bash bench/issue_table.sh [OUT]   (default /tmp/pulse-bench-<time>)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/pulse-bench-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"
PY=.venv/bin/python
run() {  # name, then the command
  local name=$1; shift
  echo "== $name: $* ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT/summary.txt"
  "$@" > "$OUT/$name.log" 2>&1 || echo "   FAILED (rc $?)" | tee -a "$OUT/summary.txt"
  grep -E "pulses/s|calls/s|ratio|p99|µs|wall|backlog|total" "$OUT/$name.log" | sed 's/^/   /' >> "$OUT/summary.txt" || true
}
run writer $PY -m bench.writer --pulses 100000
run freshness-1000 $PY -m bench.freshness --rate 1000 --seconds 20
run freshness-5000 $PY -m bench.freshness --rate 5000 --seconds 20
run freshness-10000 $PY -m bench.freshness --rate 10000 --seconds 20
run invoices-live $PY -m bench.invoices --tenants 10000 --processes 2 --only columns
run ingest $PY -m bench.ingest
run grpc-single $PY -m bench.grpc_single --calls 20000 --in-flight 8,100,1000
run cost $PY -m bench.cost --rate 2000 --seconds 30
echo "logs in $OUT"; cat "$OUT/summary.txt"
