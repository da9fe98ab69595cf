"""The connection file ``collector serve`` writes, and how emitters and commands find Redis with it.

``<COLLECTOR_CONFIG_DIR or ~/.config/result-collector>/<name>.json`` (mode 0600: it holds the
password and the server's id) names a running server. When COLLECTOR_REDIS_URL is unset, the file
named by COLLECTOR_SERVER (else ``default``) gives the URL and the queue (and, to the commands that
read results, the absolute database URL), so a job on any node that shares the home directory
needs no configuration.

Without a file there are two cases. No config directory: this user never ran ``collector serve``,
and the default URL (a Redis of their own on localhost) is meant. A config directory but no file:
serve is not up yet (a job started before it, or while it restarts), so nothing may be sent to
whatever listens on localhost: ``Found.missing`` names the file, emitters retry, then spool, and
commands fail in one line. This module is read on compute nodes: JSON and the standard library
only (workers.identity checks that the server answering is the one a file names).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_SERVER = "default"
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def config_dir() -> Path:
    """Where connection files live: COLLECTOR_CONFIG_DIR, else ~/.config/result-collector."""
    explicit = os.environ.get("COLLECTOR_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.path.expanduser("~")) / ".config" / "result-collector"


def check_name(name: str) -> str:
    """``name`` itself if it can name a server (it becomes a file name); ValueError otherwise."""
    if not NAME_RULE.match(name):
        raise ValueError(f"server name must match {NAME_RULE.pattern}, got {name!r}")
    return name


def server_name() -> str:
    """The server jobs look for: COLLECTOR_SERVER, else ``default``."""
    return check_name(os.environ.get("COLLECTOR_SERVER") or DEFAULT_SERVER)


def connection_file(name: str | None = None) -> Path:
    """The connection file of server ``name`` (default: ``server_name()``)."""
    return config_dir() / f"{check_name(name or server_name())}.json"


def check_private(directory: Path) -> None:
    """ValueError unless ``directory`` (when it exists) is this user's and no one else can write
    to it: whoever can could put a connection file there naming their own server, server id
    and all, or a link where serve writes its own."""
    try:
        info = directory.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"cannot read the connection file's folder {directory}: {exc}") from None
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ValueError(
            f"{directory} can be written by other users, who could replace the connection files "
            f"in it: make it yours alone (chmod 700 {directory}) or pick another "
            "COLLECTOR_CONFIG_DIR"
        )


@dataclass(frozen=True)
class ServerInfo:
    """What a connection file holds; ``repr`` leaves out ``url`` (it holds the password)."""

    name: str
    url: str = field(repr=False)  # with the password: what jobs connect to
    host: str  # the address in ``url``, as the compute nodes reach it
    port: int
    pid: int  # of ``collector serve``
    hostname: str  # the machine ``collector serve`` runs on
    started: str  # ISO 8601, UTC
    queue: str
    slurm_job_id: str | None = None
    server_id: str | None = field(default=None, repr=False)  # known to the server, see identity
    db_url: str | None = field(default=None, repr=False)  # absolute; may hold a password

    @classmethod
    def read(cls, path: Path) -> ServerInfo | None:
        """The file's contents, None when there is no file; ValueError naming the file when it
        cannot be read, is not a connection file, or is in a folder others can write."""
        check_private(path.parent)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValueError(f"cannot read the connection file {path}: {exc}") from None
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (ValueError, TypeError, KeyError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise ValueError(f"{path} is not a collector serve connection file ({why})") from None

    def write(self, path: Path) -> None:
        """Write the file atomically with mode 0600 (its directory 0700): a reader sees the old
        file or the whole new one, and no other user can read the password."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)  # left by a write that died; never followed if a link
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(asdict(self), handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class Found:
    """Where Redis is, by the rule above: ``file`` is set when the URL came from a connection
    file (errors name it), ``queue`` is the file's queue or None, ``server_id`` what the server
    must prove it knows, ``db_url`` the database that server writes into. ``url`` None: the
    caller's default, unless ``missing`` names the file that is not there yet."""

    url: str | None
    queue: str | None = None
    file: Path | None = None
    server_id: str | None = field(default=None, repr=False)
    missing: Path | None = None
    db_url: str | None = field(default=None, repr=False)

    @property
    def from_file(self) -> bool:
        """True when a connection file decides where Redis is (present or awaited)."""
        return self.file is not None or self.missing is not None


def find_server(redis_url: str | None = None) -> Found:
    """``redis_url`` if given, else COLLECTOR_REDIS_URL if set (neither reads a file); else the
    connection file if there is one; else Found(None), with ``missing`` set when a config
    directory exists. ValueError for a bad COLLECTOR_SERVER or an unreadable file."""
    url = redis_url or os.environ.get("COLLECTOR_REDIS_URL")
    if url:
        return Found(url)
    path = connection_file()
    check_private(path.parent)  # also when no file is there yet: one may appear
    info = ServerInfo.read(path)
    if info is None:
        return Found(None, missing=path if path.parent.is_dir() else None)
    return Found(info.url, info.queue, path, info.server_id, db_url=info.db_url)
