"""Clearing the status flags a killed SWMR writer leaves in an HDF5 file, as ``h5clear -s``.

HDF5 marks a file open for writing in its superblock; a writer that dies (SIGKILL, power loss)
leaves the mark, and HDF5 then refuses to open the file for writing again. The library has no
public call to clear it, so we rewrite the flags byte of the version 2/3 superblock (the
version SWMR needs), its end-of-file address (a SWMR writer writes it only at close: it
becomes the file's size, as ``h5clear -s -i`` does) and its Jenkins lookup3 checksum. The
caller must know no writer is alive (the collector holds a lock file next to it).
"""

from __future__ import annotations

import os
from pathlib import Path

SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MASK = 0xFFFFFFFF
_FLAGS_AT = 11  # signature (8), version, size of offsets, size of lengths, then the flags


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: HDF5's metadata checksum."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _MASK
        a = ((a - c) & _MASK) ^ _rot(c, 4)
        c = (c + b) & _MASK
        b = ((b - a) & _MASK) ^ _rot(a, 6)
        a = (a + c) & _MASK
        c = ((c - b) & _MASK) ^ _rot(b, 8)
        b = (b + a) & _MASK
        a = ((a - c) & _MASK) ^ _rot(c, 16)
        c = (c + b) & _MASK
        b = ((b - a) & _MASK) ^ _rot(a, 19)
        a = (a + c) & _MASK
        c = ((c - b) & _MASK) ^ _rot(b, 4)
        b = (b + a) & _MASK
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    c = ((c ^ b) - _rot(b, 14)) & _MASK
    a = ((a ^ c) - _rot(c, 11)) & _MASK
    b = ((b ^ a) - _rot(a, 25)) & _MASK
    c = ((c ^ b) - _rot(b, 16)) & _MASK
    a = ((a ^ c) - _rot(c, 4)) & _MASK
    b = ((b ^ a) - _rot(a, 14)) & _MASK
    c = ((c ^ b) - _rot(b, 24)) & _MASK
    return c


def clear_status_flags(path: Path) -> bool:
    """Clear the file's status flags if set; returns whether they were. ValueError for a file
    that is not HDF5 with a version 2 or 3 superblock at its start (its checksum checked)."""
    with open(path, "r+b") as fh:
        head = fh.read(12)
        if not head.startswith(SIGNATURE) or len(head) < 12 or head[8] not in (2, 3):
            raise ValueError(f"{path}: not an HDF5 file with a version 2 or 3 superblock")
        size = 12 + 4 * head[9]  # base, extension, end-of-file and root addresses
        block = head + fh.read(size - 12 + 4)
        if len(block) != size + 4 or lookup3(block[:size]) != int.from_bytes(
            block[size:], "little"
        ):
            raise ValueError(f"{path}: the HDF5 superblock's checksum does not match")
        if block[_FLAGS_AT] == 0:
            return False
        width = head[9]  # base address, extension address, then the end-of-file address
        at = 12 + 2 * width
        eof = max(int.from_bytes(block[at : at + width], "little"), os.fstat(fh.fileno()).st_size)
        fixed = b"".join((
            block[:_FLAGS_AT], b"\x00", block[_FLAGS_AT + 1 : at],
            eof.to_bytes(width, "little"), block[at + width : size],
        ))  # fmt: skip
        fh.seek(0)
        fh.write(fixed + lookup3(fixed).to_bytes(4, "little"))
        fh.flush()
        os.fsync(fh.fileno())
    return True
