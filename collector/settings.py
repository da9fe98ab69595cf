"""Collector settings: one validated dataclass, environment first, flags override."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from collector.dburls import check_db_url as check_url_form
from collector.errors import ConfigError
from workers.checks import Limits
from workers.connection import Found
from workers.identity import not_up
from workers.jobinfo import host_name
from workers.settings import DEFAULT_QUEUE, DEFAULT_REDIS_URL, resolve, resolve_queue
from workers.shards import ENV as SHARDS_ENV
from workers.shards import parse_shards
from workers.urls import check_redis_url as check_redis_url  # the node side's, one rule
from workers.urls import mask_query, masked

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_DB_URL = "sqlite:///results.db"
DB_ENV = "COLLECTOR_DB_URL"  # Redis and the queue resolve as workers.settings.resolve says
ARRAYS_ENV = "COLLECTOR_ARRAYS"
PIPELINE_ENV = "COLLECTOR_PIPELINE"
MAX_SECONDS = 1e9  # a duration's bound: as milliseconds it must still be an integer for Redis
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _parsed_db_url(url: str) -> URL:
    """SQLAlchemy's reading of ``url``, imported only here: commands that touch no database
    (``collector emit``) then never load SQLAlchemy."""
    from sqlalchemy.engine import make_url

    return make_url(url)


def mask_db_url(url: str) -> str:
    """A database URL with its password hidden, as SQLAlchemy renders it."""
    try:
        return mask_query(_parsed_db_url(url).render_as_string(hide_password=True))
    except Exception:
        return masked(url)


def absolute_db_url(url: str) -> str:
    """``url`` with a relative SQLite path made absolute against the current directory, so the
    database is the same one from any folder (the connection file and the start log carry it);
    every other URL (and one SQLAlchemy cannot parse: validation says why) unchanged."""
    try:
        parsed = _parsed_db_url(url)
    except Exception:
        return url
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return url
    if path.startswith("file:") or os.path.isabs(path):
        return url
    return parsed.set(database=os.path.abspath(path)).render_as_string(hide_password=False)


def resolve_db_url(db_url: str | None, found: Found) -> str:
    """The database: ``db_url`` when given, else COLLECTOR_DB_URL, else the one the connection
    file ``found`` came from names (its serve writes there), else the default; made absolute
    (``absolute_db_url``)."""
    return absolute_db_url(db_url or os.environ.get(DB_ENV) or found.db_url or DEFAULT_DB_URL)


def check_db_url(url: str) -> str:
    """``url`` itself if it is a well-formed database URL (collector.dburls: one message per
    problem) of a supported database (a dialect module, its driver installed); ConfigError
    otherwise (password masked)."""
    from collector import dialects  # SQLAlchemy, only where a database URL is checked

    check_url_form(url)
    dialects.resolve(url)
    return url


def check_durable(db_url: str) -> None:
    """ConfigError when ``db_url`` is an in-memory SQLite database: a collector would store
    records there, acknowledge them, and lose every row when it stops."""
    parsed = _parsed_db_url(db_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError(
            f"database {masked(db_url)} is in memory: every row would be lost when the "
            "collector stops (name a file: sqlite:///results.db)"
        )


def check_queue(name: str) -> str:
    """``name`` itself if it can name the queue stream; ConfigError when it is empty or no
    text (bytes that are not UTF-8, as a shell passes them, cannot name a Redis key)."""
    if not name:
        raise ConfigError("queue name must not be empty")
    check_text("queue name", name)
    return name


def check_text(what: str, name: str) -> None:
    """ConfigError when ``name`` is not UTF-8 text (lone surrogates: bytes argv could not
    decode)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        shown = name.encode(errors="backslashreplace").decode()
        raise ConfigError(f"{what} '{shown}' is not UTF-8 text") from None


def check_switch(name: str, value: str) -> bool:
    """``value`` of the variable ``name`` as a switch (1/true/yes/on or 0/false/no/off, any
    case); ConfigError otherwise."""
    text = value.strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise ConfigError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {value!r}")


