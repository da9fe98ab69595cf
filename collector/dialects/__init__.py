"""One module per supported database, each a ``Dialect`` (base.py) holding everything that
database needs: its column types, the conflict rule's insert, DDL for adding and widening
columns, the names it refuses, how its errors are classified, its fast writer, and the SQL
the status page uses. A URL of any other database is refused here, in one line.

sqlite.py      SQLite (the standard library's sqlite3)
postgresql.py  PostgreSQL through psycopg 3
mysql.py       MySQL and MariaDB through PyMySQL
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from collector.errors import ConfigError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from collector.dialects.base import Dialect

# SQLAlchemy backend name -> the module of its Dialect; imported on first use.
MODULES = {
    "sqlite": "collector.dialects.sqlite",
    "postgresql": "collector.dialects.postgresql",
    "mysql": "collector.dialects.mysql",
    "mariadb": "collector.dialects.mysql",  # SQLAlchemy's name for a mariadb:// URL
}
SUPPORTED = (
    "SQLite (sqlite:///path.db), PostgreSQL (postgresql+psycopg://user@host/db), "
    "MySQL/MariaDB (mysql+pymysql://user@host/db)"
)
# Spellings other tools accept that SQLAlchemy does not: what to write instead.
MISSPELLED = {"postgres": "postgresql+psycopg://", "sqlite3": "sqlite:///"}


def get(name: str) -> Dialect:
    """The Dialect of SQLAlchemy backend ``name`` (one that ``MODULES`` lists)."""
    module = importlib.import_module(MODULES[name])
    dialect: Dialect = module.DIALECT
    return dialect


def resolve(url: str | sa.URL) -> tuple[Dialect, sa.URL]:
    """The Dialect for ``url`` and the URL with its driver spelled out; a ConfigError in one
    line for a database without a dialect module, a driver we do not use, or a driver that is
    not installed. Never echoes the URL (it may hold a password). SQLAlchemy is imported here,
    not with the module: the settings check a URL for commands (emit) that never load it."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: an unreadable port or host
        raise ConfigError(f"not a database URL; supported: {SUPPORTED}") from None
    backend = parsed.get_backend_name()
    if backend in MISSPELLED:
        raise ConfigError(f"database URL scheme {backend}:// is spelled {MISSPELLED[backend]}")
    if backend not in MODULES:
        raise ConfigError(f"database {backend!r} is not supported; supported: {SUPPORTED}")
    dialect = get(backend)
    driver = parsed.drivername.partition("+")[2] or dialect.driver
    if driver != dialect.driver:
        raise ConfigError(
            f"{dialect.title} through driver {driver!r} is not supported: "
            f"write {backend}+{dialect.driver}:// (or {backend}://)"
        )
    try:
        importlib.import_module(dialect.module)
    except ImportError:
        raise ConfigError(
            f"{dialect.title} needs the {dialect.module} driver: "
            f"pip install 'result-collector[{dialect.extra}]'"
        ) from None
    return dialect, parsed.set(drivername=f"{backend}+{dialect.driver}")
