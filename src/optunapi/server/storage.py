"""Storage URL in, one Optuna storage per process out.

The only module that touches Optuna's private storage classes. SQLite files are opened in WAL mode,
so that readers (the dashboard, a backup, a long ``GET .../trials``) never block a writer, with a
busy timeout, so that a writer waits for another writer instead of failing at once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from sqlalchemy.engine import make_url

# Optuna's own key for constraint values: its samplers and ``best_trials`` read it.
CONSTRAINTS_KEY = "constraints"


def open_storage(url: str, busy_timeout: float) -> BaseStorage:
    """Open (and create if needed) the storage at ``url``.

    Args:
        url: A SQLAlchemy URL: ``sqlite:///path.db`` or ``postgresql://...``.
        busy_timeout: Seconds a write waits for the database lock before giving up.
    """
    engine_kwargs: dict[str, Any] = {}
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        _enable_wal(path)
        # check_same_thread: the threadpool hands one pooled connection to several threads.
        engine_kwargs["connect_args"] = {"timeout": busy_timeout, "check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs["pool_pre_ping"] = True
    return _CachedStorage(RDBStorage(url, engine_kwargs=engine_kwargs))


def _enable_wal(path: Path) -> None:
    # journal_mode=WAL is persistent in the file: set once, every later connection has it.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def redact(url: str) -> str:
    """The storage URL without its password, fit for logs and ``/v1/health``."""
    return make_url(url).render_as_string(hide_password=True)


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is busy or out of reach, rather than the request bad."""
    from sqlalchemy.exc import OperationalError, TimeoutError

    return isinstance(exc, (optuna.exceptions.StorageInternalError, OperationalError, TimeoutError))
