"""Redis URLs checked once, where settings are read: one message per problem (scheme, host, port,
database number), the password never shown, so a bad URL is one line and never a traceback
from deep inside redis-py (``int('abc')``, a port beyond 65535)."""

from __future__ import annotations

import functools
import math
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from redis.connection import (
    URL_QUERY_ARGUMENT_PARSERS,
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)

from workers.errors import ConfigError

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_FALSE = ("", "0", "F", "FALSE", "N", "NO")  # redis-py's to_bool: any other value is true
_STARTS = ", ".join(f"{s}://" for s in REDIS_SCHEMES[:-1]) + f" or {REDIS_SCHEMES[-1]}://"
# Query parameters a URL may set: those redis-py parses from text, and those it takes as text;
# each only where the connection class takes it (redis-py hands any other to the class, which
# raises TypeError when it first connects). Not "retry_on_error" (it names exception classes).
_TEXT_KEYS = {"decode_responses", "client_name", "username", "password", "lib_name",
              "lib_version", "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs",
              "ssl_ca_path", "ssl_password", "ssl_ciphers", "ssl_ca_data"}  # fmt: skip
_URL_KEYS = (_TEXT_KEYS | set(URL_QUERY_ARGUMENT_PARSERS)) - {"retry_on_error"}
_SECONDS = ("socket_timeout", "socket_connect_timeout")
_COUNTS = ("max_connections", "socket_read_size")


def check_redis_url(url: str) -> str:
    """``url`` itself if it can name a Redis; ConfigError saying what is wrong otherwise."""
    problem = redis_url_problem(url)
    if problem is not None:
        raise ConfigError(f"redis url {problem}: {masked(url)}")
    return url


def redis_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a Redis URL (a phrase after "redis url"), or None."""
    scheme, sep, _rest = url.partition("://")
    if not sep or scheme not in REDIS_SCHEMES:  # redis-py takes them in lower case only
        return f"must start with {_STARTS}"
    if any(ord(c) < 32 or ord(c) == 127 for c in url):  # urlsplit would drop \n, \r, \t
        return "holds a control character"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in url):  # a byte not UTF-8, from the environment
        return "holds a byte that is not UTF-8 text"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed [ of an IPv6 address
        return f"cannot be read ({exc})"
    query = parse_qsl(parts.query)
    if any(k == "decode_responses" and v.upper() not in _FALSE for k, v in query):
        return "sets decode_responses: records travel as msgpack bytes, which are no text (drop it)"
    if problem := query_problem(query) or key_problem(scheme, query):
        return problem
    if scheme == "unix":
        if not parts.path:
            return "has no socket path (unix:///path/to/redis.sock)"
        return db_problem([v for k, v in query if k == "db"], cluster=False)
    if _raw_delimiter(url.partition("://")[2]):
        return "has a password holding a raw '/', '?' or '#': percent-encode it (%2F, %3F, %23)"
    host, port = host_and_port(parts.netloc)
    if not host:
        return "has no host (redis://HOST:6379/0)"
    if problem := port_problem(port):
        return problem
    cluster = scheme in CLUSTER_SCHEMES or any(
        k == "cluster" and v.lower() in ("1", "true", "yes", "on") for k, v in query
    )
    path = parts.path.strip("/")
    return db_problem([*([path] if path else []), *(v for k, v in query if k == "db")], cluster)


def query_problem(query: list[tuple[str, str]]) -> str | None:
    """Why a query parameter is one redis-py cannot read (it would raise ValueError deep in the
    pool, or, for the protocol, fail every connection as if Redis were down), or None."""
    for key, value in query:
        parse: Any = URL_QUERY_ARGUMENT_PARSERS.get(key)
        if parse is None or key == "db":  # db: db_problem says it for both URL forms
            continue
        try:
            parse(value)
        except (TypeError, ValueError):
            kind = getattr(parse, "__name__", "its type")
            return f"query parameter {key}={value!r} is not what redis-py reads ({kind})"
        if key == "protocol" and value not in ("2", "3"):
            return f"protocol {value!r} is not 2 or 3"
        if key in _SECONDS and not 0 < float(value) < math.inf:
            return f"query parameter {key}={value!r} is not a number of seconds above 0"
        if key in _COUNTS and int(value) < 1:
            return f"query parameter {key}={value!r} is below 1"
    return None


def key_problem(scheme: str, query: list[tuple[str, str]]) -> str | None:
    """Why a query parameter is one the URL's connection class does not take, or None."""
    if not query:
        return None
    tls = scheme.startswith("rediss")
    taken = _taken(
        UnixDomainSocketConnection if scheme == "unix" else SSLConnection if tls else Connection
    )
    for key, _value in query:
        if key != "cluster" and key not in taken:
            hint = " (ssl_ parameters need rediss://)" if key.startswith("ssl_") and not tls else ""
            return f"query parameter {key!r} is not one redis-py takes here{hint}"
    return None


