"""Where a quick service call runs when its study is busy (``concurrency.run_service``)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from optunapi.server import concurrency


def _held(lock: threading.RLock) -> tuple[threading.Thread, threading.Event]:
    """A thread holding ``lock`` (as the reaper or a heartbeat would) until the event is set."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait()
    return holder, release


def test_a_quick_call_behind_a_busy_study_runs_on_the_loop_once_it_is_free() -> None:
    """It waits in a worker thread without taking the study, then runs on the event loop: run
    in that thread, it would keep the study while waiting for the interpreter, and every quick
    call behind it would find the study busy and leave the loop too."""
    lock = threading.RLock()
    holder, release = _held(lock)
    ran_on: list[int] = []

    async def main() -> int:
        call = asyncio.ensure_future(
            concurrency.run_service(lock, lambda: ran_on.append(threading.get_ident()))
        )
        await asyncio.sleep(0)  # the call is waiting now, and the loop still runs this
        assert not call.done()
        release.set()
        await call
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    holder.join()
    assert ran_on == [loop_thread]


def test_a_quick_call_behind_a_study_that_stays_busy_waits_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a few waits it runs in a worker thread, where its own wait for the study (and its
    503 in time) happens; the loop keeps running meanwhile."""
    monkeypatch.setattr(concurrency, "_QUICK_WAIT", 0.01)
    lock = threading.RLock()
    holder, release = _held(lock)
    started_on: list[int] = []

    def call() -> None:
        started_on.append(threading.get_ident())
        with lock:  # as a service call takes its study
            pass

    async def main() -> int:
        waiting = asyncio.ensure_future(concurrency.run_service(lock, call))
        while not started_on:  # the loop runs while the study stays busy
            assert not waiting.done()
            await asyncio.sleep(0.01)
        release.set()
        await waiting
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    holder.join()
    assert len(started_on) == 1 and started_on[0] != loop_thread
