"""Database URLs checked once, where settings are read: one message per problem of form (not
a URL, a port, a host on a SQLite URL), the password never shown. Which database a URL names,
and whether it is supported, is collector.dialects' concern (collector.settings asks both)."""

from __future__ import annotations

from urllib.parse import urlsplit

from collector.errors import ConfigError
from workers.urls import host_and_port, masked, port_problem


def check_db_url(url: str) -> str:
    """``url`` itself if it can name a database; ConfigError saying what is wrong otherwise."""
    scheme, sep, _rest = url.partition("://")
    if not sep or not scheme:
        raise ConfigError(f"not a database URL: {masked(url)}")
    problem = db_url_problem(url, scheme)
    if problem is not None:
        raise ConfigError(f"database url {problem}: {masked(url)}")
    return url


def db_url_problem(url: str, scheme: str) -> str | None:
    """What is wrong with ``url`` (whose scheme is ``scheme``), or None."""
    backend = scheme.partition("+")[0].lower()
    if any(ord(c) < 32 or ord(c) == 127 for c in url):  # a file named "results.db\n", a NUL
        return "holds a control character"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in url):  # a byte not UTF-8, from the environment
        return "holds a byte that is not UTF-8 text"
    try:
        netloc = urlsplit(url).netloc
    except ValueError as exc:  # an unclosed [ of an IPv6 address
        return f"cannot be read ({exc})"
    host, port = host_and_port(netloc)
    if problem := port_problem(port):
        return problem
    if backend == "sqlite" and (host or port):
        return "has a host (write sqlite:///relative.db or sqlite:////absolute/path.db)"
    return None
