"""A settings module for ``rq worker -c workers.rqconfig``: RQ's workers then use the Redis that
``emit`` uses (COLLECTOR_REDIS_URL, else the connection file of ``collector serve``, else the
default), so a worker on a compute node needs no URL, and no password on its command line (which
``ps`` shows to every user of the node).

RQ unpickles the jobs it takes, so a worker must never take them from a server someone else
started on a stale file's port: with a connection file the worker starts only once the server
answering proves it is the one the file names (workers.identity), else it exits in one line
naming the file; and it ends, in one line, as soon as that server goes away (workers.guard),
before RQ can reconnect to whatever takes the port."""

import sys

from workers import guard
from workers.identity import not_up, probe
from workers.settings import DEFAULT_REDIS_URL, resolve

WHO = "rq worker -c workers.rqconfig"


def checked_url() -> str:
    """The URL RQ is to use; SystemExit with one line when its connection file is missing, or
    names a server that is gone or is not the one that wrote it. A server from a file is
    guarded from then on."""
    try:
        found = resolve()
    except ValueError as exc:
        raise SystemExit(f"{WHO}: {exc}") from None
    if not found.from_file:
        return found.url or DEFAULT_REDIS_URL
    problem = not_up(found.missing) if found.missing is not None else probe(found)
    if problem is not None:
        sys.stderr.write(f"{WHO}: {problem}\n")
        raise SystemExit(1)
    assert found.url is not None
    guard.start(found, WHO)
    return found.url


REDIS_URL = checked_url()
