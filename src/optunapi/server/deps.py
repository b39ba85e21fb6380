"""FastAPI dependencies, declared once: the services built in the app's lifespan.

They are ``async``: FastAPI runs a plain ``def`` dependency in its threadpool, a thread hop per
dependency per request for a dictionary lookup.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import Depends, Request

from optunapi.errors import RequestValidationError
from optunapi.server.services.studies import Studies
from optunapi.server.services.trials import Trials
from optunapi.server.services.views import Views
from optunapi.server.settings import Settings


async def _studies(request: Request) -> Studies:
    return request.app.state.studies  # type: ignore[no-any-return]


async def _trials(request: Request) -> Trials:
    return request.app.state.trials  # type: ignore[no-any-return]


async def _views(request: Request) -> Views:
    return request.app.state.views  # type: ignore[no-any-return]


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


StudiesDep = Annotated[Studies, Depends(_studies)]
TrialsDep = Annotated[Trials, Depends(_trials)]
ViewsDep = Annotated[Views, Depends(_views)]
SettingsDep = Annotated[Settings, Depends(_settings)]


async def query_once_each(request: Request) -> None:
    """A query parameter given twice is a 422 (which one counts would be a guess, and on the
    legacy score route a write). Set on the routers that read query parameters."""
    counts = Counter(key for key, _ in request.query_params.multi_items())
    repeated = sorted(key for key, n in counts.items() if n > 1)
    if repeated:
        raise RequestValidationError(
            f"The query gives {', '.join(repeated)} more than once; give each parameter once. "
            "Nothing was changed.",
            errors=[{"loc": ["query", key], "message": "given more than once"} for key in repeated],
        )
