"""What a command opens and closes: a database engine (refusing to create a SQLite file by a
typo), a Redis client and a Dask client, each released when the command is done with it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import redis
import sqlalchemy as sa

from collector.db import database_exists, make_engine
from collector.errors import ConfigError, SchedulerUnavailable
from collector.settings import mask_db_url
from workers.cluster import client_from_url

if TYPE_CHECKING:
    from distributed import Client

DASK_TIMEOUT = 30.0  # seconds to reach a Dask scheduler


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
    client = client_from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def dask_address_of(address: str | None, scheduler_file: str | None) -> str | None:
    """The scheduler's address: ``address``, or the one in ``scheduler_file``; None when
    neither is given. Reads the file only, so no Dask client is started."""
    if address is not None and scheduler_file is not None:
        raise ConfigError("give the Dask scheduler as --dask ADDRESS or --scheduler-file, not both")
    if scheduler_file is None:
        return address
    if not os.path.isfile(scheduler_file):
        raise ConfigError(f"no Dask scheduler file {scheduler_file} (is the scheduler running?)")
    try:
        with open(scheduler_file, encoding="utf-8") as file:
            found = json.load(file).get("address")
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"cannot read Dask scheduler file {scheduler_file}: {exc}") from None
    if not isinstance(found, str):
        raise ConfigError(f"Dask scheduler file {scheduler_file} names no address")
    return found


@contextlib.contextmanager
def open_dask(
    address: str | None, scheduler_file: str | None, timeout: float = DASK_TIMEOUT
) -> Iterator[Client | None]:
    """A Dask client for the scheduler at ``address`` (``tcp://head:8786``) or described by
    ``scheduler_file`` (what ``dask scheduler --scheduler-file`` and dask-jobqueue write); None
    when neither is given. Closing it first sends everything submitted."""
    if address is None and scheduler_file is None:
        yield None
        return
    if address is not None and scheduler_file is not None:
        raise ConfigError("give the Dask scheduler as --dask ADDRESS or --scheduler-file, not both")
    if scheduler_file is not None and not os.path.isfile(scheduler_file):
        raise ConfigError(f"no Dask scheduler file {scheduler_file} (is the scheduler running?)")
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("Dask is not installed: pip install 'result-collector[dask]'") from None
    where = address or f"the scheduler in {scheduler_file}"
    try:
        client = Client(
            address, scheduler_file=scheduler_file, timeout=timeout, set_as_default=False
        )
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerUnavailable(f"cannot reach Dask at {where}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
