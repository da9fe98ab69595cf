"""Node-side settings, read from the environment once (URLs are masked by workers.urls)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from workers.connection import Found, find_server
from workers.errors import ConfigError, SettingsError
from workers.shards import env_shards
from workers.urls import check_redis_url, masked

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_QUEUE = "collector:results"
DEFAULT_MAX_RECORD_BYTES = 1 << 20
DEFAULT_EMIT_TIMEOUT = 30.0


def default_spool_dir() -> Path:
    """Per-user directory for records Redis could not take, under $XDG_CACHE_HOME or ~/.cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "result-collector" / "spool"


@dataclass(frozen=True)
class EmitterSettings:
    """Where emitters send records; ``repr`` never shows a password or the server id."""

    redis_url: str = DEFAULT_REDIS_URL
    queue: str = DEFAULT_QUEUE
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    emit_timeout: float = DEFAULT_EMIT_TIMEOUT
    spool_dir: Path = field(default_factory=default_spool_dir)
    connection_file: Path | None = None  # the file ``redis_url`` came from, if it did
    shards: int | None = None  # COLLECTOR_SHARDS; None: read what the collector published
    server: Found = field(default_factory=lambda: Found(None), repr=False)  # as resolved

    @classmethod
    def from_env(
        cls,
        redis_url: str | None = None,
        queue: str | None = None,
        *,
        emit_timeout: float | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        shards: int | None = None,
    ) -> EmitterSettings:
        """The given values, and for each one not given (None) its variable: COLLECTOR_REDIS_URL
        (else the connection file of ``collector serve``: see ``resolve``), COLLECTOR_QUEUE (else
        the file's), COLLECTOR_EMIT_TIMEOUT (seconds), COLLECTOR_SPOOL_DIR and COLLECTOR_SHARDS,
        then the contract's defaults. A variable whose value is given is not read; a bad
        timeout, shard count, server name or connection file raises SettingsError (a
        ValueError too, as it always was: one line in the CLI)."""
        try:
            found = resolve(redis_url)
            if emit_timeout is None:
                text = os.environ.get("COLLECTOR_EMIT_TIMEOUT") or ""
                emit_timeout = parse_timeout(text) if text else DEFAULT_EMIT_TIMEOUT
            if spool_dir is None:
                spool_dir = os.environ.get("COLLECTOR_SPOOL_DIR") or default_spool_dir()
            given_shards = shards if shards is not None else env_shards()
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        return cls(
            redis_url=found.url or DEFAULT_REDIS_URL,
            queue=resolve_queue(queue, found),
            emit_timeout=emit_timeout,
            spool_dir=Path(spool_dir),
            connection_file=found.file,
            shards=given_shards,
            server=found,
        )

    def __repr__(self) -> str:
        return (
            f"EmitterSettings(redis_url={masked(self.redis_url)!r}, queue={self.queue!r}, "
            f"max_record_bytes={self.max_record_bytes}, emit_timeout={self.emit_timeout}, "
            f"spool_dir={str(self.spool_dir)!r}, shards={self.shards}, "
            f"connection_file={str(self.connection_file) if self.connection_file else None!r})"
        )


def resolve(redis_url: str | None = None) -> Found:
    """Where Redis is, the one rule for emitters, ``rq worker -c workers.rqconfig``, the
    collector's ``Settings.from_env()`` and every command: ``redis_url`` when given, else
    COLLECTOR_REDIS_URL, else the connection file ``collector serve`` wrote (COLLECTOR_SERVER
    names it), else ``Found(None)``: the default URL, or, when a config directory exists,
    ``missing`` names the file that is not up yet (workers.connection says why). A URL found
    is checked (workers.urls): a bad one is a ConfigError in one line, naming the connection
    file when it came from one."""
    found = find_server(redis_url)
    if found.url is not None:
        try:
            check_redis_url(found.url)
        except ConfigError as exc:
            raise ConfigError(f"{found.file}: {exc}" if found.from_file else str(exc)) from None
    return found


def resolve_queue(queue: str | None, found: Found) -> str:
    """The queue: ``queue`` when given, else COLLECTOR_QUEUE, else the connection file's, else
    the default. A name that is not text (a byte not UTF-8 in the environment reaches Python as
    a lone surrogate) is a ConfigError naming where it came from: Redis could not be sent it."""
    if queue:
        return text_name(queue, "the queue name")
    if env := os.environ.get("COLLECTOR_QUEUE"):
        return text_name(env, "COLLECTOR_QUEUE")
    if found.queue:
        return text_name(found.queue, f"the queue of {found.file}")
    return DEFAULT_QUEUE


def text_name(value: str, where: str) -> str:
    """``value`` when it encodes as UTF-8, else a ConfigError in one line naming ``where``."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{where} is not UTF-8 text: {value!a}") from None
    return value


def parse_timeout(text: str) -> float:
    """COLLECTOR_EMIT_TIMEOUT as seconds (a non-negative number), else a ValueError saying so."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"COLLECTOR_EMIT_TIMEOUT must be a number of seconds >= 0, got {text!r}")
    return value
