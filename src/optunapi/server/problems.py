"""Every error leaves the server as ``application/problem+json``, rendered here and only here."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from optunapi.errors import (
    InternalServerError,
    InvalidNameError,
    InvalidValueError,
    MethodNotAllowedError,
    NotFoundError,
    OptunapiError,
    StorageBusyError,
)
from optunapi.errors import RequestValidationError as InvalidRequestError
from optunapi.names import check_study_name
from optunapi.schemas import Problem
from optunapi.server.head import serves_head
from optunapi.server.storage import STORAGE_ERRORS

TOO_LARGE = "optunapi.body_too_large"

PROBLEM_JSON = "application/problem+json"
# Fields that hold a study name: their pattern errors are told as the naming rule.
_NAMES = {("name",), ("model_name",)}
RETRY_AFTER_SECONDS = 1
_log = logging.getLogger("optunapi.server")

# Paths whose unmatched forms still name a study, so that a bad name is a 422 rather than a
# 404 even when it holds a slash ("../../etc/passwd") or is empty ("/v1/studies//trials").
_NAMED = re.compile(
    r"^/(?:optunapi|optuna)/(?:hparams|score)/(?P<legacy>.*)$"
    r"|^/v1/studies/(?P<v1>.*?)(?:/(?:trials(?:/[^/]*(?:/[a-z]+)?)?|best|enqueue|export))?/?$"
)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the problem answers a route may give."""
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def render(error: OptunapiError) -> JSONResponse:
    """The HTTP response for an error."""
    headers = {}
    if isinstance(error, StorageBusyError):
        headers["Retry-After"] = str(error.extra.get("retry_after", RETRY_AFTER_SECONDS))
    return JSONResponse(
        error.to_problem(), status_code=error.status, media_type=PROBLEM_JSON, headers=headers
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a problem body."""

    @app.exception_handler(OptunapiError)
    async def _known(request: Request, exc: OptunapiError) -> JSONResponse:
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(part) for part in e.get("loc", ())],
                "message": e.get("msg", "invalid"),
            }
            for e in exc.errors()
        ]
        finite = any(e.get("type") == "finite_number" for e in exc.errors())
        for e in exc.errors():
            if e.get("type") == "string_pattern_mismatch" and e.get("loc", ())[-1:] in _NAMES:
                try:
                    check_study_name(str(e.get("input", "")))
                except InvalidNameError as invalid:
                    return render(invalid)
        cls = InvalidValueError if finite else InvalidRequestError
        where = "; ".join(f"{'.'.join(e['loc'])}: {e['message']}" for e in errors[:5])
        detail = f"The request is invalid ({where}); nothing was changed."
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in content_type:
            detail += " Send the body as JSON, with 'Content-Type: application/json'."
        if finite:
            detail += (
                " Objective and constraint values must be finite: tell state 'fail' for a"
                " diverged run."
            )
        return render(cls(detail, errors=errors))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            named = _NAMED.match(request.url.path)
            if named is not None:
                try:
                    check_study_name(named.group("legacy") or named.group("v1") or "")
                except InvalidNameError as invalid:
                    return render(invalid)
            return render(NotFoundError(f"There is no route {request.method} {request.url.path}."))
        too_large = request.scope.get("state", {}).get(TOO_LARGE)
        if too_large is not None:
            return render(too_large)
        if exc.status_code == 400:  # a body that is not even JSON text (bad UTF-8, too deep)
            return render(
                InvalidRequestError(f"The request body cannot be read as JSON: {exc.detail}.")
            )
        if exc.status_code == 405:
            allowed = ", ".join(_allowed(request))
            response = render(
                MethodNotAllowedError(
                    f"{request.method} is not served on {request.url.path}; allowed: {allowed}."
                )
            )
            response.headers["Allow"] = allowed
            return response
        return JSONResponse(
            {
                "type": "about:blank",
                "title": str(exc.detail),
                "status": exc.status_code,
                "detail": f"{exc.detail}: {request.method} {request.url.path}.",
            },
            status_code=exc.status_code,
            media_type=PROBLEM_JSON,
            headers=exc.headers,
        )

    async def _busy(request: Request, exc: Exception) -> JSONResponse:
        return raised(exc, request.method, request.url.path)

    # Registered by class, so Starlette answers them without re-raising as a server error.
    for storage_error in STORAGE_ERRORS:
        app.add_exception_handler(storage_error, _busy)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return raised(exc, request.method, request.url.path)


def _allowed(request: Request) -> list[str]:
    """Every method served on the request's path (Starlette names only the first route's), and
    HEAD where ``HeadAsGet`` serves it."""
    methods: set[str] = set()
    for route in _flat(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    if "GET" in methods and serves_head(request.url.path):
        methods.add("HEAD")
    return sorted(methods)


def _flat(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes, those of included routers in their place."""
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included router
        yield from _flat(included.routes) if included is not None else (route,)


def raised(exc: Exception, method: str, path: str) -> JSONResponse:
    """The answer to an exception a service raised while serving ``method path``: its problem,
    a 503 for a busy or unreachable storage, a logged 500 for anything else."""
    if isinstance(exc, OptunapiError):
        return render(exc)
    if isinstance(exc, STORAGE_ERRORS):
        _log.warning("storage busy or unreachable: %s", exc)
        return render(
            StorageBusyError(
                "The storage is busy or unreachable; nothing was changed by this request. "
                f"Retry after {RETRY_AFTER_SECONDS} s.",
            )
        )
    _log.error("unexpected error on %s %s", method, path, exc_info=exc)
    return render(InternalServerError("The server failed; this is a bug in optunapi."))
