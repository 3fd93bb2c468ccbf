"""The tenant page's files are served with a policy that forbids inline script, and the page's
JavaScript renders API data only as text (the browser test in tests/ui drives it for real)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger.sqlite_store import SQLiteLedgerStore
from projections.sqlite import SQLiteUsageStore
from query.app import create_app

UI = Path(__file__).resolve().parents[2] / "query" / "ui"


@pytest.fixture
def http(tmp_path: Path) -> TestClient:
    ledger = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    usage = SQLiteUsageStore(tmp_path / "usage.sqlite")
    return TestClient(create_app(ledger, usage, auth=None))


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/ui", "text/html"), ("/ui/", "text/html"), ("/ui/app.js", "text/javascript")],
)
def test_the_page_is_served_without_inline_script_allowed(
    http: TestClient, path: str, kind: str
) -> None:
    # when
    response = http.get(path)
    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(kind)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_only_the_page_files_are_served(http: TestClient) -> None:
    # when / then: no path walks out of query/ui
    for path in ["/ui/ui.py", "/ui/..%2Fapp.py", "/ui/missing.js"]:
        assert http.get(path).status_code == 404


def test_the_page_is_not_in_the_api_schema(http: TestClient) -> None:
    assert not any(p.startswith("/ui") for p in http.get("/openapi.json").json()["paths"])


def test_the_javascript_never_writes_markup() -> None:
    # given: the sinks that parse HTML
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    # then
    for script in UI.glob("*.js"):
        assert not sinks.search(script.read_text()), script.name
