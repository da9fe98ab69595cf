"""Database URLs checked once, where settings are read: one message per problem (not a URL, a
scheme no dialect serves, a port, a host on a SQLite URL), the password never shown. Which
database a URL names (a SQLite path, say) is the settings' concern, not this module's."""

from __future__ import annotations

from urllib.parse import urlsplit

from collector.errors import ConfigError
from workers.urls import host_and_port, masked, port_problem

KNOWN = "sqlite://, postgresql://, mysql:// or mariadb://"
HINTS = {"postgres": "postgresql", "pgsql": "postgresql", "sqlite3": "sqlite", "maria": "mariadb"}


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
    if backend in HINTS:
        return f"scheme {scheme}:// is not known (write {HINTS[backend]}://)"
    try:
        netloc = urlsplit(url).netloc
    except ValueError as exc:  # an unclosed [ of an IPv6 address
        return f"cannot be read ({exc})"
    host, port = host_and_port(netloc)
    if problem := port_problem(port):
        return problem
    if backend == "sqlite" and (host or port):
        return "has a host (write sqlite:///relative.db or sqlite:////absolute/path.db)"
    import sqlalchemy as sa  # here, not at import: ``collector emit`` never loads SQLAlchemy

    try:
        sa.engine.make_url(url).get_dialect()
    except sa.exc.NoSuchModuleError:
        return f"scheme {scheme}:// names no database SQLAlchemy knows ({KNOWN})"
    except (sa.exc.ArgumentError, ValueError):
        return "cannot be read"
    return None
