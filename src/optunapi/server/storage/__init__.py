"""Storage URL in, one Optuna storage per process out.

The only package that touches Optuna's private storage classes. A SQLite file is a
``DurableStorage`` (studies in memory, saved to the file before each answer: see ``durable``),
unless it holds a study database made by Optuna's relational storage, which is opened as such; any
other URL (PostgreSQL) is Optuna's relational storage. SQLite files are in WAL mode, so that
readers (a backup, a shell) never block the writer, with a busy timeout, so that a writer waits
for another writer instead of failing at once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState, create_trial
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from optunapi.errors import StorageBusyError
from optunapi.server.storage.durable import DurableStorage, StorageInUseError, lock_exclusively

__all__ = [
    "CONSTRAINTS_KEY",
    "STORAGE_ERRORS",
    "DurableStorage",
    "StorageInUseError",
    "close",
    "commit",
    "ensure_writable",
    "finish_trial",
    "open_storage",
    "queue_params",
    "queued_params",
    "quick",
    "redact",
    "start_trial",
    "was_queued",
]

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
    owner: int | None = None
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not _holds_optuna_tables(path):
            return DurableStorage(path, busy_timeout)
        owner = lock_exclusively(path)  # one server per file, whatever its format
        _enable_wal(path)
        # check_same_thread: the threadpool hands one pooled connection to several threads.
        engine_kwargs["connect_args"] = {"timeout": busy_timeout, "check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs["pool_pre_ping"] = True
    try:
        rdb = RDBStorage(url, engine_kwargs=engine_kwargs)
    except ImportError as exc:  # Optuna's message says only "install appropriate one"
        raise ImportError(
            f"no database driver for {parsed.drivername} is installed ({exc}). For PostgreSQL, "
            "install psycopg: pip install 'psycopg[binary]' (the postgres extra of optunapi)."
        ) from None
    if owner is not None:
        rdb.optunapi_owner = owner  # type: ignore[attr-defined]  # released by close()
    if parsed.get_backend_name() == "sqlite":
        # In WAL mode, synchronous=NORMAL writes every commit to the WAL before answering, so a
        # killed server loses nothing; only a power cut can lose the last commits. It saves
        # an fsync per commit, and Optuna commits once per parameter.
        rdb.engine.dispose()
        event.listen(rdb.engine, "connect", _tune_sqlite_connection)
    return _CachedStorage(rdb)


def commit(storage: BaseStorage) -> None:
    """Save what is pending, so that the write just made may be acknowledged. Optuna's
    relational storage has committed each write already: nothing to do there.

    Raises:
        StorageBusyError: it could not be saved (see ``DurableStorage.commit``).
    """
    if isinstance(storage, DurableStorage):
        storage.commit()


def quick(storage: BaseStorage) -> bool:
    """Whether the storage answers from memory without waiting: a ``DurableStorage`` whose last
    commit succeeded (after a failed one, the database may be locked, and commits may wait for
    the busy timeout)."""
    return isinstance(storage, DurableStorage) and storage.healthy


def close(storage: BaseStorage) -> None:
    """Release the storage's file or connections."""
    if isinstance(storage, DurableStorage):
        storage.close()
    elif isinstance(storage, _CachedStorage):
        storage._backend.engine.dispose()
        owner = getattr(storage._backend, "optunapi_owner", None)
        if owner is not None:
            os.close(owner)


def _holds_optuna_tables(path: Path) -> bool:
    """Whether the SQLite file at ``path`` is a database of Optuna's relational storage."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    return "alembic_version" in tables and "trials" in tables


def _tune_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def ensure_writable(storage: BaseStorage) -> None:
    """Fail before a change rather than half-way through it. Optuna's relational storage on
    SQLite: take and drop the write lock, so that a database locked past the busy timeout is a
    ``StorageBusyError`` after that timeout, not after the five retries (with pauses) that Optuna
    makes when creating a trial. Elsewhere nothing to do (a ``DurableStorage`` whose commit fails
    undoes the change, so a half-made change never stays).

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


def finish_trial(
    study: optuna.Study,
    number: int,
    values: Sequence[float] | None = None,
    state: TrialState | None = None,
) -> None:
    """``study.tell(number, values, state=state)`` without the deep copy of the trial that
    ``tell`` returns and the server never reads (a fifth of a tell's time)."""
    _tell_with_warning(study, number, values, state, suppress_warning=True)


def start_trial(
    storage: BaseStorage,
    study_id: int,
    params: dict[str, Any],
    distributions: dict[str, BaseDistribution],
    system_attrs: dict[str, Any],
) -> int:
    """Create a RUNNING trial that has its params already, in one write; returns its id."""
    if isinstance(storage, DurableStorage):
        return storage.create_running_trial(study_id, params, distributions, system_attrs)
    template = create_trial(
        state=TrialState.RUNNING,
        params=params,
        distributions=distributions,
        system_attrs=system_attrs,
    )
    return storage.create_new_trial(study_id, template_trial=template)


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


def was_queued(trial: FrozenTrial) -> bool:
    """Whether the trial's params were queued (enqueued, or a retry), not sampled."""
    return "fixed_params" in trial.system_attrs


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