def check_shards(value: str | int, name: str = "shards") -> int:
    """``value`` as a shard count (1 to workers.shards.MAX_SHARDS); a ConfigError naming
    ``name`` (the setting, or the variable it came from) otherwise."""
    try:
        return parse_shards(value)
    except ValueError as exc:
        raise ConfigError(str(exc).replace(SHARDS_ENV, name)) from None


@dataclass(frozen=True)
class Settings:
    """Everything the collector daemon and CLI need; ``repr`` masks passwords."""

    redis_url: str = DEFAULT_REDIS_URL
    db_url: str = DEFAULT_DB_URL
    queue: str = DEFAULT_QUEUE
    batch_size: int = 2000
    max_wait: float = 0.5
    consumer: str = field(default_factory=host_name)
    claim_idle: float = 60.0
    max_deliveries: int = 5
    limits: Limits = field(default_factory=Limits)
    models: str | None = None
    shards: int = 1  # streams the queue is spread over (workers.shards names them)
    arrays: str | None = None  # an HDF5 file for the records' arrays (collector.arrays)
    pipeline: bool = False  # read and write in two processes (collector.pipeline)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then COLLECTOR_* variables, then ``overrides`` (flags) that are not None; a
        variable whose setting is given is not read. Redis and the queue resolve as for
        emitters (workers.settings.resolve): COLLECTOR_REDIS_URL, else the connection file of
        ``collector serve``, else the default; a config directory without that file is a
        ConfigError (serve is not up: never another Redis on localhost). The database resolves
        by ``resolve_db_url``: a relative SQLite path becomes absolute here, at start."""
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            found = resolve(given.get("redis_url"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if found.url is None and found.missing is not None:
            raise ConfigError(not_up(found.missing))
        values: dict[str, Any] = {"queue": resolve_queue(given.get("queue"), found)}
        if found.url is not None:
            values["redis_url"] = found.url
        values["db_url"] = resolve_db_url(given.pop("db_url", None), found)
        if "arrays" not in given and (arrays := os.environ.get(ARRAYS_ENV)):
            values["arrays"] = arrays
        if "pipeline" not in given and (text := os.environ.get(PIPELINE_ENV)) is not None:
            values["pipeline"] = check_switch(PIPELINE_ENV, text)
        if "shards" not in given and (text := os.environ.get(SHARDS_ENV)):
            values["shards"] = check_shards(text, SHARDS_ENV)
        values.update(given)
        limit_names = {f.name for f in fields(Limits)}
        limits = {k: values.pop(k) for k in list(values) if k in limit_names}
        settings = cls(**values)
        if limits:
            settings = replace(settings, limits=replace(settings.limits, **limits))
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ConfigError naming the first bad setting."""
        check_redis_url(self.redis_url)
        check_db_url(self.db_url)
        check_queue(self.queue)
        check_shards(self.shards)
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        for name in ("max_wait", "claim_idle"):
            seconds = getattr(self, name)
            if not 0 <= seconds <= MAX_SECONDS:  # NaN fails too; click's FloatRange takes it
                raise ConfigError(
                    f"{name.replace('_', '-')} must be a number of seconds from 0 to "
                    f"{MAX_SECONDS:g}, got {seconds:g}"
                )
        if self.max_deliveries < 1:
            raise ConfigError(f"max deliveries must be at least 1, got {self.max_deliveries}")
        if not self.consumer:
            raise ConfigError("consumer name must not be empty")
        check_text("consumer name", self.consumer)
        for f in fields(Limits):
            if getattr(self.limits, f.name) < 1:
                raise ConfigError(f"{f.name.replace('_', '-')} must be at least 1")

    def describe(self) -> str:
        """One line for the start-up log, passwords masked."""
        return (
            f"redis={masked(self.redis_url)} db={mask_db_url(self.db_url)} queue={self.queue} "
            f"consumer={self.consumer} batch_size={self.batch_size} max_wait={self.max_wait}s "
            f"claim_idle={self.claim_idle}s max_deliveries={self.max_deliveries} "
            f"max_record_bytes={self.limits.max_record_bytes} shards={self.shards}"
            f"{' pipeline' if self.pipeline else ''}"
        )

    def __repr__(self) -> str:
        return f"Settings({self.describe()})"
