"""The one-writer rule for SQLite: an exclusive lock file next to the database file, held by the
collector (and by the demo while it empties its table) for as long as it writes."""

from __future__ import annotations

import fcntl
import os
from typing import IO

from collector.errors import AlreadyRunning


class WriterLock:
    """An exclusive lock file next to a SQLite database: one collector writes to one file."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.path = f"{db_path}.collector.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder's pid."""
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the collector's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunning(
                f"another collector (pid {holder}) already writes to {self.db_path}; "
                "SQLite takes one writer: stop it first, or use PostgreSQL for several collectors"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Drop the lock (closing the file releases it)."""
        if self._file is not None:
            self._file.close()
            self._file = None
