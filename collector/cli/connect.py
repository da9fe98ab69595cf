"""What a command opens and closes: a database engine (refusing to create a SQLite file by a
typo) and a Redis client, each released when the command is done with it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis
import sqlalchemy as sa

from collector.db import database_exists, make_engine
from collector.errors import ConfigError
from collector.settings import mask_db_url


@contextlib.contextmanager
def open_db(db_url: str, *, create: bool = False) -> Iterator[sa.Engine]:
    """An engine for ``db_url``, disposed afterwards; a missing SQLite file is an error unless
    ``create`` (so a typo in the URL does not leave an empty database behind)."""
    if not create and not database_exists(db_url):
        raise ConfigError(f"database {mask_db_url(db_url)} does not exist")
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def open_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A client for ``redis_url`` (it connects on first use), closed afterwards."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()
