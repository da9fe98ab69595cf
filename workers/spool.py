"""The local spool: where an emitter keeps records Redis could not take, until they are re-sent.

One append-only file per process in the spool directory. Each record is one frame::

    b"RCS1" | body length (4 bytes, big endian) | CRC-32 of body (4 bytes) | body

and the body is the msgpack array ``[queue, record bytes]``. A frame whose length or checksum
does not hold (a torn last write, a damaged block) is skipped, and reading resumes at the next
magic marker; the file as it was is kept aside (``<name>.damaged``) before the intact records
leave it, never deleted. Any payload the emitter sends fits in a frame (MAX_BODY is above
entry.MAX_PAYLOAD_BYTES), so no frame written is one read as damage. Every append is fsync'd
before ``append`` returns. Writers and flushers take an
exclusive ``flock`` on the file, so a flush never deletes a record appended while it ran.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import msgpack

from workers.entry import MAX_PAYLOAD_BYTES, records_in
from workers.errors import ConfigError, EmitError
from workers.jobinfo import host_name
from workers.private import check_private

log = logging.getLogger(__name__)

MAGIC = b"RCS1"
HEADER = struct.Struct(">4sII")
MAX_BODY = MAX_PAYLOAD_BYTES + (1 << 20)  # any payload and its queue name; beyond is damage
ASIDE = ".damaged"  # a spool file with damage, kept as it was (not SUFFIX: never re-read)
SUFFIX = ".spool"
SEND_CHUNK = 1000

# send(queue, payloads) puts the payloads on the queue or raises (redis.RedisError, OSError, ...)
Send = Callable[[str, list[bytes]], None]


def frame(queue: str, payload: bytes) -> bytes:
    """One framed spool entry for ``payload`` bound for ``queue``; ValueError for one larger
    than MAX_BODY (which the emitter never sends), rather than a frame read back as damage."""
    body = msgpack.packb([queue, payload], use_bin_type=True)
    if len(body) > MAX_BODY:
        raise ValueError(f"a spool frame of {len(body)} bytes exceeds {MAX_BODY}")
    return HEADER.pack(MAGIC, len(body), zlib.crc32(body)) + body


def parse(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """The intact (queue, payload) entries in ``data`` and how many damaged spans were skipped."""
    entries: list[tuple[str, bytes]] = []
    skipped, pos = 0, 0
    while pos < len(data):
        if data.startswith(MAGIC, pos) and pos + HEADER.size <= len(data):
            _, length, crc = HEADER.unpack_from(data, pos)
            body = data[pos + HEADER.size : pos + HEADER.size + length]
            if length <= MAX_BODY and len(body) == length and zlib.crc32(body) == crc:
                entry = _unpack(body)
                if entry is not None:
                    entries.append(entry)
                    pos += HEADER.size + length
                    continue
        skipped += 1
        found = data.find(MAGIC, pos + 1)
        pos = found if found >= 0 else len(data)
    return entries, skipped


def _unpack(body: bytes) -> tuple[str, bytes] | None:
    try:
        queue, payload = msgpack.unpackb(body, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if isinstance(queue, str) and isinstance(payload, bytes):
        return queue, payload
    return None


@dataclass
class FlushResult:
    """What a flush did: records sent, records left in the spool, damaged spans skipped (and
    the files kept aside with them)."""

    sent: int = 0
    left: int = 0
    skipped: int = 0
    aside: list[Path] = field(default_factory=list)

    def __iadd__(self, other: FlushResult) -> FlushResult:
        self.sent += other.sent
        self.left += other.left
        self.skipped += other.skipped
        self.aside += other.aside
        return self


class Spool:
    """A spool directory; this process appends to its own file in it, anyone may flush it."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._path: Path | None = None
        self._pid = 0

    @property
    def path(self) -> Path:
        """This process's spool file (a new name after a fork, so a child never shares it)."""
        if self._path is None or self._pid != os.getpid():
            self._pid = os.getpid()
            token = os.urandom(4).hex()
            self._path = self.directory / f"{host_name()}-{self._pid}-{token}{SUFFIX}"
        return self._path

    def append(self, queue: str, payloads: list[bytes]) -> Path:
        """Write ``payloads`` durably (fsync'd) to this process's file; EmitError if impossible."""
        try:
            data = b"".join(frame(queue, p) for p in payloads)
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            check_private(self.directory, follow=True)  # its owner could lose or forge records
            created = not self.path.exists()
            with _locked(self.path, create=True) as handle:
                assert handle is not None
                handle.seek(0, os.SEEK_END)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if created:
                _fsync_dir(self.directory)
        except (OSError, ValueError, ConfigError) as exc:
            raise EmitError(
                f"Redis is unreachable and the spool {self.directory} cannot be written ({exc}); "
                f"{sum(map(records_in, payloads))} record(s) not kept"
            ) from exc
        return self.path

    def files(self) -> list[Path]:
        """Every spool file in the directory (any process's), oldest name first."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX))

    def flush(self, send: Send, paths: list[Path] | None = None) -> FlushResult:
        """Re-send the records of ``paths`` (default: every file) and remove what was delivered.

        Stops at the first failed send and keeps the rest; ``send``'s error propagates.
        """
        total = FlushResult()
        for path in self.files() if paths is None else paths:
            total += flush_file(path, send)
        return total


def flush_file(path: Path, send: Send) -> FlushResult:
    """Send ``path``'s records in order, in chunks; delete the file once all are delivered."""
    result = FlushResult()
    with _locked(path, create=False) as handle:
        if handle is None:
            return result  # flushed and removed by someone else meanwhile
        data = handle.read()
        entries, result.skipped = parse(data)
        if result.skipped:
            result.aside.append(keep_aside(path, data))
            log.warning(
                "spool %s: %d damaged span(s); the file as it was is kept in %s, its %d intact "
                "entries are re-sent",
                path, result.skipped, result.aside[-1], len(entries),
            )  # fmt: skip
        done = 0
        try:
            for start in range(0, len(entries), SEND_CHUNK):
                chunk = entries[start : start + SEND_CHUNK]
                for queue, group in _by_queue(chunk):
                    send(queue, group)
                done = start + len(chunk)
        finally:
            counts = [records_in(payload) for _queue, payload in entries]
            result.sent, result.left = sum(counts[:done]), sum(counts[done:])
            if done or result.skipped or not entries:
                _keep_only(path, entries[done:])
    return result


