"""The FinOps Foundation's FOCUS validator, in a virtual environment of its own (pytest fixture).

focus-validator 1.0.0 checks FOCUS 1.0 (its 2.x line needs Python >= 3.12); newer multimethod
breaks its import, hence the pin beside it. It is installed from PyPI once per cache dir
(`.pulse-dev/focus-validator-venv`): without network the tests skip locally and fail on CI.

Two defects of 1.0.0 are worked around here, each visible in its own rules:
* its 1.0 rule set still names four columns as the 1.0 preview did (Provider, Publisher,
  InvoiceIssuer, ResourceID): the checked copy also carries them (catalog.focus aliases);
* rule SkuPriceId_Nullable queries column ChargeType (ChargeCategory in 1.0) and so fails on
  any 1.0 file: it is overridden, and its intent is asserted by the tests instead.
It reads its currency list from a path relative to the working directory, so it runs in its
site-packages; and it exits 0 on failed rules, so the JUnit report is what is read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGES = ("focus-validator==1.0.0", "multimethod<2")
VENV = Path(__file__).resolve().parents[2] / ".pulse-dev" / "focus-validator-venv"
OVERRIDDEN = ("SkuPriceId_Nullable",)


@dataclass(frozen=True)
class Report:
    tests: int
    failed: tuple[str, ...]


@dataclass(frozen=True)
class FocusValidator:
    python: Path
    site_packages: Path
    install_seconds: float | None  # None: the venv was already there

    def validate(self, csv_file: Path, workdir: Path) -> Report:
        overrides = workdir / "overrides.yaml"
        overrides.write_text("overrides:\n" + "".join(f"  - {r}\n" for r in OVERRIDDEN))
        report = workdir / "focus-report.xml"
        subprocess.run(
            [
                str(self.python.parent / "focus-validator"),
                "--data-file",
                str(csv_file),
                "--validate-version",
                "1.0",
                "--override-file",
                str(overrides),
                "--output-type",
                "unittest",
                "--output-destination",
                str(report),
            ],
            cwd=self.site_packages,
            check=True,
            capture_output=True,
            timeout=300,
        )
        root = ET.parse(report).getroot()
        failed = tuple(
            case.get("name", "?")
            for case in root.iter("testcase")
            if case.find("failure") is not None or case.find("error") is not None
        )
        return Report(int(root.get("tests", "0")), failed)


def _install() -> float | None:
    python = VENV / "bin" / "python"
    if (VENV / "bin" / "focus-validator").exists():
        return None
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *PACKAGES],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return time.monotonic() - started


@pytest.fixture(scope="session")
def focus_validator() -> FocusValidator:
    try:
        seconds = _install()
    except (subprocess.SubprocessError, OSError) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"focus-validator could not be installed from PyPI: {exc}")
    python = VENV / "bin" / "python"
    found = subprocess.run(
        [
            str(python),
            "-c",
            "import focus_validator as f, pathlib; print(pathlib.Path(f.__file__).parents[1])",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    if seconds is not None:
        print(f"focus-validator venv installed in {seconds:.1f} s")
    return FocusValidator(python, Path(found.stdout.strip()), seconds)
