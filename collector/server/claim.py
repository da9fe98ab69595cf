"""One ``collector serve`` per name: a lock file held while it runs, and the connection file it
publishes and removes. A file whose server is alive refuses a second serve; a file left by a dead
one (its process gone, its Redis silent) is replaced."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import IO

import redis

from collector.errors import AlreadyRunning, ConfigError
from workers.connection import Found, ServerInfo, check_private, config_dir, connection_file
from workers.identity import probe
from workers.jobinfo import host_name

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def answers(url: str) -> bool:
    """True when the Redis at ``url`` replies to PING with the file's password within seconds."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def is_alive(info: ServerInfo, path: Path) -> bool:
    """Whether the serve a connection file names still runs: on this machine its process must
    exist; anywhere, its Redis must answer with the file's credentials and prove it is the
    server the file names (another server on that port is no serve of ours)."""
    if info.hostname == host_name() and not pid_alive(info.pid):
        return False
    return probe(Found(info.url, info.queue, path, info.server_id)) is None


class ServerClaim:
    """Holds server ``name`` for this process: ``acquire`` refuses a live holder, ``publish``
    writes the connection file, ``release`` removes it (if it is still ours) and the lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = connection_file(name)
        self.lock_path = config_dir() / f"{name}.lock"
        self._lock: IO[str] | None = None
        self._published: ServerInfo | None = None

    def acquire(self) -> ServerInfo | None:
        """Take the name; returns the stale file's contents when one was found (and will be
        replaced), AlreadyRunning when another serve holds the name."""
        self.lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            check_private(self.lock_path.parent)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        handle = os.fdopen(fd, "r+")  # held while serve runs
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise self._refusal(ServerInfo.read(self.path)) from None
        self._lock = handle
        try:
            existing = ServerInfo.read(self.path)
        except ValueError as exc:  # not ours to keep: replaced like a stale file
            log.warning("replacing %s", exc)
            return None
        if existing is not None and is_alive(existing, self.path):  # a serve on another machine
            self.release()
            raise self._refusal(existing)
        if existing is not None:
            log.warning(
                "replacing the stale connection file %s: its server (pid %d on %s, started %s) "
                "is gone",
                self.path,
                existing.pid,
                existing.hostname,
                existing.started,
            )
        return existing

    def _refusal(self, holder: ServerInfo | None) -> AlreadyRunning:
        who = f" (pid {holder.pid} on {holder.hostname}, since {holder.started})" if holder else ""
        return AlreadyRunning(
            f"collector serve {self.name!r} already runs{who}: {self.path}; stop it first, or "
            "give this one another --name (jobs pick it with COLLECTOR_SERVER)"
        )

    def publish(self, info: ServerInfo) -> None:
        """Write the connection file (mode 0600)."""
        info.write(self.path)
        self._published = info

    def release(self) -> None:
        """Remove the connection file if it is still the one we wrote, then drop the lock."""
        if self._published is not None:
            with contextlib.suppress(ValueError, OSError):
                if ServerInfo.read(self.path) == self._published:
                    self.path.unlink()
            self._published = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
