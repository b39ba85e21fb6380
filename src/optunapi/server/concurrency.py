"""Where a service call runs: on the event loop when it is quick, else in a worker thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
R = TypeVar("R")


async def run_service(
    lock: threading.RLock | None, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run a blocking service call: on the event loop when it is quick (``lock``, the study's,
    is given: see ``Trials.quick_lock``) and the study is free, else in the threadpool.

    A hop to a worker thread and back costs more than an ask of the random sampler; a call that
    may wait (for a locked database, a sampler reading 10,000 trials) must not hold up the
    event loop, and takes the hop. A quick call whose study another thread holds (a report,
    whose pruner may read every trial) waits for it in a worker thread, without keeping it,
    then runs on the loop: run in the thread, it would hold the study while it waits for the
    interpreter, and the quick calls behind it would find the study busy and take the hop
    too, one after another. (For the same reason the reaper runs on the loop.)
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
