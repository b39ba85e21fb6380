"""Bearer tokens: when the server has tokens, every request but liveness must carry one.

``Authorization: Bearer <token>``; missing is a 401, unknown a 403. Tokens come from
``OPTUNAPI_TOKENS`` (comma-separated) or ``OPTUNAPI_TOKENS_FILE`` (one per line).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from optunapi.errors import AuthenticationError, PermissionDeniedError
from optunapi.server.problems import render

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
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not given.strip():
            error: AuthenticationError | PermissionDeniedError = AuthenticationError(
                "This server needs a token: send 'Authorization: Bearer <token>' "
                "(the Python client and the CLI read OPTUNAPI_TOKEN)."
            )
            response = render(error)
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        # Compared with each token in constant time, so timing does not tell how much matched.
        if not any(secrets.compare_digest(given.strip(), t) for t in self._tokens):
            await render(PermissionDeniedError("This token is not accepted."))(scope, receive, send)
            return
        await self.app(scope, receive, send)
