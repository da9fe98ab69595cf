"""An emitter's way to its Redis: one client per process (a forked child builds its own and never
writes to its parent's socket), built on first use, every connection of a connection file's
server checked (workers.identity), and the file followed when its server stops answering."""

from __future__ import annotations

import os
import threading
from typing import Any

import redis

from workers.cluster import client_from_url
from workers.connection import Found
from workers.identity import NotUp, checking, moved, not_up
from workers.settings import DEFAULT_REDIS_URL


class Link:
    """The client for ``url`` (which ``server`` resolved), or the ``client`` given (never
    closed or replaced here). ``options`` go to every client built."""

    def __init__(self, server: Found, url: str, client: redis.Redis | None, **options: Any):
        self.server, self.url = server, url
        self._client = client
        self._owns = client is None
        self._follows = client is None and server.from_file
        self._pid = os.getpid()
        self._options = options
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        """A fresh lock in a forked child: a parent thread may have held it."""
        self._lock = threading.Lock()

    @property
    def client(self) -> redis.Redis:
        """The client, built on first use in this process; NotUp (an outage) while the
        connection file is awaited."""
        if self._owns and self._pid != os.getpid():
            self._client, self._pid = None, os.getpid()  # the parent's: not ours to close
        if self._client is None:
            with self._lock:  # threads sharing the emitter share one connection pool
                if self._client is None:
                    if self.server.url is None and self.server.missing is not None:
                        raise NotUp(not_up(self.server.missing))
                    self._client = client_from_url(
                        self.url, **self._options, **checking(self.server)
                    )
        return self._client

    def follow(self) -> Found | None:
        """Read the connection file again (when the URL came from one); when it names another
        server, drop the old client (the next use builds one for the new server) and return
        what it names now; None otherwise."""
        found = moved(self.server) if self._follows else None
        if found is None:
            return None
        with self._lock:
            self._drop()
            self.server, self.url = found, found.url or DEFAULT_REDIS_URL
        return found

    def close(self) -> None:
        """Release the connection pool if it was built here (in this process)."""
        self._drop()

    def _drop(self) -> None:
        if self._owns and self._client is not None and self._pid == os.getpid():
            self._client.close()
        if self._owns:
            self._client, self._pid = None, os.getpid()
