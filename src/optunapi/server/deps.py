"""FastAPI dependencies, declared once: the services built in the app's lifespan.

They are ``async``: FastAPI runs a plain ``def`` dependency in its threadpool, a thread hop per
dependency per request for a dictionary lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

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


P = ParamSpec("P")
R = TypeVar("R")


async def run_service(
    lock: threading.RLock | None, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run a blocking service call: on the event loop when it is quick (``lock``, the study's,
    is given: see ``Trials.quick_lock``) and the study is free, else in the threadpool.

    A hop to a worker thread and back costs more than an ask of the random sampler; a call that
    may wait (for a locked database, a sampler reading 10,000 trials) must not hold up the
    event loop, and takes the hop. A quick call whose study another thread holds (the reaper,
    a heartbeat) waits for it in a worker thread, without taking it, and then runs on the loop:
    run in the thread, it would hold the study while it waits for the interpreter, and the
    quick calls behind it would find the study busy and take the hop too, one after another.
    """
    if lock is not None:
        for _ in range(_QUICK_TRIES):
            if lock.acquire(blocking=False):
                try:
                    return call(*args, **kwargs)
                finally:
                    lock.release()
            if not await run_in_threadpool(_wait_free, lock):
                break  # still busy: the call waits in its thread, and answers 503 in time
    return await run_in_threadpool(call, *args, **kwargs)


# How often a quick call waits for its study before it runs in a worker thread after all.
_QUICK_TRIES = 3
# How long one such wait may be (seconds); the call's own wait for the study comes after.
_QUICK_WAIT = 1.0


def _wait_free(lock: threading.RLock) -> bool:
    """Wait until nobody holds ``lock``, without keeping it; False if it stayed held."""
    if not lock.acquire(timeout=_QUICK_WAIT):
        return False
    lock.release()
    return True
