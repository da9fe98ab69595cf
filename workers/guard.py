"""A guard for a process whose client we do not build: ``rq worker -c workers.rqconfig``. RQ makes
its own client from a URL and reconnects on its own, unchecked, so a worker left waiting when
serve dies would take (and unpickle) jobs from whoever takes the port next. The guard holds one
connection of its own to the server the connection file names, checked as an emitter's are
(workers.identity), and ends the process in one line naming the file the moment that connection
breaks. RQ waits a second or more before it reconnects, so it never gets there first."""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid

import redis

from workers.connection import Found
from workers.identity import checking
from workers.urls import masked

BLOCK_SECONDS = 5  # one BLPOP on a key nobody writes; sent again on the same connection
ANSWER_SECONDS = 30  # beyond the BLPOP: a server silent that long counts as gone
EXIT_CODE = 1


def watch(found: Found, who: str) -> None:
    """Block on a connection to ``found``'s server until it breaks; then end this process."""
    assert found.url is not None
    client = redis.Redis.from_url(
        found.url,
        socket_keepalive=True,
        socket_timeout=BLOCK_SECONDS + ANSWER_SECONDS,
        **checking(found),
    )
    key = f"collector:guard:{uuid.uuid4().hex}"
    try:
        conn = client.connection_pool.get_connection()
        while True:
            conn.send_command("BLPOP", key, BLOCK_SECONDS)
            conn.read_response()
    except Exception as exc:  # whatever broke it, the server is no longer known
        why = f"{type(exc).__name__}: {exc}"
    logging.disable(logging.CRITICAL)  # RQ's own reconnect lines would follow ours otherwise
    sys.stderr.write(
        f"{who}: the Redis at {masked(found.url)}, named in {found.file}, went away ({why}); "
        "stopping, so that nothing reconnects to whatever takes its port next (start again "
        "once `collector serve` runs)\n"
    )
    sys.stderr.flush()
    os._exit(EXIT_CODE)


def start(found: Found, who: str) -> threading.Thread:
    """The guard of ``found``'s server, running in a daemon thread of this process."""
    thread = threading.Thread(target=watch, args=(found, who), name="server-guard", daemon=True)
    thread.start()
    return thread
