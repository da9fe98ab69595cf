"""What ``collector serve`` does, outside the command that adapts its flags: take the server
name, start a private redis-server (random password for its own user, a random server id; see
collector.server.process), check that what answers is that child, publish the connection file
jobs find it by, then run the collector in this process until SIGTERM, SIGINT or SIGHUP.

Shutdown order, and why: the collector finishes and acknowledges its batch while Redis still runs
(an acknowledgement needs it); then Redis writes its append-only file and stops (records emitted
meanwhile are kept for the next serve); then the connection file goes. A second signal stops
Redis and removes the file at once; unacknowledged records stay pending in the append-only file
and are stored by the next serve.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from collector import signals
from collector.daemon import Counters
from collector.errors import BrokerUnavailable
from collector.server.binary import find_redis_server
from collector.server.claim import ServerClaim
from collector.server.process import RedisConfig, RedisProcess, running, url_for
from collector.service import run_collector
from collector.settings import Settings, mask_db_url
from workers.connection import DEFAULT_SERVER, ServerInfo
from workers.jobinfo import host_name, slurm_job_name

WILDCARDS = ("0.0.0.0", "::", "*")
SERVE_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # SIGHUP: the session closed


@dataclass(frozen=True)
class ServeOptions:
    """Where serve's Redis listens and keeps its data, and under which name jobs find it."""

    name: str = DEFAULT_SERVER
    bind: str = "127.0.0.1"
    port: int = 0  # 0: a free one
    directory: Path | None = None  # None: default_dir(name)
    appendfsync: str = "everysec"


def default_dir(name: str) -> Path:
    """Where server ``name`` keeps its data: $XDG_DATA_HOME or ~/.local/share, result-collector."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(base) / "result-collector" / name


def advertised_host(bind: str) -> str:
    """The address jobs connect to: the bound one, or this machine's name for a wildcard."""
    return socket.getfqdn() if bind in WILDCARDS else bind


def watch(server: RedisProcess, stop: threading.Event, died: list[int]) -> threading.Thread:
    """A thread that stops the collector when redis-server exits on its own."""

    def loop() -> None:
        while not stop.wait(0.5):
            code = server.proc.poll()
            if code is not None:
                died.append(code)
                stop.set()

    thread = threading.Thread(target=loop, name="redis-watch", daemon=True)
    thread.start()
    return thread


def serve(settings: Settings, options: ServeOptions, say: Callable[[str], object]) -> Counters:
    """Run serve until a signal (or its redis-server exiting on its own: BrokerUnavailable after
    the orderly stop); ``say`` tells the person who started it what runs where. ``settings``'
    Redis URL is replaced by the private server's."""
    binary = find_redis_server()
    stop = threading.Event()
    emergency: list[Callable[[], object]] = []
    signals.install(stop, emergency, SERVE_SIGNALS)
    died: list[int] = []
    with ExitStack() as stack:  # unwound in reverse: Redis stops, then the file goes
        claim = ServerClaim(options.name)
        claim.acquire()
        stack.callback(claim.release)
        config = RedisConfig(
            bind=options.bind,
            port=options.port,
            directory=options.directory or default_dir(options.name),
            password=secrets.token_urlsafe(24),
            appendfsync=options.appendfsync,
            server_id=secrets.token_hex(16),
        )
        try:
            server = stack.enter_context(running(binary, config))
        except OSError as exc:
            raise BrokerUnavailable(f"cannot listen on {options.bind}: {exc}") from None
        emergency[:] = [lambda: server.stop(timeout=10), claim.release]
        info = publish(claim, server, settings.queue, settings.db_url)
        say(status_line(info, server, settings, claim.path))
        watch(server, stop, died)
        counters = run_collector(replace(settings, redis_url=server.config.local_url()), stop)
    say(
        f"stopped: {counters.stored} records stored, {counters.dead} dead letters; "
        f"redis-server stopped; {claim.path} removed"
    )
    if died:
        raise BrokerUnavailable(
            f"redis-server exited on its own (code {died[0]}); see {server.log}"
        )
    return counters


def publish(claim: ServerClaim, server: RedisProcess, queue: str, db_url: str) -> ServerInfo:
    """Write the connection file for ``server``, with the (absolute) database its rows go to:
    ``status``, ``wait`` and the sweep commands read that one from any folder."""
    host, config = advertised_host(server.config.bind), server.config
    info = ServerInfo(
        name=claim.name,
        url=url_for(host, config.port, config.password),
        host=host,
        port=config.port,
        pid=os.getpid(),
        hostname=host_name(),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        queue=queue,
        slurm_job_id=slurm_job_name(os.environ),
        server_id=config.server_id,
        db_url=db_url,
    )
    claim.publish(info)
    return info


def status_line(info: ServerInfo, server: RedisProcess, settings: Settings, path: Path) -> str:
    """What serve tells the person who started it (never the password)."""
    pick = "" if info.name == DEFAULT_SERVER else f" when they have COLLECTOR_SERVER={info.name}"
    return (
        f"collector serve {info.name!r}: {server.binary.describe()} on {info.host}:{info.port}, "
        f"data in {server.config.directory} (appendfsync {server.config.appendfsync}); "
        f"rows into {mask_db_url(settings.db_url)}, queue {settings.queue}\n"
        f"jobs find it through {path}{pick}; stop with Ctrl-C or SIGTERM"
    )
