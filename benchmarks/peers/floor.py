"""The HTTP floor: FastAPI under uvicorn answering ask and tell with next to no work.

    python -m benchmarks.peers.floor

Same routes and answer shapes as optunapi's v1 ask and tell, so the same load generator drives
it; the numbers it hands out come from a counter, which keeps the wrong-id check meaningful. No
server that does real work on these routes can beat it on this machine: it is the ceiling that
FastAPI, uvicorn and the loopback impose, and the check that the load generator is fast enough.
"""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import FastAPI

from benchmarks.peers.listen import serve

PARAMS = {"x": 0.5, "y": -0.5}


def create_app() -> FastAPI:
    """The floor application: ``POST /v1/studies/{name}/trials`` and ``.../{number}/tell``."""
    app = FastAPI()
    numbers = itertools.count()  # one event loop thread: next() needs no lock

    # async def: a constant answer needs no threadpool hop, which is the cheapest FastAPI can do.
    @app.post("/v1/studies/{name}/trials", status_code=201)
    async def ask(name: str) -> dict[str, Any]:
        return {"number": next(numbers), "params": PARAMS, "state": "running"}

    @app.post("/v1/studies/{name}/trials/{number}/tell")
    async def tell(name: str, number: int) -> dict[str, Any]:
        return {"number": number, "state": "complete"}

    return app


if __name__ == "__main__":
    serve(create_app(), "floor", "no storage")
