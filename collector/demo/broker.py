"""A Redis for the demo: the user's (COLLECTOR_REDIS_URL), a private redis-server, or an embedded
fakeredis, each stopped when the demo ends."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import click
import redis

from collector.demo.processes import stop
from collector.errors import CommandFailed
from workers.settings import mask_url


def answers(url: str) -> bool:
    """True when a Redis at ``url`` replies to PING within a second or two."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(binary: str, workdir: Path) -> Iterator[str]:
    """A private redis-server on a free loopback port, without persistence, stopped afterwards."""
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    cmd += ["--dir", str(workdir)]
    with (workdir / "redis.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log_text = (workdir / "redis.log").read_text(errors="replace").strip()
                raise CommandFailed(f"redis-server did not start: {log_text[-300:]}")
            time.sleep(0.05)
        yield url
    finally:
        stop(proc)


@contextlib.contextmanager
def embedded_redis() -> Iterator[str]:
    """fakeredis's TCP server in a thread of this process: enough for the demo, nothing more."""
    from fakeredis import TcpFakeServer
    from fakeredis._clients._tcp_server import TCPFakeRequestHandler

    class Handler(TCPFakeRequestHandler):
        """Two fixes to fakeredis 2.x's handler: TCP_NODELAY (its replies to a pipeline go out
        one small write each, which Nagle's algorithm holds back ~40 ms apiece), and a client's
        address as ``host:port``, not a Python tuple, which redis-py cannot parse in CLIENT INFO
        (rq worker asks for it)."""

        def setup(self) -> None:
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()
            info = self.current_client.get_socket()._client_info
            for name in ("addr", "laddr"):
                if isinstance(info.get(name), tuple):
                    info[name] = "{}:{}".format(*info[name][:2])

    server = TcpFakeServer(("127.0.0.1", 0))
    server.RequestHandlerClass = Handler
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fakeredis", daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    finally:
        server.shutdown()
        server.server_close()


def find_redis(stack: ExitStack, choice: str, workdir: Path) -> tuple[str, str]:
    """(url, how it was found). ``auto``: COLLECTOR_REDIS_URL if it answers, else a private
    redis-server if one is installed, else the embedded one, with a warning."""
    env_url = os.environ.get("COLLECTOR_REDIS_URL")
    if choice == "auto" and env_url and answers(env_url):
        return env_url, f"COLLECTOR_REDIS_URL ({mask_url(env_url)})"
    binary = shutil.which("redis-server")
    if choice in ("auto", "server") and binary:
        url = stack.enter_context(redis_server(binary, workdir))
        return url, f"a private redis-server on {url}"
    if choice == "server":
        raise CommandFailed("--redis server: no redis-server on the PATH")
    if choice == "auto":
        click.echo(
            "warning: no Redis at COLLECTOR_REDIS_URL and no redis-server installed: using an "
            "embedded fakeredis (fine for this demo, not for real work)",
            err=True,
        )
    url = stack.enter_context(embedded_redis())
    return url, f"an embedded fakeredis on {url}"
