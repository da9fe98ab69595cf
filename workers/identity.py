"""Proof that the Redis answering is the server a connection file names, not whatever listens on
its port now.

``collector serve`` gives its redis-server (through stdin: never on a command line or in a file)
a disabled ACL user whose name carries a random id, and writes the id into the connection file.
A client reads ``ACL USERS`` and looks for that name without ever sending the id, so a server
someone else started on a stale file's port cannot learn it and cannot pass for serve's, even one
that accepts any password. (A real Redis without serve's own user already refuses the file's
credentials at AUTH.) Emitters check every new connection; commands and ``rq worker -c
workers.rqconfig`` check once before they start.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import redis

from workers.connection import Found
from workers.settings import resolve
from workers.urls import masked

MARKER = "rc-server-"  # the disabled user's name: MARKER + the file's server_id
PROBE_SECONDS = 3.0


class WrongServer(redis.ConnectionError):
    """The server answering is not the one the connection file names: to an emitter an outage
    (retry, follow the file, then spool), to a command a one-line error."""


class NotUp(redis.ConnectionError):
    """A config directory exists but not the connection file: serve is not up (yet)."""


def marker_user(server_id: str) -> str:
    """The ACL user name that shows a server is the one with ``server_id``."""
    return f"{MARKER}{server_id}"


def not_ours(url: str, file: Path, why: str) -> str:
    """The one line saying the server at ``url`` is not the one ``file`` names."""
    return (
        f"the Redis at {masked(url)} is not the server named in {file} ({why}): the file is "
        "left from a serve that is gone; start `collector serve` again (COLLECTOR_REDIS_URL or "
        "COLLECTOR_SERVER pick another)"
    )


def check_connection(conn: Any, server_id: str, url: str, file: Path) -> None:
    """redis-py's ``redis_connect_func``: log in as usual, then WrongServer unless the server
    lists serve's marker user."""
    try:
        conn.on_connect()
    except redis.AuthenticationError as exc:
        raise WrongServer(
            not_ours(url, file, f"it refuses the file's credentials: {exc}")
        ) from None
    conn.send_command("ACL", "USERS")
    try:
        users = conn.read_response()
    except redis.ResponseError as exc:
        raise WrongServer(not_ours(url, file, f"ACL USERS: {exc}")) from None
    names = {u.decode() if isinstance(u, bytes) else str(u) for u in users or ()}
    if marker_user(server_id) not in names:
        raise WrongServer(not_ours(url, file, "it does not know the file's server id"))


def checking(found: Found) -> dict[str, Any]:
    """Client keyword arguments that check every new connection against ``found``'s file; none
    when the URL did not come from a file that names a server id."""
    if found.url is None or found.file is None or found.server_id is None:
        return {}
    check = partial(check_connection, server_id=found.server_id, url=found.url, file=found.file)
    return {"redis_connect_func": check}


def probe(found: Found) -> str | None:
    """None when the server ``found`` names answers and is the one its file names; else the one
    line saying what is wrong (naming the file). ``found`` must have a URL."""
    assert found.url is not None
    client = redis.Redis.from_url(
        found.url,
        socket_connect_timeout=PROBE_SECONDS,
        socket_timeout=PROBE_SECONDS,
        **checking(found),
    )
    try:
        client.ping()
    except WrongServer as exc:
        return str(exc)
    except redis.AuthenticationError as exc:
        if found.file is None:
            raise
        return not_ours(found.url, found.file, f"it refuses the file's credentials: {exc}")
    except (redis.RedisError, OSError):
        where = f", named in {found.file}" if found.file else ""
        return (
            f"no Redis answers at {masked(found.url)}{where}: is `collector serve` still "
            "running? (COLLECTOR_REDIS_URL or COLLECTOR_SERVER pick another)"
        )
    finally:
        client.close()
    return None


def not_up(missing: Path) -> str:
    """The one line for a connection file that is not there (yet)."""
    return (
        f"no connection file {missing}: `collector serve` is not running (yet); start it, or "
        "set COLLECTOR_REDIS_URL for a Redis of your own"
    )


def moved(current: Found) -> Found | None:
    """The server the connection file names now, when it is not ``current`` (serve restarted
    on a new port or password, or its file appeared); None when it is the same, or the file
    cannot be read (then the server known so far stays)."""
    try:
        found = resolve()
    except ValueError:
        return None
    if (found.url, found.server_id) == (current.url, current.server_id):
        return None
    return found


def where(found: Found, url: str) -> str:
    """The server ``found`` names, for a warning (password masked)."""
    if found.url is None and found.missing is not None:
        return f"the server of {found.missing} (no file yet)"
    source = f" (from {found.file})" if found.file else ""
    return f"redis at {masked(url)}{source}"
