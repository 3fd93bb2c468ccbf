"""The HTTP edge's one error map: kernel categories and framework errors to problem+json."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from kernel.errors import (
    Conflict,
    Forbidden,
    Invalid,
    LedgerError,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from query.schemas import Problem

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

# Category → (status, title); subclasses of LedgerError not listed here answer 500.
STATUS: dict[type[LedgerError], tuple[int, str]] = {
    Unauthenticated: (401, "Unauthorized"),  # revoked keys too: their credentials no longer hold
    Forbidden: (403, "Forbidden"),
    Invalid: (422, "Invalid request"),
    NotFound: (404, "Not found"),
    Conflict: (409, "Conflict"),
    Unavailable: (503, "Backend unavailable"),
}


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    sent = dict(headers or {})
    if status == 503:
        sent["Retry-After"] = "1"
    if status == 401:
        sent["WWW-Authenticate"] = "Bearer"  # RFC 6750: how to authenticate
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=sent or None)


# "start: needs a UTC offset": the field an Invalid message names first, by convention.
_NAMED_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]{0,63}): (.+)$", re.DOTALL)


def _field(location: Sequence[Any]) -> str:
    # ("query", "start") → "start": the name a client sent; the location kind is noise.
    parts = [str(p) for p in location if p not in ("query", "path", "body", "header")]
    return ".".join(parts) or "request"


# The errors any route may answer, documented once for the whole app (OpenAPI).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": title,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status, title in (
        (401, "No valid API key (send Authorization: Bearer <key>)"),
        (403, "The key's role may not call this route"),
        (404, "Not found (unknown route, tenant, pulse or invoice)"),
        (422, "Invalid request: every invalid field named"),
        (500, "Internal error"),
        (503, "Backend unavailable; retry after the Retry-After seconds"),
    )
}


def document_problems(app: FastAPI) -> None:
    """Puts the Problem schema, which ERROR_RESPONSES refers to, into the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(problem_schema.pop("$defs", {}))
            components["Problem"] = problem_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def register_error_handlers(app: FastAPI) -> None:
    """Every error leaves the API as problem+json with the field and the reason when known."""

    @app.exception_handler(LedgerError)
    async def categorized(_request: Request, error: LedgerError) -> JSONResponse:
        for kind, (status, title) in STATUS.items():
            if isinstance(error, kind):
                named = _NAMED_FIELD.match(str(error)) if kind is Invalid else None
                if named is not None:  # the same `errors` shape as framework validation
                    errors = [{"field": named.group(1), "reason": named.group(2)}]
                    return problem(status, title, str(error), errors=errors)
                return problem(status, title, str(error))
        log.error("uncategorized error: %s", error)
        return problem(500, "Internal error", "the server could not answer; see its log")

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(e.get("loc", ())), "reason": e.get("msg", "")} for e in error.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        return problem(422, "Invalid request", detail, errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        # Keep the framework's headers: a 405 must say which methods are allowed (Allow).
        return problem(error.status_code, str(error.detail), str(error.detail), error.headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error answering a request")
        return problem(500, "Internal error", "the server could not answer; see its log")
