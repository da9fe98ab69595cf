"""Node-side settings, read from the environment once, and URL masking for anything printed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_QUEUE = "collector:results"
DEFAULT_MAX_RECORD_BYTES = 1 << 20


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

    @classmethod
    def from_env(cls) -> EmitterSettings:
        """Settings from COLLECTOR_REDIS_URL and COLLECTOR_QUEUE, with the contract's defaults."""
        return cls(
            redis_url=os.environ.get("COLLECTOR_REDIS_URL") or DEFAULT_REDIS_URL,
            queue=os.environ.get("COLLECTOR_QUEUE") or DEFAULT_QUEUE,
        )

    def __repr__(self) -> str:
        return (
            f"EmitterSettings(redis_url={mask_url(self.redis_url)!r}, queue={self.queue!r}, "
            f"max_record_bytes={self.max_record_bytes})"
        )
