"""The frames the reader and the writer of a pipelined collector exchange over their socket pair:
msgpack arrays whose first item names the frame (never pickle, even between our own processes).

reader -> writer   ["start", settings, verbose]   ["batch", seq, ids, raws]   ["retry"]   STOP
writer -> reader   ["ready"]   ["error", class name, message]
                   ["done", seq, added, taken, decoded, refused]   ["failed", seq, message]

A batch travels as its stream entries' ids and record bytes, exactly as read from Redis, not yet
decoded: the writer decodes and checks them (collector.batch), so the two processes share the
work per record about evenly. ``done`` says how many rows the commit added, how many records and
dead letters the entries held (``taken``), and the dead letters (entry id, record bytes, reason)
decoding made and those the database refused, for the reader to write before it acknowledges
the batch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack

from collector.entries import DeadEntry
from collector.settings import Settings
from workers.checks import Limits

STOP = msgpack.packb(["stop"])  # compared as bytes by the writer's receiving thread


def pack(frame: list[Any]) -> bytes:
    """One frame's bytes (a tuple travels as the array it is read back as)."""
    return msgpack.packb(frame)


def unpack(data: bytes) -> list[Any]:
    """A frame from its bytes (strings as str, record bytes and entry ids as bytes)."""
    frame: list[Any] = msgpack.unpackb(data, raw=False)
    return frame


def batch_frame(seq: int, ids: list[bytes], raws: list[bytes]) -> bytes:
    """The frame handing batch ``seq``'s entries to the writer: their ids and record bytes."""
    return pack(["batch", seq, ids, raws])


def dead_of(rows: list[list[Any]]) -> list[DeadEntry]:
    """The dead letters of a ``done`` frame, as the batch holds them."""
    return [(entry_id, raw, reason) for entry_id, raw, reason in rows]


def settings_frame(settings: Settings, verbose: bool | None) -> bytes:
    """The first frame: the settings (passwords travel here, never in argv or environment) and
    how the writer logs (None: as an embedder left logging, unconfigured)."""
    return pack(["start", dataclasses.asdict(settings), verbose])


def settings_of(fields: dict[str, Any]) -> Settings:
    """Settings from the start frame's map."""
    return Settings(**{**fields, "limits": Limits(**fields["limits"])})
