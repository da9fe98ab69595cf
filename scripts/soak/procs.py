"""Child processes of the soak: each in its own session (a stray Ctrl-C reaches only the soak),
killed by the kernel if the soak itself dies (PR_SET_PDEATHSIG), its output in a log file, and
every one of them ended by ``Children.end_all`` on the way out, whatever happened."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    """One child process, its output appended to ``log``; ``stdin``, when given, is all it reads
    on its standard input (how it gets URLs, which may hold passwords: never argv or env)."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 stdin: str | None = None) -> None:  # fmt: skip
        self.argv, self.log = argv, log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        if stdin is not None:
            assert self.proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # it died at once: its log says why
                self.proc.stdin.write(stdin.encode())
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if the process still runs; whether it was sent."""
        if not self.alive():
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
            return True
        return False

    def wait(self, timeout: float) -> int | None:
        """The exit code once it ended within ``timeout`` seconds, else None."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def end(self, timeout: float = 10.0) -> int:
        """SIGCONT (it may be stopped), SIGTERM, then SIGKILL after ``timeout``: it is gone."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        code = self.wait(timeout)
        if code is None:
            self.signal(signal.SIGKILL)
            code = self.proc.wait()
        return code

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def log_tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:]) or "(no output)"


class Children:
    """Every child the soak started, so that all of them end on the way out. All are started
    from one thread that lives as long as the soak: PR_SET_PDEATHSIG fires when the *thread*
    that forked a child ends, and faults run in threads of their own."""

    def __init__(self) -> None:
        self.all: list[Child] = []
        self.spawner = ThreadPoolExecutor(1, thread_name_prefix="spawner")

    def start(self, argv: list[str], log: Path, env: dict[str, str] | None = None,
              stdin: str | None = None) -> Child:  # fmt: skip
        child = self.spawner.submit(Child, argv, log, env, stdin).result()
        self.all.append(child)
        return child

    def end_all(self) -> None:
        for child in self.all:
            child.signal(signal.SIGCONT)
            child.signal(signal.SIGKILL)
        for child in self.all:
            child.proc.wait()
        self.spawner.shutdown()


def wait_until(check: object, timeout: float, every: float = 0.05) -> bool:
    """Poll ``check()`` until true or ``timeout`` seconds passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
