"""Which file system holds a SQLite file: a network one (NFS, Lustre, GPFS, BeeGFS, CephFS,
CIFS/SMB, AFS) is where SQLite's locks may not hold and WAL does not work at all (SQLite's own
documentation says so), so the collector says what to do and never uses WAL there.

The probe is ``statfs(2)``'s ``f_type``, the file system's magic number, read through ctypes
(Linux; elsewhere nothing is detected). Tests replace ``probe`` to fake any file system."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Callable

NETWORK = {
    0x6969: "NFS",
    0x0BD00BD0: "Lustre",
    0x47504653: "GPFS",
    0x19830326: "BeeGFS",
    0x00C36400: "CephFS",
    0xFF534D42: "CIFS",
    0xFE534D42: "SMB2",
    0x517B: "SMB",
    0x5346414F: "AFS",
}
ADVICE = (
    "SQLite's locking is unreliable there and WAL does not work: put the database on a local "
    "disk of the collector's host, or use PostgreSQL"
)


def _statfs_type(path: str) -> int | None:
    """``f_type`` of the file system holding ``path`` (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    libc = _libc()
    if libc is None:
        return None
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF  # f_type is the first field


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


probe: Callable[[str], int | None] = _statfs_type  # replaced in tests


def network_fs(path: str) -> str | None:
    """The name of the network file system holding ``path`` (its directory when the file does
    not exist yet), or None for a local one or when nothing can be told."""
    where = path if os.path.exists(path) else os.path.dirname(os.path.abspath(path))
    magic = probe(where)
    return NETWORK.get(magic) if magic is not None else None


def journal_mode(database: str | None) -> str:
    """The SQLite journal mode for the file ``database``: WAL, except on a network file system
    (DELETE: WAL needs shared memory that a network file system cannot share)."""
    return "DELETE" if database and network_fs(database) else "WAL"


def network_warning(path: str) -> str | None:
    """One line for a SQLite file on a network file system, or None."""
    kind = network_fs(path)
    return (
        f"the SQLite file {path} is on a network file system ({kind}): {ADVICE}" if kind else None
    )
