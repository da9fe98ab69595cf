"""The one-writer rule for SQLite: an exclusive lock on the database file itself, held by the
collector (and by the demo while it empties its table) for as long as it writes.

The lock is an ``flock`` on the file, not on its name: a symbolic link, a hard link or a bind
mount reaches the same inode and so the same lock. Beside the resolved file, ``<file>.collector.
lock`` names the holder (``pid 1234 on host node7``) for the message a second collector gets;
it is flocked too, which older collectors (that locked only it) respect.
"""

from __future__ import annotations

import fcntl
import logging
import os

from collector.errors import AlreadyRunning, ConfigError
from collector.netfs import ADVICE, network_warning
from workers.jobinfo import host_name

log = logging.getLogger(__name__)
LOCK_SUFFIX = ".collector.lock"


class WriterLock:
    """An exclusive lock on a SQLite database file: one collector writes to one file."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.real_path = os.path.realpath(db_path)
        self.path = f"{self.real_path}{LOCK_SUFFIX}"  # names the holder
        self._fds: list[int] = []

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder; a file system that cannot
        lock is a ConfigError saying what to do. A network file system is warned about."""
        if warning := network_warning(self.real_path):
            log.warning("%s", warning)
        try:
            self._fds.append(self._locked(self.real_path, 0o644))  # the database file itself
            holder = self._locked(self.path, 0o644)  # the holder's name, and older collectors
            self._fds.append(holder)
        except BaseException:
            self.release()
            raise
        os.ftruncate(holder, 0)
        os.pwrite(holder, f"pid {os.getpid()} on host {host_name()}\n".encode(), 0)

    def _locked(self, path: str, mode: int) -> int:
        """``path`` opened (created if missing) and flocked; the errors a user can act on."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        except OSError as exc:
            raise ConfigError(f"cannot open {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(
                f"another collector ({self.holder()}) already writes to {self.real_path}; "
                "SQLite takes one writer: stop it first, or use PostgreSQL for several collectors"
            ) from None
        except OSError as exc:  # ENOLCK, EOPNOTSUPP, EIO: a file system without working locks
            os.close(fd)
            raise ConfigError(f"cannot lock {path} ({exc.strerror}): {ADVICE}") from None
        return fd

    def holder(self) -> str:
        """Who holds the lock, as its lock file says (a holder that opened the database by
        another name, a hard link, wrote its name beside that one)."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                text = handle.read(200).strip()
        except OSError:
            text = ""
        return text or "pid unknown: it may have opened this file by another name"

    def release(self) -> None:
        """Drop the lock. Closing our descriptor of the database file while SQLite holds POSIX
        locks on it would drop those too; the collector releases between transactions, when
        its idle connections hold none on the database file."""
        while self._fds:
            os.close(self._fds.pop())
