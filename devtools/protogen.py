"""Regenerates the Python code for proto/ (python -m devtools.protogen [--check])."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_FILES = ["pulse/v1/pulse.proto"]
OUTPUTS = ["pulse_pb2.py", "pulse_pb2.pyi", "pulse_pb2_grpc.py", "pulse_pb2_grpc.pyi"]


def generate(out_dir: Path) -> None:
    """Runs protoc (grpcio-tools) with mypy-protobuf stubs into out_dir/pulse/v1."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *[str(ROOT / "proto" / p) for p in PROTO_FILES],
    ]
    # protoc finds the mypy-protobuf plugins on PATH; they sit beside this interpreter.
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # The generated grpc module imports `pulse.v1`, which is our CLI package name; point it
    # at the package the code really lives in.
    for name in OUTPUTS:
        path = out_dir / "pulse" / "v1" / name
        text = path.read_text()
        text = text.replace("from pulse.v1 import", "from proto.pulse.v1 import")
        text = text.replace("import pulse.v1.pulse_pb2", "import proto.pulse.v1.pulse_pb2")
        text = text.replace("pulse.v1.pulse_pb2.", "proto.pulse.v1.pulse_pb2.")
        path.write_text(text)


def stale_files() -> list[str]:
    """Names of generated files that differ from what the .proto produces now."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        return [
            name
            for name in OUTPUTS
            if (Path(tmp) / "pulse" / "v1" / name).read_text()
            != (ROOT / "proto" / "pulse" / "v1" / name).read_text()
        ]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_files()
        if stale:
            print("stale generated code, run `make proto`: " + ", ".join(stale))
            return 1
        return 0
    generate(ROOT / "proto")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
