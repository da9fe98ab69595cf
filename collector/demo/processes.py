"""The demo's child processes (collector run, rq worker, redis-server): started with their output
in a log file, stopped politely (SIGTERM, then SIGKILL) when the demo ends however it ends."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from collector.errors import CommandFailed


def start(
    stack: ExitStack, cmd: list[str], log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with its output in ``log``; stopped when ``stack`` closes."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    stack.callback(stop, proc)
    return proc


def tool(name: str) -> str:
    """A console script of this environment (collector, rq), else from the PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise CommandFailed(f"{name} not found: install the package (pip install -e .)")
    return found


def tail(log: Path, lines: int = 5) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return "\n".join(text[-lines:])


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()
