"""Bearer tokens: when the server has tokens, every request but liveness must carry one.

``Authorization: Bearer <token>``; missing is a 401, unknown a 403. Tokens come from
``OPTUNAPI_TOKENS`` (comma-separated) or ``OPTUNAPI_TOKENS_FILE`` (one per line). A browser opens
the dashboard once with ``/dashboard?token=T``, which keeps the token in a cookie.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from optunapi.errors import AuthenticationError, PermissionDeniedError
from optunapi.server.problems import render

COOKIE = "optunapi_token"
# Liveness probes carry no secrets and must work without one.
_OPEN_PATHS = ("/optunapi/ping", "/v1/health")


class BearerTokens:
    """ASGI middleware checking ``Authorization: Bearer`` against the configured tokens."""

    def __init__(self, app: ASGIApp, tokens: Iterable[str]) -> None:
        self.app = app
        self._tokens = [t.encode() for t in tokens]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() != b"bearer":
            given = _cookie(headers.get(b"cookie", b""))
        if scope["path"] == "/dashboard" and b"token=" in scope.get("query_string", b""):
            await self._dashboard_login(scope, receive, send)
            return
        if not given.strip():
            error: AuthenticationError | PermissionDeniedError = AuthenticationError(
                "This server needs a token: send 'Authorization: Bearer <token>' "
                "(the Python client and the CLI read OPTUNAPI_TOKEN)."
            )
            response = render(error)
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        if not self._accepts(given.strip()):
            await render(PermissionDeniedError("This token is not accepted."))(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _accepts(self, given: bytes) -> bool:
        # Compared with each token in constant time, so timing does not tell how much matched.
        return any(secrets.compare_digest(given, t) for t in self._tokens)

    async def _dashboard_login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/dashboard?token=T``: a browser cannot send a bearer header, so a valid token is
        kept in a cookie (HttpOnly, SameSite=Strict) for the dashboard's own requests."""
        token = parse_qs(scope["query_string"].decode("latin-1")).get("token", [""])[0]
        if not self._accepts(token.encode()):
            await render(PermissionDeniedError("This token is not accepted."))(scope, receive, send)
            return
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        await response(scope, receive, send)


def _cookie(header: bytes) -> bytes:
    jar = SimpleCookie()
    jar.load(header.decode("latin-1"))
    morsel = jar.get(COOKIE)
    return morsel.value.encode() if morsel else b""
