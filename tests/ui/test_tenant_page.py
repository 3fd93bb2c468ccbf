"""The tenant page (/ui) in headless Chromium against the real API on the embedded backend.

Pulses go through the real ingestor (gRPC, a producer key), writer and projector; the page is
read with a real tenant key from the key store. Chromium is Debian's (`.ci/run` installs it),
driven by Playwright (playwright-core from npm into the git-ignored .pulse-dev/ui-test).
Without chromium or node the test is skipped locally and fails on CI (CI=true).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from access.keys import Role, new_key
from catalog.files import read_catalog, read_contracts
from proto.pulse.v1 import pulse_pb2
from pulse.bootstrap import SAMPLE_CATALOG, build
from pulse.bootstrap import invoicing as invoicing_of
from pulse.demo.client import IngestClient, make_pulse
from pulse.runtime import caught_up, start, start_api
from pulse.settings import ApiSettings, Backend, EmbeddedSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("tenant_page.cjs")
NODE_DIR = ROOT / ".pulse-dev" / "ui-test"
PLAYWRIGHT = "playwright-core@1.65.1"
CHROMIUM = Path(os.environ.get("PULSE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOT = ROOT / "docs" / "ui.png"

pytestmark = pytest.mark.slow


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser test cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def playwright() -> Path:
    """playwright-core, installed at test time into a git-ignored folder (never committed)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        _unavailable("node and npm are needed to drive Chromium")
    module = NODE_DIR / "node_modules" / "playwright-core"
    if not module.exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(npm), "install", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), PLAYWRIGHT],
            check=True,
            timeout=300,
        )
    return module


@dataclass
class Site:
    url: str
    tenant_key: str
    period: str
    sent: list[pulse_pb2.Pulse]
    other_pulses: list[pulse_pb2.Pulse]


def _last_month(now: datetime) -> tuple[str, datetime]:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (first - timedelta(days=1)).replace(day=1)
    return f"{start:%Y-%m}", start


