"""Receipts: what each producer was about to send and what the call answered, one JSON line
each, flushed and fsync'd before the process goes on, so that a SIGKILL leaves an exact account.

A file starts with ``{"slot", "life", "pid"}``; then per call a line ``{"n", "at", "call",
"recs": [{"tag", "id", "table", "data", "poison"}]}`` before it, and ``{"n", "at", "ok": ids}``
or ``{"n", "at", "fail": "Type: text"}`` after it. Reading them gives every record with its
outcome: ``ok`` (the call returned), ``fail`` (it raised), ``info`` (the process died inside it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OK, FAIL, INFO = "ok", "fail", "info"


def encode(value: Any) -> Any:
    """JSON for a record value; bytes as ``{"$bytes": hex}`` (the workload sends no such dict)."""
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$bytes"}:
        return bytes.fromhex(value["$bytes"])
    return value


class Writer:
    """Appends receipt lines to one file, each on disk before ``line`` returns."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.handle = path.open("ab")
        self.line(header)

    def line(self, entry: dict[str, Any]) -> None:
        self.handle.write(json.dumps(entry, default=encode).encode() + b"\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


@dataclass
class Sent:
    """One record a producer tried to send, and what became of the call."""

    tag: str
    id: str | None  # None: a fresh id the call was to return (unknown if it never did)
    table: str
    data: dict[str, Any]
    poison: str | None  # why the collector must refuse it, or None
    status: str
    slot: str
    life: int
    pid: int
    seq: int
    before: float
    after: float | None


def read_file(path: Path) -> list[Sent]:
    """Every record of one receipt file; a torn last line (killed mid-write) is ignored."""
    lines = []
    for raw in path.read_bytes().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            break
    if not lines:
        return []
    header = lines[0]
    calls: dict[int, dict[str, Any]] = {}
    answers: dict[int, dict[str, Any]] = {}
    for entry in lines[1:]:
        (calls if "call" in entry else answers)[entry["n"]] = entry
    sent = []
    for n, call in calls.items():
        answer = answers.get(n)
        status = INFO if answer is None else (OK if "ok" in answer else FAIL)
        ids = answer.get("ok", []) if answer else []
        for i, rec in enumerate(call["recs"]):
            rid = rec["id"] or (ids[i] if status == OK else None)
            data = {k: decode(v) for k, v in rec["data"].items()}
            sent.append(
                Sent(rec["tag"], rid, rec["table"], data, rec["poison"], status, header["slot"],
                     header["life"], header["pid"], n, call["at"],
                     answer["at"] if answer else None)
            )  # fmt: skip
    return sent


def read_all(directory: Path) -> list[Sent]:
    """Every record of every receipt file in ``directory``."""
    out: list[Sent] = []
    for path in sorted(directory.glob("*.jsonl")):
        out.extend(read_file(path))
    return out