def keep_aside(path: Path, data: bytes) -> Path:
    """Write ``data`` (a spool file with damage) durably to a new ``<path>.damaged[.N]``."""
    aside = path.with_name(path.name + ASIDE)
    n = 0
    while True:
        try:
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            n += 1
            aside = path.with_name(f"{path.name}{ASIDE}.{n}")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    _fsync_dir(path.parent)
    return aside


def _by_queue(entries: list[tuple[str, bytes]]) -> Iterator[tuple[str, list[bytes]]]:
    """Consecutive runs of one queue, in order."""
    run: list[bytes] = []
    current = None
    for queue, payload in entries:
        if queue != current and run:
            yield current, run  # type: ignore[misc]
            run = []
        current = queue
        run.append(payload)
    if run:
        yield current, run  # type: ignore[misc]


def _keep_only(path: Path, entries: list[tuple[str, bytes]]) -> None:
    """Replace ``path`` by just ``entries`` (atomically), or remove it when none are left.

    Called with ``path`` locked; an appender that then gets the lock sees the old file is gone
    or replaced and reopens by name.
    """
    if not entries:
        path.unlink()
        _fsync_dir(path.parent)
        return
    tmp = path.with_name(path.name + ".tmp")
    with suppress(FileNotFoundError):
        tmp.unlink()  # left by a crash; we hold the lock, so no one else writes it now
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(tmp, flags, 0o600), "wb") as out:  # never a link, never the umask
        out.write(b"".join(frame(q, p) for q, p in entries))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@contextmanager
def _locked(path: Path, *, create: bool) -> Iterator[BinaryIO | None]:
    """``path`` opened read/write under an exclusive flock, making sure the file locked is still
    the one under that name (a flush may have replaced or removed it meanwhile). Yields None
    when the file does not exist and ``create`` is false."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            if create:
                raise
            yield None
            return
        handle = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            handle.close()
            raise
        if same:
            break
        handle.close()  # replaced or removed under us: open the name again
    with handle:
        try:
            yield handle
        finally:
            # unlock explicitly: a child forked meanwhile shares this open file description, and
            # closing only our descriptor would keep the file locked until that child exits
            fcntl.flock(fd, fcntl.LOCK_UN)


def _fsync_dir(directory: Path) -> None:
    """Make a file's creation, rename or removal in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