def _wait(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = Settings(
        backend=Backend.EMBEDDED,
        embedded=EmbeddedSettings(path=tmp_path_factory.mktemp("ui")),
        api=ApiSettings(host="127.0.0.1", port=0),
    )
    parts = build(settings)
    parts.billing.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    contracts = (SAMPLE_CATALOG.parent / "contracts.yaml").read_text()
    parts.billing.apply_contracts(read_contracts(contracts))
    now = datetime.now(UTC)
    producer = new_key(Role.PRODUCER, (), "ui test producer", now)
    tenant = new_key(Role.TENANT, ("acme",), "ui test tenant", now)
    parts.keys.add(producer.record)
    parts.keys.add(tenant.record)
    running = start(
        settings, parts, {"ingestor", "writer", "projector"}, grpc_address="127.0.0.1:0"
    )
    api = start_api(settings, parts, running.health)
    period, first = _last_month(now)

    def at(day: int, hour: int) -> datetime:
        return first + timedelta(days=day - 1, hours=hour)

    acme = [
        make_pulse("vcpu-1", "acme", "compute.vcpu", "4", "vCPU-hour", at(2, 9)),
        make_pulse("vcpu-2", "acme", "compute.vcpu", "6.5", "vCPU-hour", at(3, 10)),
        make_pulse("vcpu-3", "acme", "compute.vcpu", "2", "vCPU-hour", at(3, 17)),
        make_pulse("vcpu-4", "acme", "compute.vcpu", "8", "vCPU-hour", at(10, 0)),
        make_pulse("egress-1", "acme", "network.egress", "120", "GB", at(3, 11)),
        make_pulse("egress-2", "acme", "network.egress", "30000", "MB", at(15, 23)),
    ]
    late = [make_pulse("vcpu-late", "acme", "compute.vcpu", "3", "vCPU-hour", at(20, 5))]
    globex = [
        make_pulse("globex-secret-1", "globex", "compute.vcpu", "777", "vCPU-hour", at(4, 4)),
        make_pulse("globex-secret-2", "globex", "storage.block", "98765", "GB-hour", at(5, 5)),
    ]
    client = IngestClient(f"127.0.0.1:{running.grpc_port}", key=producer.token)
    try:
        invoicing = invoicing_of(settings, parts)

        def ingest(batch: list[pulse_pb2.Pulse]) -> None:
            results = client.ingest(batch)
            assert {r.status for r in results} == {pulse_pb2.PulseResult.ACCEPTED}
            _wait(lambda: caught_up(settings, parts), "writer and projector")

        # given: usage, a finalized invoice, then late usage that makes a correction note
        ingest(acme + globex)
        invoicing.finalize("acme", period)
        ingest(late)
        _wait(lambda: invoicing.finalized("acme", period).notes(), "the correction note")
        yield Site(f"http://127.0.0.1:{api.port}", tenant.token, period, acme + late, globex)
    finally:
        client.close()
        api.stop()
        running.stop()
        parts.close()


def test_the_tenant_page_shows_own_usage_invoices_and_lineage_only(
    site: Site, playwright: Path, tmp_path: Path
) -> None:
    # given: the bars the page must draw, computed here from the pulses sent (UTC days)
    expected = {
        (
            datetime.fromtimestamp(p.occurred_at.seconds, UTC).date().isoformat(),
            p.product_sku,
        )
        for p in site.sent
    }
    spec = {
        "playwright": str(playwright),
        "chromium": str(CHROMIUM),
        "url": site.url,
        "key": site.tenant_key,
        "tenant": "acme",
        "other": "globex",
        "period": site.period,
        "sku": "compute.vcpu",
        "screenshot": str(tmp_path / "ui.png"),
    }

    # when
    began = time.monotonic()
    run = subprocess.run(
        ["node", str(DRIVER), json.dumps(spec)], capture_output=True, text=True, timeout=120
    )
    print(f"browser session: {time.monotonic() - began:.2f} s")
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)

    # then: the page loads and draws one bar per (day, SKU) with usage, exact quantities
    assert seen["pageStatus"] == 200 and "pulse-ledger" in seen["title"]
    # Chromium logs each 4xx answer (the other tenant's 404, the bad key's 401) as an error
    loads = "Failed to load resource: the server responded with a status of"
    assert [m for m in seen["console"] if not m.startswith(loads)] == []
    own = seen["own"]
    assert own["message"] == "" and not own["resultsHidden"]
    assert len(own["bars"]) == len(expected)
    assert {(b["day"], b["sku"]) for b in own["bars"]} == expected
    vcpu_day_3 = next(b for b in own["bars"] if b["day"].endswith("-03") and "vcpu" in b["sku"])
    assert Decimal(vcpu_day_3["quantity"]) == Decimal("8.5")
    # the draft and the finalized invoice with its discount and the correction note
    assert "compute.vcpu" in own["draft"] and "25%" in own["draft"]
    assert "SHA-256" in own["final"] and "Correction notes" in own["final"]
    assert "debit" in own["final"].lower()
    # a line's lineage lists its pulse ids
    vcpu_ids = sorted(p.pulse_id for p in site.sent if p.product_sku == "compute.vcpu")
    assert sorted(row[1] for row in seen["lineage"]) == vcpu_ids
    assert all(":" in row[3] for row in seen["lineage"])  # partition:offset

    # then: another tenant's id with this key shows "not found" and none of its numbers
    other = seen["other"]
    assert "not found" in other["message"] and "404" in other["message"]
    assert other["resultsHidden"] and other["bars"] == []
    for p in site.other_pulses:
        assert p.pulse_id not in other["text"] and p.used_amount not in other["text"]
    assert [s for s, path in seen["responses"] if "/globex/" in path] == [404]
    # and a wrong key is refused with a clear message
    assert "refused (401)" in seen["badKey"]["message"] and seen["badKey"]["resultsHidden"]

    if os.environ.get("PULSE_UPDATE_SCREENSHOT"):
        shutil.copyfile(tmp_path / "ui.png", SCREENSHOT)