@functools.cache
def _taken(connection: type[AbstractConnection]) -> frozenset[str]:
    """The URL query parameters a pool of ``connection`` takes (its and its bases' arguments)."""
    import inspect  # only once a URL has a query (an emitter's start-up pays nothing)

    names = set(inspect.signature(ConnectionPool).parameters)
    for cls in connection.__mro__:
        if issubclass(cls, AbstractConnection):
            names |= set(inspect.signature(cls.__init__).parameters)
    return frozenset(names & _URL_KEYS)


def host_and_port(netloc: str) -> tuple[str, str | None]:
    """The host and the port text (None when absent) of a URL's network location."""
    where = netloc.rpartition("@")[2]
    if where.startswith("["):  # [IPv6]:port
        host, _, tail = where[1:].partition("]")
        return host, tail[1:] if tail.startswith(":") else None
    host, sep, port = where.partition(":")
    return host, port if sep else None


def port_problem(port: str | None) -> str | None:
    """Why ``port`` (the text after the host's colon) is no TCP port, or None."""
    if port is None:
        return None
    if not port.isdigit() or not port.isascii():
        return f"port {port!r} is not a number"
    if not 1 <= int(port) <= 65535:
        return f"port {int(port)} is outside 1-65535"
    return None


def db_problem(numbers: list[str], cluster: bool) -> str | None:
    """Why the database number(s) given in the path or ``?db=`` are not one Redis can select."""
    for text in numbers:
        if not text.isdigit() or not text.isascii():
            return f"database {text!r} is not a number (redis://host:6379/0)"
        if cluster and int(text) != 0:
            return f"database {int(text)} on a Redis Cluster, which has only database 0"
    return None


def masked(url: str) -> str:
    """``url`` with its password replaced by ``***``, for any text, parsable or not, and its
    unprintable characters escaped (a message stays one line)."""
    text = mask_query(_masked(url))
    return text if text.isprintable() else repr(text)[1:-1]


_DELIMITER = re.compile(r"[/?#]")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def mask_query(url: str) -> str:
    """``url`` with a ``password`` query parameter (redis-py reads one) replaced by ``***``."""
    return _QUERY_PASSWORD.sub(r"\1***", url)


def _masked(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if _raw_delimiter(rest):  # user:pa/ss@host: everything up to the last "@" is the user part
        userinfo, at, tail = rest.rpartition("@")
        return f"{scheme}{sep}{userinfo.partition(':')[0]}:***{at}{tail}"
    netloc, slash, tail = rest.partition("/")
    userinfo, at, where = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    return f"{scheme}{sep}{userinfo}{at}{where}{slash}{tail}"


def _raw_delimiter(rest: str) -> bool:
    """Whether the text after ``scheme://`` reads as a password holding a raw ``/``, ``?`` or
    ``#``: an ``@`` after the first of them, none before it, and a "port" before it that is no
    number (the host part, as a URL parser reads it, ended inside the password)."""
    end = _DELIMITER.search(rest)
    if end is None:
        return False
    netloc, tail = rest[: end.start()], rest[end.start() :]
    if "@" in netloc or "@" not in tail or ":" not in netloc:
        return False
    return not netloc.partition(":")[2].isdigit()
