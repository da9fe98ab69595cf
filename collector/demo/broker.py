"""A Redis for the demo: the user's (COLLECTOR_REDIS_URL) when it answers, else a private
redis-server (the one on PATH if >= 6.2, else the one the ``server`` extra installs, found as
``collector serve`` finds it), without persistence, stopped when the demo ends."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from collector.server.binary import find_redis_server
from collector.server.claim import answers
from collector.server.process import RedisConfig, running
from workers.urls import masked


def find_redis(stack: ExitStack, choice: str, workdir: Path) -> tuple[str, str]:
    """(url, how it was found). ``auto``: COLLECTOR_REDIS_URL if it answers, else a private
    redis-server; ``server``: always the private one. NoRedisServer (one line, with what to
    install) when there is no redis-server to run."""
    env_url = os.environ.get("COLLECTOR_REDIS_URL")
    if choice == "auto" and env_url and answers(env_url):
        return env_url, f"COLLECTOR_REDIS_URL ({masked(env_url)})"
    binary = find_redis_server()
    config = RedisConfig(bind="127.0.0.1", port=0, directory=workdir, persistent=False)
    server = stack.enter_context(running(binary, config))
    url = server.config.local_url()
    return url, f"a private {binary.describe()} on {url}"
