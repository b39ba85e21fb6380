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
from optuna.trial import FrozenTrial, TrialState, create_trial
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from optunapi.errors import StorageBusyError

# Optuna's own key for constraint values: its samplers (TPE, NSGA-II/III, GP) and
# ``best_trials`` read a trial's constraints from it, as ``Trial.set_constraint`` leaves them.
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
    rdb = RDBStorage(url, engine_kwargs=engine_kwargs)
    if parsed.get_backend_name() == "sqlite":
        # In WAL mode, synchronous=NORMAL writes every commit to the WAL before answering, so a
        # killed server loses nothing; only a power cut can lose the last commits. It saves
        # an fsync per commit, and Optuna commits once per parameter.
        rdb.engine.dispose()
        event.listen(rdb.engine, "connect", _tune_sqlite_connection)
    return _CachedStorage(rdb)


def _tune_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def ensure_writable(storage: BaseStorage) -> None:
    """On SQLite, take and drop the write lock: a database locked past the busy timeout is then
    a ``StorageBusyError`` after that timeout, not after the five retries (with pauses) that
    Optuna makes when creating a trial. Elsewhere, nothing to do.

    Raises:
        StorageBusyError: the lock was not had within the busy timeout.
    """
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage) or backend.engine.dialect.name != "sqlite":
        return
    connection = backend.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        connection.rollback()
    except sqlite3.OperationalError as exc:
        raise StorageBusyError(
            f"The database is locked by another writer ({exc}); nothing was changed. Retry."
        ) from None
    finally:
        connection.close()


def queue_params(
    storage: BaseStorage, study_id: int, params: dict[str, Any], user_attrs: dict[str, Any]
) -> int:
    """Queue ``params`` (as the sampler sees them) as a WAITING trial, the way
    ``Study.enqueue_trial`` does, so that the next ask hands them out; returns its number."""
    template = create_trial(
        state=TrialState.WAITING, system_attrs={"fixed_params": params}, user_attrs=user_attrs
    )
    trial_id = storage.create_new_trial(study_id, template_trial=template)
    return storage.get_trial_number_from_id(trial_id)


def queued_params(trial: FrozenTrial) -> dict[str, Any]:
    """The params a trial has, or will have once asked if it is queued."""
    return dict(trial.system_attrs.get("fixed_params", trial.params))


def _enable_wal(path: Path) -> None:
    # journal_mode=WAL is persistent in the file: set once, every later connection has it.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def redact(url: str) -> str:
    """The storage URL without its password, fit for logs and ``/v1/health``."""
    return make_url(url).render_as_string(hide_password=True)


# What the storage raises when the database is busy past its timeout, or out of reach.
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    optuna.exceptions.StorageInternalError,
    sa_exc.OperationalError,
    sa_exc.TimeoutError,
)
