"""The soak's private redis-server: AOF with ``appendfsync everysec`` (what ``collector serve``
runs), one port for its whole life, stopped (SIGTERM), killed (SIGKILL) and restarted on its
append-only file, and made full for a while (``maxmemory`` at what it uses now)."""

from __future__ import annotations

import contextlib
import shutil
import signal
from pathlib import Path

import redis

from scripts.soak.procs import Child, Children, free_port, wait_until

FULL_MARGIN = 64 * 1024  # bytes over the memory in use: a few writes fit, then OOM


class Broker:
    """One redis-server the faults may stop, kill and fill; ``url`` stays the same."""

    def __init__(self, directory: Path, children: Children) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("soak: redis-server is not on PATH")
        self.binary, self.directory, self.children = binary, directory, children
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.child: Child | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def client(self, timeout: float = 10.0) -> redis.Redis:
        return redis.Redis.from_url(
            self.url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def start(self) -> None:
        """Start (or restart, loading the AOF) and return once it answers PING."""
        argv = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--save", "", "--appendonly", "yes",
            "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        self.child = self.children.start(argv, self.directory / "redis.log")
        client = self.client()
        try:
            if not wait_until(lambda: client.ping(), 30):
                raise RuntimeError(f"redis-server did not start: {self.child.log_tail()}")
        finally:
            client.close()

    def up(self) -> bool:
        return self.child is not None and self.child.alive()

    def stop(self, sig: int) -> None:
        """End the server with ``sig`` (SIGTERM: it writes its AOF; SIGKILL: what everysec has
        not fsync'd yet is gone) and wait for it."""
        if self.child is not None:
            self.child.signal(sig)
            if self.child.wait(30) is None:
                self.child.kill()
        self.child = None

    def fill(self) -> None:
        """``maxmemory`` just above the memory in use: writes are soon refused with OOM."""
        client = self.client()
        try:
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", used + FULL_MARGIN)
        finally:
            client.close()

    def unfill(self) -> None:
        """No memory limit again (also after a restart, which forgets CONFIG SET anyway)."""
        with contextlib.suppress(redis.RedisError):
            client = self.client()
            try:
                client.config_set("maxmemory", 0)
            finally:
                client.close()

    def shutdown(self) -> None:
        if self.up():
            self.stop(signal.SIGTERM)
