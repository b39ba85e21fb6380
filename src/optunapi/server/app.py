"""The application factory: ``create_app(settings)``; storage is opened in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import optuna
from fastapi import FastAPI
from optuna.storages import BaseStorage
from starlette.concurrency import run_in_threadpool

from optunapi import __version__
from optunapi.server import problems
from optunapi.server.auth import BearerTokens
from optunapi.server.dashboard import Dashboard
from optunapi.server.fastpath import FastPath
from optunapi.server.head import HeadAsGet
from optunapi.server.limits import BodySizeLimit
from optunapi.server.metrics import Metrics, RequestMetrics
from optunapi.server.routes import health, legacy, studies, trials
from optunapi.server.services.leases import Leases, Reaper
from optunapi.server.services.studies import Studies
from optunapi.server.services.trials import Trials
from optunapi.server.services.views import Views
from optunapi.server.settings import Settings
from optunapi.server.storage import close, open_storage


def create_app(
    settings: Settings | None = None, storage: BaseStorage | None = None, fast_path: bool = True
) -> FastAPI:
    """Build the optunapi application.

    Args:
        settings: How to run; by default read from ``OPTUNAPI_*`` environment variables, which
            is what ``uvicorn --factory optunapi.server:create_app`` uses.
        storage: The storage ``settings.storage`` names, if already open; by default it is
            opened when the application starts. Either way it is closed when it stops.
        fast_path: Answer plain asks and tells without FastAPI's routing and validation
            (``server/fastpath.py``); off, every request takes its FastAPI route. The answers
            are the same: tests compare the two.
    """
    settings = settings or Settings()
    # Optuna logs every trial at INFO; the server's own logs say what matters.
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal storage
        if storage is None:
            storage = await run_in_threadpool(open_storage, settings.storage, settings.busy_timeout)
        studies = Studies(storage, settings.config_dir, settings.study_wait)
        leases = Leases(studies, settings.lease_seconds)
        views = Views(studies, leases)
        app.state.settings = settings
        app.state.studies = studies
        app.state.views = views
        app.state.trials = trials = Trials(studies, leases, views)
        metrics.watch_trials(views)
        quick = functools.partial(trials.quick_lock, asking=False)
        reaper = asyncio.create_task(Reaper(leases, quick, settings.reap_interval).run())
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            await run_in_threadpool(close, storage)
            storage = None  # a restarted application (tests) opens it anew

    app = FastAPI(
        title="optunapi",
        version=__version__,
        summary="Distributed hyperparameter optimization over HTTP, powered by Optuna.",
        lifespan=lifespan,
        # No redirect from /v1/studies/ to /v1/studies: a bad path gets a problem, not a 307.
        redirect_slashes=False,
    )
    problems.install(app)
    # Trials first: routes are matched in order, and asks and tells are most of the traffic.
    for module in (trials, studies, legacy, health):
        app.include_router(module.router)
    metrics = Metrics()
    app.state.metrics = metrics
    if fast_path:  # innermost: what the middleware below checks applies to it too
        app.add_middleware(FastPath, routes=trials.router.routes)
    app.add_middleware(HeadAsGet)  # inside the dashboard, which serves HEAD itself
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Dashboard)
    app.add_middleware(RequestMetrics, metrics=metrics)
    tokens = settings.accepted_tokens()
    if tokens:  # outermost: nothing, the dashboard included, is served without a token
        app.add_middleware(BearerTokens, tokens=tokens)
    return app
