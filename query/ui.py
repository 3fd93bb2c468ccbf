"""The tenant page at /ui: static HTML, CSS and JavaScript shipped in query/ui/ (no build step).

The page calls the same /v1 routes as any client with the key the tenant types in, so it
sees exactly what that key may read (DESIGN invariant 13); the server adds nothing for it.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from kernel.errors import NotFound

# Everything the page loads comes from this origin; no inline script, so data rendered as
# text can never run (the JavaScript also renders only with textContent).
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

router = APIRouter(prefix="/ui", include_in_schema=False)


def _asset(name: str) -> Response:
    media_type = _FILES.get(name)
    if media_type is None:
        raise NotFound(f"no file {name!r} in the tenant page")
    body = resources.files("query").joinpath("ui", name).read_bytes()
    return Response(body, media_type=media_type, headers=_HEADERS)


@router.get("")
def page() -> Response:
    """The tenant page (at /ui and /ui/)."""
    return _asset("index.html")


@router.get("/")
def page_slash() -> Response:
    return _asset("index.html")


@router.get("/{name}")
def asset(name: str) -> Response:
    return _asset(name)
