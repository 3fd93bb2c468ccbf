"""Server jars resolved from Maven Central with the profiles of pom.xml, once per pom."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

from devtools.config import DevSettings
from devtools.layout import DevPaths, DevServerError, Echo
from devtools.process import LOG_TAIL_LINES

POM = Path(__file__).parent / "pom.xml"
RESOLVE_TIMEOUT_SECONDS = 1800.0  # a cold resolution downloads ~110 MB from Maven Central


def resolve_jars(profile: str, dev: DevSettings, paths: DevPaths, echo: Echo) -> Path:
    """Copies a profile's jars out of Maven; skipped while the marker matches the pom."""
    jar_dir = paths.jars(profile)
    marker = jar_dir / ".resolved"
    stamp = f"{profile} {hashlib.sha256(POM.read_bytes()).hexdigest()}\n"
    if marker.is_file() and marker.read_text() == stamp:
        return jar_dir
    # Jars of an older pom would sit next to the new ones on the `dir/*` classpath.
    shutil.rmtree(jar_dir, ignore_errors=True)
    echo(f"resolving the {profile} jars with Maven into {jar_dir} (once) ...")
    command = [dev.maven, "-q", "-B", f"-P{profile}", "-f", str(POM)]
    command += ["dependency:copy-dependencies", f"-DoutputDirectory={jar_dir}"]
    started = time.monotonic()
    result = _run_maven(command, dev)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL_LINES:])
        raise DevServerError(
            f"Maven could not resolve the {profile} jars (exit {result.returncode}):\n"
            f"  {' '.join(command)}\n{tail}"
        )
    marker.write_text(stamp)
    count = len(list(jar_dir.glob("*.jar")))
    echo(f"{profile}: {count} jars resolved in {time.monotonic() - started:.1f} s")
    return jar_dir


def _run_maven(command: list[str], dev: DevSettings) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError as error:
        raise DevServerError(
            f"Maven ({dev.maven!r}) not found: install Maven 3.6+ or set PULSE_DEV__MAVEN"
        ) from error
    except subprocess.TimeoutExpired as error:
        raise DevServerError(f"Maven gave no result within {error.timeout:.0f} s") from error
