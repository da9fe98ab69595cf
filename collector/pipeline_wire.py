"""The frames the reader and the writer of a pipelined collector exchange over their socket pair:
msgpack arrays whose first item names the frame (never pickle, even between our own processes).

reader -> writer   ["start", settings, verbose]   ["batch", seq, records]   ["retry"]   STOP
writer -> reader   ["ready"]   ["error", class name, message]   ["done", seq, added, refused]
                   ["failed", seq, message]

A batch's records travel as the decoded ``Record`` fields, values exactly as decoded: msgpack
carries every value a decoded record holds (aware datetimes as timestamps, arrays as their
extension type), so the writer stores what the single-process collector would have stored.
"""

from __future__ import annotations

import dataclasses
from itertools import repeat
from typing import Any

import msgpack

from collector.settings import Settings
from workers.arrays import EXT_ARRAY, Array
from workers.checks import Limits
from workers.record import Record

STOP = msgpack.packb(["stop"])  # compared as bytes by the writer's receiving thread


def _default(value: Any) -> Any:
    """What strict packing hands back: an array (a bytes subclass) as its extension type, a
    tuple (a refused record's position and reason) as the array msgpack makes of it."""
    if type(value) is Array:
        return msgpack.ExtType(EXT_ARRAY, bytes(value))
    if type(value) is tuple:
        return list(value)
    raise TypeError(f"cannot hand a value of type {type(value).__name__} to the writer")


def _ext(code: int, data: bytes) -> Any:
    """An array's extension value back as the ``Array`` the reader checked."""
    if code != EXT_ARRAY:
        raise ValueError(f"unexpected msgpack extension type {code} in a frame")
    return Array(data)


def pack(frame: list[Any]) -> bytes:
    """One frame's bytes. Exact types only (``strict_types``), so an array is not sent as the
    plain bytes it subclasses."""
    return msgpack.packb(frame, strict_types=True, default=_default, datetime=True)


def unpack(data: bytes) -> list[Any]:
    """A frame from its bytes: timestamps back as aware datetimes, arrays as ``Array``."""
    frame: list[Any] = msgpack.unpackb(
        data, raw=False, timestamp=3, ext_hook=_ext, strict_map_key=False
    )
    return frame


def batch_frame(seq: int, records: list[Record]) -> bytes:
    """The frame handing batch ``seq``'s records to the writer."""
    return pack(["batch", seq, list(map(list, records))])


def records_of(rows: list[list[Any]]) -> list[Record]:
    """The records of a batch frame, as the reader decoded them (checked there)."""
    return list(map(tuple.__new__, repeat(Record), rows))


def settings_frame(settings: Settings, verbose: bool | None) -> bytes:
    """The first frame: the settings (passwords travel here, never in argv or environment) and
    how the writer logs (None: as an embedder left logging, unconfigured)."""
    return pack(["start", dataclasses.asdict(settings), verbose])


def settings_of(fields: dict[str, Any]) -> Settings:
    """Settings from the start frame's map."""
    return Settings(**{**fields, "limits": Limits(**fields["limits"])})
