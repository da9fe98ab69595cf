"""The one-writer rule for SQLite: exclusive locks held by the collector (and by the demo while it
empties its table) for as long as it writes, keyed by the file, not by the name it was given.

Two lock files, both flocked: ``<file>.collector.lock`` beside the resolved file (the name
any host and any older collector uses), and one named by the file's device and inode in a
private directory of this host's temporary directory, which a symbolic link, a hard link or a
bind mount to the same file reaches too. Both name the holder (``pid 1234 on host node7``).
The database file itself is never opened here: closing a descriptor of it would drop the POSIX
locks SQLite holds on it in this process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile

from collector.errors import AlreadyRunning, ConfigError
from collector.netfs import ADVICE, network_warning
from workers.jobinfo import host_name
from workers.private import check_private

log = logging.getLogger(__name__)
LOCK_SUFFIX = ".collector.lock"


class WriterLock:
    """An exclusive lock on a SQLite database file: one collector writes to one file."""

    def __init__(self, db_path: str, pid: int | None = None) -> None:
        self.db_path = db_path
        self.pid = pid or os.getpid()  # the holder it names: the process that stops the writer
        self.real_path = os.path.realpath(db_path)
        self.path = f"{self.real_path}{LOCK_SUFFIX}"  # names the holder
        self._fds: list[int] = []

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder; a file system that cannot
        lock is a ConfigError saying what to do. A network file system is warned about."""
        if warning := network_warning(self.real_path):
            log.warning("%s", warning)
        try:
            self._fds.append(self._locked(self.path))  # the name, as every host sees it
            self._fds.append(self._locked(identity_path(self.real_path), os.O_NOFOLLOW))
        except BaseException:
            self.release()
            raise
        holder = f"pid {self.pid} on host {host_name()}\n".encode()
        for fd in self._fds:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder, 0)

    def _locked(self, path: str, flags: int = 0) -> int:
        """``path`` opened (created if missing, with extra ``flags``) and flocked; the errors a
        user can act on."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | flags, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot open {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(
                f"another collector ({holder(path)}) already writes to {self.real_path}; "
                "SQLite takes one writer: stop it first, or use PostgreSQL for several collectors"
            ) from None
        except OSError as exc:  # ENOLCK, EOPNOTSUPP, EIO: a file system without working locks
            os.close(fd)
            raise ConfigError(f"cannot lock {path} ({exc.strerror}): {ADVICE}") from None
        return fd

    def release(self) -> None:
        """Drop the lock (closing the lock files releases it)."""
        while self._fds:
            os.close(self._fds.pop())


def holder(path: str) -> str:
    """Who holds the lock file ``path``, as it says (a moment after it was taken)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(200).strip()
    except OSError:
        text = ""
    return text if text.isprintable() and text else "pid unknown"


def identity_path(real_path: str) -> str:
    """The lock file of the database file ``real_path`` by device and inode, in this user's
    directory of this host's temporary directory; the file is created (empty, as SQLite takes
    it) when missing, so it has an inode. Creating it is safe: no connection has it open."""
    if not os.path.exists(real_path):
        try:
            os.close(os.open(real_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        except FileExistsError:
            pass  # created meanwhile: someone else's file, not opened here
        except OSError as exc:
            raise ConfigError(f"cannot open {real_path}: {exc.strerror}") from None
    found = os.stat(real_path)
    directory = private_directory(os.path.join(host_tmp(), f"result-collector-{os.getuid()}"))
    return os.path.join(directory, f"{found.st_dev}-{found.st_ino}.lock")


def private_directory(directory: str) -> str:
    """``directory`` created 0700, or checked when it exists: a real directory (not a link),
    owned by this user, writable by nobody else. Its name is guessable from the uid, so another
    user of the host could make it first and plant links or hold the locks in it."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}: {exc.strerror}") from None
    try:
        check_private(directory, follow=False)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; remove it (someone else made it?)") from None
    return directory


def host_tmp() -> str:
    """The temporary directory every process of this host shares: /tmp, not TMPDIR, which a
    batch scheduler sets per job (two collectors with their own TMPDIR and one file reached by
    a hard link would otherwise each lock a file of their own)."""
    return "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
