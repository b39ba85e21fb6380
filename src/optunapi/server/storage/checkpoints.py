"""WAL checkpoints in a thread of their own, off the path of the requests.

In WAL mode a commit appends to the write-ahead log, and SQLite copies the log back into the
database file (a checkpoint) every 1,000 pages, inline, in whichever commit
crosses the mark: every few hundred trials, one request waited several milliseconds for it. Here
the storage's connection never checkpoints; this thread does, on its own connection, twice a
second. A PASSIVE checkpoint runs alongside commits (SQLite lets one writer and one checkpointer
work at once), and the next commit after a complete one starts the log from its beginning again.
A killed process loses nothing either way: what is in the log is read back at the next open.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

INTERVAL_SECONDS = 0.5
_log = logging.getLogger("optunapi.server")


class Checkpointer:
    """Checkpoints ``path``'s write-ahead log every ``interval`` seconds until ``stop``.

    ``writing`` is held by the one writer while it commits. A checkpoint alongside commits
    copies back all but what they add meanwhile, so the log would never be whole and never
    start anew (it grew by over 100 MB in a minute of load); each pass therefore ends with a second,
    short checkpoint holding ``writing``.
    """

    def __init__(
        self, path: Path, writing: AbstractContextManager[Any], interval: float = INTERVAL_SECONDS
    ) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._writing = writing
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="optunapi-checkpoints", daemon=True)
        self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """One checkpoint now: SQLite's (busy, pages in the log, pages copied back)."""
        # fetchall: a statement left unfinished would hold the log open.
        [(busy, log, copied)] = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return busy, log, copied

    def stop(self) -> None:
        """Stop after the checkpoint in progress, if any."""
        self._stopping.set()
        self._thread.join()
        self._db.close()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.checkpoint()  # most of the log, alongside commits
                with self._writing:  # the rest, between two commits: the log can start anew
                    self.checkpoint()
            except sqlite3.Error as exc:  # busy, say; the next pass catches up
                _log.warning("WAL checkpoint failed: %s", exc)
