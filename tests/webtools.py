"""Helpers for the status page tests: a free port, ``collector web`` as its own process, and
whether a screenshot shows a page (the ``browser`` fixture is in conftest)."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import wait_until
from workers.record import Record


def dead_letters(client: Any, queue: str, n: int) -> None:
    """``n`` dead letters, the i-th with reason ``reason NN`` and a record for table ``tNN``."""
    for i in range(n):
        raw = Record(f"id{i}", f"t{i:02d}", {"x": i}, 1.0).encode()
        client.xadd(f"{queue}:dead", {"m": raw, "reason": f"reason {i:02d}", "ts": "1000"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Status code and body of a GET, error statuses included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def start_web(redis_url: str, db_url: str, queue: str, *extra: str) -> tuple[subprocess.Popen, str]:
    """``collector web`` on a free loopback port, refreshing every 0.5 s; returns the process
    and its base URL once it answers."""
    port = free_port()
    args = [sys.executable, "-m", "collector", "web", "--redis-url", redis_url, "--db-url",
            db_url, "--queue", queue, "--port", str(port), "--refresh", "0.5", *extra]  # fmt: skip
    log_path = Path(f"web-{port}.log").absolute()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, stderr=log, stdout=log)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.poll() is None, log_path.read_text()
        try:
            http_get(base + "/static/page.css")
        except OSError:
            return False
        return True

    wait_until(answers, timeout=30)
    return proc, base


def stop_web(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(20)


def not_blank(png: Path) -> bool:
    """True when the screenshot holds a drawn page: many colours, not one flat background."""
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    most = max(count for count, _colour in colours)
    total = sum(count for count, _colour in colours)
    return len(colours) > 50 and most < 0.97 * total
