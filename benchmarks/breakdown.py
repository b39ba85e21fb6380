"""Where a trial's server time goes: ask and tell through the whole application, profiled.

    .venv/bin/python benchmarks/breakdown.py [--trials 2000]

Drives the ASGI application in process (no sockets: what uvicorn adds is measured by
compare.py), random sampler, 6-parameter space, on a SQLite file, one request at a time. Prints
the time per trial without the profiler, with plain asks and tells answered by the fast path
(``server/fastpath.py``, the default) and by their FastAPI routes, interleaved in one run; then,
for the fast path, the profiler's share of the request spent in each phase (the services,
Optuna's sampling, the commit, parsing, the answer) and the functions that cost most.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import SPACE

Call = Callable[[str, str, bytes], Awaitable[tuple[int, bytes]]]
# Plain asks and tells answered by ``server/fastpath.py``, or by their FastAPI routes.
VARIANTS = {"fast path": True, "FastAPI routes": False}
ROUNDS = 10

# (label, file suffix, function): cumulative time of each, as a share of the whole request.
PHASES = (
    ("the whole request: ASGI app, middleware, routing", "fastapi/applications.py", "__call__"),
    ("  ask service (optunapi + Optuna + storage)", "services/trials.py", "ask"),
    ("    sampling: every parameter drawn at once (random)", "services/sampling.py", "draw_all"),
    ("  tell service", "services/trials.py", "tell"),
    ("  commit to SQLite (both)", "storage/durable.py", "commit"),
    ("  the trial as the API shows it (both)", "services/views.py", "read"),
    ("  the body parsed and validated (fast path)", "server/fastpath.py", "_parse"),
    ("  the answer sent", "starlette/responses.py", "__call__"),
)


def asgi_caller(app: Callable[..., Awaitable[None]]) -> Call:
    """A function sending one HTTP request to ``app`` and returning (status, body)."""

    async def call(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80), "state": {},
            "headers": [
                (b"host", b"bench"), (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }  # fmt: skip
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:])  # type: ignore[misc]

    return call


async def trials(call: Call, n: int) -> None:
    """``n`` ask-then-tell cycles."""
    for _ in range(n):
        status, body = await call("POST", "/v1/studies/p/trials", b"")
        assert status == 201, body
        number = json.loads(body)["number"]
        status, body = await call("POST", f"/v1/studies/p/trials/{number}/tell", b'{"value":1}')
        assert status == 200, body


async def main(n: int) -> None:
    """Time both variants, then profile the fast path; print the results."""
    with tempfile.TemporaryDirectory() as root:
        async with contextlib.AsyncExitStack() as stack:
            calls = {v: await _started(Path(root), v, stack) for v in VARIANTS}
            seconds = dict.fromkeys(VARIANTS, 0.0)
            for _ in range(ROUNDS):  # interleaved, so that both see the same machine
                for variant, call in calls.items():
                    start = time.perf_counter()
                    await trials(call, n // ROUNDS)
                    seconds[variant] += time.perf_counter() - start
            profiler = cProfile.Profile()
            profiler.enable()
            await trials(calls["fast path"], n)
            profiler.disable()
    stats = pstats.Stats(profiler)
    cumulative = {
        (file, func): ct
        for (file, _, func), (_, _, _, ct, _) in stats.stats.items()  # type: ignore[attr-defined]
    }

    def share(suffix: str, func: str) -> float:
        return sum(ct for (f, fn), ct in cumulative.items() if f.endswith(suffix) and fn == func)

    per_trial = {variant: 1e6 * s / (n // ROUNDS * ROUNDS) for variant, s in seconds.items()}
    print("us per trial (ask + tell), without the profiler:")
    for variant, us in per_trial.items():
        print(f"  {variant}: {us:.0f} ({us / per_trial['fast path']:.2f}x)")
    whole = share(PHASES[0][1], PHASES[0][2])
    print("\n| where the time goes (fast path, profiled, cumulative) | share |")
    print("|---|---:|")
    for label, suffix, func in PHASES:
        print(f"| {label.strip()} | {100 * share(suffix, func) / whole:.0f}% |")
    print()
    stats.sort_stats("tottime").print_stats(15)


async def _started(root: Path, variant: str, stack: contextlib.AsyncExitStack) -> Call:
    """The variant's application, started on its own file, its study created and warm."""
    from optunapi.server import Settings, create_app

    settings = Settings(storage=f"sqlite:///{root}/{variant}.db", config_dir=root)
    app = create_app(settings, fast_path=VARIANTS[variant])
    await stack.enter_async_context(app.router.lifespan_context(app))
    call = asgi_caller(app)
    space = json.dumps({"name": "p", "space": SPACE, "sampler": "random"}).encode()
    assert (await call("POST", "/v1/studies", space))[0] == 201
    await trials(call, 200)  # warm: the study loaded, the caches full
    return call


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=2000)
    asyncio.run(main(parser.parse_args().trials))
