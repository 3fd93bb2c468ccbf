"""Container healthchecks: exit 0 when the process's roles are ready, 1 otherwise.

python -m pulse.healthcheck grpc HOST:PORT     # gRPC health of the ingestor (NOT_SERVING: 1)
python -m pulse.healthcheck http URL           # e.g. http://127.0.0.1:8000/health/ready
python -m pulse.healthcheck file PATH [MAX_AGE_SECONDS]
    # the report a role process rewrites every second (PULSE_SUPERVISION__HEALTH_FILE);
    # older than MAX_AGE (default 10 s) means the process is hung or gone
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

USAGE = "usage: python -m pulse.healthcheck grpc HOST:PORT | http URL | file PATH [MAX_AGE]"


def check_file(path: Path, max_age: float) -> tuple[bool, str]:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return False, f"no health report at {path}: {exc}"
    age = time.time() - float(report.get("written_at", 0))
    if age > max_age:
        return False, f"health report is {age:.0f} s old (the process is hung or gone)"
    if not report.get("ready"):
        return False, f"not ready: {json.dumps(report.get('roles', {}))}"
    return True, "ready"


def check_http(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200, str(response.status)
    except urllib.error.HTTPError as exc:  # 503 with the per-role report as its body
        return False, f"{exc.code}: {exc.read().decode(errors='replace')[:500]}"
    except OSError as exc:
        return False, str(exc)


def check_grpc(target: str) -> tuple[bool, str]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
    except grpc.RpcError as exc:
        return False, str(exc)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: list[str]) -> int:
    match argv:
        case ["grpc", target]:
            ok, detail = check_grpc(target)
        case ["http", url]:
            ok, detail = check_http(url)
        case ["file", path]:
            ok, detail = check_file(Path(path), 10.0)
        case ["file", path, max_age]:
            ok, detail = check_file(Path(path), float(max_age))
        case _:
            print(USAGE, file=sys.stderr)
            return 2
    if not ok:
        print(detail, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
