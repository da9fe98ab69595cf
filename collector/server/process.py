"""One private redis-server as a child process: configured through its stdin (so the password is
neither on a command line, which ``ps`` shows to every user, nor in a file), ready once it answers
PING, stopped with SIGTERM (Redis then writes its append-only file and exits), killed if it does
not stop in time. It dies with its parent, and a Ctrl-C in the terminal reaches only the parent,
which stops it in order. With a password its only login is serve's own user (the default user is
off), and a disabled user named after ``server_id`` lets clients tell it from any other server
on its port (workers.identity)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import redis

from collector.errors import BrokerUnavailable, CommandFailed, ConfigError
from collector.server.binary import RedisBinary
from workers.identity import marker_user

START_SECONDS = 15.0
STOP_SECONDS = 30.0
PORT_TRIES = 5  # a free port picked by us may be taken before redis-server binds it
PR_SET_PDEATHSIG = 1
USER = "collector"  # serve's own Redis user; the default user is off
PRIVATE = 0o077  # the child's umask: its append-only files and dumps are the user's alone


@dataclass(frozen=True)
class RedisConfig:
    """What the private server is told. ``appendfsync`` is ``everysec`` (at most one second of
    records lost if the machine fails) or ``always`` (none, at a cost: see README)."""

    bind: str
    port: int
    directory: Path
    password: str | None = None  # with it, the only login is USER with this password
    persistent: bool = True
    appendfsync: str = "everysec"
    server_id: str | None = None  # a disabled user carries it: what clients check (identity)

    def text(self) -> str:
        """The configuration file's text."""
        lines = [
            f"bind {self.bind}",
            f"port {self.port}",
            f'dir "{self.directory}"',
            "daemonize no",
            'save ""',
            f"appendonly {'yes' if self.persistent else 'no'}",
            f"appendfsync {self.appendfsync}",
        ]
        if self.password:  # the default user off: no server without USER and it can pass
            lines += ["user default off", f"user {USER} on >{self.password} ~* &* +@all"]
        if self.server_id:
            lines.append(f"user {marker_user(self.server_id)} off")
        return "\n".join(lines) + "\n"

    def local_url(self) -> str:
        """The URL this machine reaches the server at (a wildcard bind answers on loopback)."""
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "*") else self.bind
        host = "::1" if host == "::" else host
        return url_for(host, self.port, self.password)


def url_for(host: str, port: int, password: str | None) -> str:
    """``redis://[USER:password@]host:port/0``, with an IPv6 address in brackets."""
    shown = f"[{host}]" if ":" in host else host
    auth = f"{USER}:{password}@" if password else ""
    return f"redis://{auth}{shown}:{port}/0"


def free_port(bind: str) -> int:
    """A TCP port on ``bind`` that nothing listens on right now."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((bind if bind != "*" else "0.0.0.0", 0))
        return int(sock.getsockname()[1])


def _in_child() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Files the child creates are private; on Linux, SIGTERM it when the process that started
    it dies, even by SIGKILL."""
    os.umask(PRIVATE)
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def make_private(directory: Path) -> None:
    """``directory`` (created if missing) and everything in it readable by this user alone, even
    when it existed before with looser modes (records sit in its append-only files); a
    ConfigError naming what cannot be made private: a symbolic link in it (redis-server would
    write where it points, somewhere someone who could write here chose) or another user's
    file (theirs even after a chmod)."""
    path = directory
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in [directory, *directory.rglob("*")]:
            if path != directory and path.is_symlink():
                raise ConfigError(
                    f"--dir {directory}: {path} is a symbolic link, which serve does not "
                    "follow; give serve a directory of your own"
                )
            if path.stat().st_uid != os.geteuid():
                raise ConfigError(
                    f"--dir {directory}: {path} belongs to another user; give serve a "
                    "directory of your own"
                )
            path.chmod(0o700 if path.is_dir() else 0o600)
    except OSError as exc:
        raise ConfigError(
            f"--dir {directory}: cannot make {path} private ({exc.strerror}); give serve a "
            "directory of your own"
        ) from None


class PortInUse(BrokerUnavailable):
    """Another program listens on the port serve was told to use."""


class RedisProcess:
    """A running private redis-server; ``stop()`` (or leaving ``running``) ends it."""

    def __init__(self, binary: RedisBinary, config: RedisConfig) -> None:
        self.binary, self.config = binary, config
        self.log = config.directory / "redis.log"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
        fd = os.open(self.log, flags, 0o600)
        # Our own variables (COLLECTOR_DB_URL may hold a password) are nothing redis-server needs.
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTOR_")}
        with os.fdopen(fd, "ab") as log:
            self.proc = subprocess.Popen(
                [binary.path, "-"],
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to the parent, which stops us in order
                preexec_fn=_in_child,
            )
        assert self.proc.stdin is not None
        self.proc.stdin.write(config.text().encode())
        self.proc.stdin.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = START_SECONDS) -> None:
        """Return once the server answers PING and proves it is this child (see ``is_ours``);
        CommandFailed with its log's tail if it exits or does not answer in time (it is stopped
        then). Whatever else answers on the port meanwhile (our child could not bind it) is
        never taken for ours."""
        client = redis.Redis.from_url(self.config.local_url(), socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                with contextlib.suppress(redis.RedisError, OSError):
                    if client.ping() and self.is_ours(client):
                        return
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise CommandFailed(f"redis-server did not start: {self.log_tail()}")
                time.sleep(0.05)
        finally:
            client.close()

    def is_ours(self, client: redis.Redis) -> bool:
        """True when the server ``client`` reaches is this child: still running, the process id
        it reports is the child's, and it knows the disabled user only our stdin told it of."""
        if self.proc.poll() is not None:
            return False
        info = client.info("server")
        if int(info.get("process_id", -1)) != self.proc.pid:
            return False
        if self.config.server_id is None:
            return True
        users = {u.decode() if isinstance(u, bytes) else u for u in client.acl_users()}
        return marker_user(self.config.server_id) in users

    def log_tail(self, lines: int = 3) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:]) or "(no output)"

    def stop(self, timeout: float = STOP_SECONDS) -> int:
        """SIGTERM (Redis fsyncs its append-only file and exits), SIGKILL after ``timeout``;
        returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


@contextlib.contextmanager
def running(binary: RedisBinary, config: RedisConfig) -> Iterator[RedisProcess]:
    """A started and answering server, stopped on the way out; its directory is private. Port
    0 picks a free port (and tries again if another process takes it first); a given port that
    is taken is a PortInUse."""
    make_private(config.directory)
    tries = PORT_TRIES if config.port == 0 else 1
    for attempt in range(tries):
        chosen = config if config.port else replace(config, port=free_port(config.bind))
        server = RedisProcess(binary, chosen)
        try:
            server.wait_ready()
            break
        except CommandFailed as exc:
            taken = "already in use" in str(exc)
            if taken and config.port:
                raise PortInUse(
                    f"port {config.port} on {config.bind} is in use by another program: pick "
                    "another --port, or leave it out for a free one"
                ) from None
            if attempt + 1 == tries or not taken:
                raise BrokerUnavailable(str(exc)) from None
    try:
        yield server
    finally:
        server.stop()
