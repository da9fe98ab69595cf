"""Node-side settings, read from the environment once, and URL masking for anything printed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from workers.connection import find_server
from workers.errors import SettingsError
from workers.shards import env_shards

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_QUEUE = "collector:results"
DEFAULT_MAX_RECORD_BYTES = 1 << 20
DEFAULT_EMIT_TIMEOUT = 30.0


def default_spool_dir() -> Path:
    """Per-user directory for records Redis could not take, under $XDG_CACHE_HOME or ~/.cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "result-collector" / "spool"


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***`` (user names stay readable)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


@dataclass(frozen=True)
class EmitterSettings:
    """Where emitters send records; ``repr`` never shows a password."""

    redis_url: str = DEFAULT_REDIS_URL
    queue: str = DEFAULT_QUEUE
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    emit_timeout: float = DEFAULT_EMIT_TIMEOUT
    spool_dir: Path = field(default_factory=default_spool_dir)
    connection_file: Path | None = None  # the file ``redis_url`` came from, if it did
    shards: int | None = None  # COLLECTOR_SHARDS; None: read what the collector published

    @classmethod
    def from_env(cls) -> EmitterSettings:
        """Settings from COLLECTOR_REDIS_URL (else the connection file of ``collector serve``,
        see workers.connection), COLLECTOR_QUEUE (else the file's), COLLECTOR_EMIT_TIMEOUT
        (seconds), COLLECTOR_SPOOL_DIR and COLLECTOR_SHARDS, with the contract's defaults; a bad
        timeout, shard count, server name or connection file raises SettingsError."""
        timeout = os.environ.get("COLLECTOR_EMIT_TIMEOUT") or ""
        spool = os.environ.get("COLLECTOR_SPOOL_DIR")
        try:
            found = find_server()
            return cls(
                redis_url=found.url or DEFAULT_REDIS_URL,
                queue=os.environ.get("COLLECTOR_QUEUE") or found.queue or DEFAULT_QUEUE,
                emit_timeout=parse_timeout(timeout) if timeout else DEFAULT_EMIT_TIMEOUT,
                spool_dir=Path(spool) if spool else default_spool_dir(),
                connection_file=found.file,
                shards=env_shards(),
            )
        except ValueError as exc:  # one line in the CLI, still a ValueError in a job
            raise SettingsError(str(exc)) from None

    def __repr__(self) -> str:
        return (
            f"EmitterSettings(redis_url={mask_url(self.redis_url)!r}, queue={self.queue!r}, "
            f"max_record_bytes={self.max_record_bytes}, emit_timeout={self.emit_timeout}, "
            f"spool_dir={str(self.spool_dir)!r}, shards={self.shards}, "
            f"connection_file={str(self.connection_file) if self.connection_file else None!r})"
        )


def parse_timeout(text: str) -> float:
    """COLLECTOR_EMIT_TIMEOUT as seconds (a non-negative number), else a ValueError saying so."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"COLLECTOR_EMIT_TIMEOUT must be a number of seconds >= 0, got {text!r}")
    return value
