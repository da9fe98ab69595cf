"""Real processes for the fault-injection tests: private redis-server and PostgreSQL instances on
free ports, collectors and producers as subprocesses, and a bounded wait."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PRODUCER = Path(__file__).with_name("producer.py")


def missing(what: str) -> None:
    """Skip locally, fail in CI, when a server binary the test needs is not installed."""
    if IN_CI:
        pytest.fail(f"{what} is not installed (CI=true: a missing service is a failure)")
    pytest.skip(f"{what} is not installed")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    """Poll ``check`` until it is true; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class RedisServer:
    """A private redis-server with AOF on (fsync always), in its own directory and port."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self.binary = shutil.which("redis-server") or ""
        if not self.binary:
            missing("redis-server")
        self.directory = directory
        self.port = free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, auth: str = "") -> str:
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, ping_url: str | None = None) -> None:
        """Start (or restart, reloading the AOF) and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--save", "", "--appendonly", "yes",
                "--appendfsync", "always", "--daemonize", "no", *self.extra,
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(ping_url or self.url())

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, 15, f"redis-server on port {self.port}")
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None


class PgCluster:
    """A private PostgreSQL cluster (initdb) on a free port, run as ``postgres`` under root."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            missing("PostgreSQL server binaries (initdb)")
        self.bin = Path(bins[-1]).parent
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="rc-pg-"))
        self.data = self.directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._as(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"])

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as(self, command: list[str]) -> None:
        argv = [str(self.bin / command[0]), *command[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -h 127.0.0.1 -c fsync=off"
        log = str(self.directory / "server.log")
        self._as(["pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._as(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"])

    def start_if_stopped(self) -> None:
        """Make sure the cluster runs again (after a test that stopped it failed midway)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as(["pg_ctl", "-D", str(self.data), "status"])
            return
        self.start()

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class Process(subprocess.Popen):  # type: ignore[type-arg]
    """A child process whose stdout and stderr go to temporary files (a full pipe would block
    it); ``out`` and ``err`` hold them once it has ended."""

    def __init__(self, argv: list[str], **kwargs: Any) -> None:
        self._files = [tempfile.TemporaryFile() for _ in range(2)]  # noqa: SIM115 - see _collect
        kwargs.setdefault("stdout", self._files[0])
        kwargs.setdefault("stderr", self._files[1])
        super().__init__(argv, **kwargs)
        self.out = self.err = ""

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process (unless ``sig`` is None) if it is alive, wait for it, keep its
        output; returns its exit code."""
        if sig is not None and self.poll() is None:
            self.send_signal(sig)
        code = self.wait(timeout=timeout)
        if not self._files[0].closed:
            self.out, self.err = (self._collect(f) for f in self._files)
        return code

    def wait_for(self, text: str, timeout: float = 30) -> None:
        """Wait until ``text`` appears in the process's stderr (or it exits)."""
        deadline = time.monotonic() + timeout
        handle = self._files[1]
        while self.poll() is None and time.monotonic() < deadline:
            handle.seek(0)
            if text in handle.read().decode(errors="replace"):
                return
            time.sleep(0.02)
        handle.seek(0, 2)

    @staticmethod
    def _collect(handle: Any) -> str:
        handle.seek(0)
        text = handle.read().decode(errors="replace")
        handle.close()
        return text


def python(code: str, *args: str, **kwargs: Any) -> Process:
    """Start ``python -c CODE ARGS...`` with this interpreter."""
    return Process([sys.executable, "-c", code, *args], **kwargs)


def collector(*args: str, **kwargs: Any) -> Process:
    """Start ``collector ARGS...`` as its own process."""
    return python("import sys; from collector.cli import main; sys.exit(main())", *args, **kwargs)


def producer(
    url: str, queue: str, prefix: str, count: int, *, pause: float = 0.0, **kwargs: Any
) -> Process:
    """Start a producer emitting ``count`` records keyed ``{prefix}-{i}`` to ``queue``."""
    argv = [sys.executable, str(PRODUCER), url, queue, prefix, str(count), str(pause)]
    return Process(argv, **kwargs)


def stored_ids(db_url: str, table: str = "results") -> list[str]:
    """Every ``_id`` in ``table`` (a list, so duplicates would show)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return []
            return list(conn.scalars(sa.text(f"SELECT _id FROM {table}")))  # noqa: S608
    finally:
        engine.dispose()


def start_collector(
    redis_url: str, db_url: str, queue: str, consumer: str = "c1", *extra: str
) -> Process:
    """A ``collector run`` with small batches and waits, so faults land between many batches;
    returns once it runs (its signal handlers are in place: a SIGTERM then means a clean stop)."""
    proc = collector(
        "run", "--redis-url", redis_url, "--db-url", db_url, "--queue", queue,
        "--consumer", consumer, "--batch-size", "200", "--max-wait", "0.1", *extra,
    )  # fmt: skip
    proc.wait_for("collector started")
    if os.environ.get("COLLECTOR_PIPELINE") == "1":
        writer_pid(proc)  # the mode the test asked for is the mode that runs
    return proc


def writer_pid(proc: Process) -> int:
    """The pid of a pipelined collector's writer process (its one child)."""
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as children:
        (pid,) = map(int, children.read().split())
    return pid


def gone(pid: int) -> bool:
    """True once process ``pid`` has ended (a zombie waiting to be reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def drained(client: redis.Redis, queue: str) -> bool:
    """True when the stream holds nothing: every entry stored (or dead-lettered) and acked."""
    try:
        return client.xlen(queue) == 0 and client.xpending(queue, "collector")["pending"] == 0
    except redis.ResponseError:  # no group yet
        return False


def wait_for_rows(db_url: str, expected: set[str], timeout: float) -> None:
    """Wait until ``expected`` ids are all stored; then assert exactly those, each once."""
    wait_until(lambda: len(stored_ids(db_url)) >= len(expected), timeout, "all rows", every=0.2)
    ids = stored_ids(db_url)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
