"""The checker: receipts against rows and dead letters.

Every ``ok`` record is stored exactly once with exactly its values (an int read back as the equal
float once its column widened), or, being poison, dead-lettered with a reason. Under a reused key
the row holds the first emitted record that was not refused, a success before any failure (a
success replaces a failure). No row whose id nobody sent; ``info`` records (the producer died in
the call) at most once; ``fail`` records (the call raised) never. An ``ok`` record missing
where Redis may have lost it by its fsync policy (a canary loss window) is counted apart.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from scripts.soak.canary import Window
from scripts.soak.receipts import FAIL, OK, Sent

ERROR_TAG = re.compile(r"\[([^\]]+)\]$")
SET_BY_COLLECTOR = ("_id", "_ts", "_host", "_pid", "_job", "_elapsed", "_maxrss")
Rows = dict[str, tuple[dict[str, str], list[dict[str, Any]]]]  # table -> (kinds, rows)


@dataclass
class Result:
    findings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    counts: Counter[str] = field(default_factory=Counter)
    fsync_lost: list[str] = field(default_factory=list)

    def add(self, category: str, text: str) -> None:
        self.findings[category].append(text)
        self.counts[category] += 1


def row_tag(row: dict[str, Any]) -> str | None:
    """Which sent record a row holds: its ``tag``, or for a failed job the tag in ``_error``."""
    if row.get("tag"):
        return str(row["tag"])
    found = ERROR_TAG.search(str(row.get("_error") or ""))
    return found.group(1) if found else None


def same(expected: Any, stored: Any, kind: str) -> bool:
    """Exactly equal, types and the sign of zero included; an int equals its float in a float
    column."""
    if isinstance(expected, bool) or isinstance(stored, bool):
        return type(stored) is type(expected) and stored == expected
    if isinstance(expected, int):
        wanted = float if kind == "float" else int
        return type(stored) is wanted and stored == expected
    if isinstance(expected, bytes):
        return isinstance(stored, bytes | memoryview) and bytes(stored) == expected
    if isinstance(expected, list):
        return isinstance(stored, list) and len(stored) == len(expected) and all(
            same(e, s, "json") for e, s in zip(expected, stored, strict=True))  # fmt: skip
    if isinstance(expected, dict):
        return isinstance(stored, dict) and stored.keys() == expected.keys() and all(
            same(v, stored[k], "json") for k, v in expected.items())  # fmt: skip
    if isinstance(expected, float):  # the sign of a zero too: -0.0 stored as 0.0 is altered
        return type(stored) is float and stored == expected and (
            math.copysign(1.0, stored) == math.copysign(1.0, expected))  # fmt: skip
    if expected is None:
        return stored is None
    return type(stored) is type(expected) and stored == expected


def differences(rec: Sent, row: dict[str, Any], kinds: dict[str, str]) -> list[tuple[str, str]]:
    """How ``row`` differs from ``rec``, column by column: (category, text)."""
    out = []
    if row.get("_pid") != rec.pid:
        out.append(("wrong value", f"_pid {row.get('_pid')!r} != {rec.pid}"))
    for col, kind in kinds.items():
        if col in SET_BY_COLLECTOR:
            continue
        null, value = row[f"{col}!null"], row[col]
        if col not in rec.data or rec.data[col] is None:
            if not null:
                why = "JSON null" if value is None else repr(value)[:60]
                out.append((f"{why} stored for a missing value", f"{col} ({kind})"))
        elif null:
            out.append(("value dropped (NULL stored)", f"{col} ({kind}): sent "
                        f"{repr(rec.data[col])[:60]}"))  # fmt: skip
        elif not same(rec.data[col], value, kind):
            out.append(("wrong value", f"{col} ({kind}): {repr(value)[:60]} != sent "
                        f"{repr(rec.data[col])[:60]}"))  # fmt: skip
    out += [("column missing", col) for col in rec.data if col not in kinds]
    return out


class Checker:
    def __init__(self, sent: list[Sent], windows: list[Window],
                 outages: list[tuple[float, float]],
                 refusal: Callable[[dict[str, Any]], str | None] | None = None,
                 ) -> None:  # fmt: skip
        """``refusal``: why the database refuses a record the workload sent as good (the
        record is then poison: it must be dead-lettered with a reason)."""
        if refusal is not None:
            sent = [s if s.poison else replace(s, poison=refusal(s.data)) for s in sent]
        self.sent, self.windows, self.outages = sent, windows, outages
        self.calls: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
        for s in sent:
            self.calls[(s.slot, s.life)].append((s.before, s.after or s.before))

    def fsync_may_lose(self, rec: Sent) -> bool:
        """Whether Redis may have lost ``rec`` by its fsync policy: its call (or, if it may
        have been spooled during an outage, a later call of its process re-sending the spool)
        ran within a canary loss window."""
        end = rec.after or rec.before
        for w in self.windows:
            if w.overlaps(rec.before, end):
                return True
            spooled = any(a < end and b > rec.before for a, b in self.outages)
            if spooled and any(w.overlaps(a, b) for a, b in self.calls[(rec.slot, rec.life)]
                               if a >= rec.before):  # fmt: skip
                return True
        return False

    def during_outage(self, rec: Sent) -> str:
        """A note for a record whose call overlapped a Redis outage (it may have been spooled and
        re-sent after later records): the likeliest way it arrived late."""
        end = rec.after or rec.before
        if any(a < end and b > rec.before for a, b in self.outages):
            return " (sent during a Redis outage: spooled, re-sent after later records?)"
        return ""

    def run(self, tables: Rows, dead: list[tuple[str, str | None, str]]) -> Result:
        """Every finding, and the counts of the summary line."""
        res = Result()
        self.groups: dict[tuple[str, str], list[Sent]] = defaultdict(list)
        self.by_tag: dict[str, Sent] = {}
        for s in self.sent:
            self.by_tag[s.tag] = s
            if s.id is not None:
                self.groups[(s.table, s.id)].append(s)
        res.counts["emitted"] = sum(s.status == OK for s in self.sent)
        stored = self._rows(res, tables)
        dead_tags = {tag for _rid, tag, _reason in dead if tag}  # no reason: _dead's finding
        for (table, rid), group in self.groups.items():
            kinds = tables[table][0] if table in tables else {}
            self._group(res, table, rid, group, stored.get((table, rid)), kinds, dead_tags)
        self._dead(res, dead)
        return res

    def _rows(self, res: Result, tables: Rows) -> dict[tuple[str, str], dict[str, Any]]:
        """The rows by (table, id); duplicates and rows no receipt names are findings."""
        stored: dict[tuple[str, str], dict[str, Any]] = {}
        ids, tags = Counter[str](), Counter[str]()
        for table, (kinds, rows) in tables.items():
            for row in rows:
                ids[row["_id"]] += 1
                tag = row_tag(row)
                tags[tag or ""] += 1
                key = (table, row["_id"])
                if key not in self.groups:
                    self._stray(res, table, row, tag, kinds)
                stored[key] = row
        res.counts["dup"] = 0
        for rid, n in ids.items():
            if n > 1:
                res.add("dup", f"id {rid} stored {n} times")
        for tag, n in tags.items():
            if tag and n > 1:
                res.add("dup", f"record {tag} stored {n} times")
        return stored

    def _dead(self, res: Result, dead: list[tuple[str, str | None, str]]) -> None:
        """Each dead letter must be a poison record's, with a reason."""
        for rid, tag, reason in dead:
            rec = self.by_tag.get(tag or "")
            if rec is None:
                res.add("phantom", f"dead letter {rid} (tag {tag}) sent by nobody: {reason}")
            elif not rec.poison:
                res.add("dead-lettered good record", f"{rec.table}/{rid} ({tag}): {reason}")
            elif not reason:
                res.add("dead letter without a reason", f"{rec.table}/{rid} ({tag})")

    def _stray(self, res: Result, table: str, row: dict[str, Any], tag: str | None,
               kinds: dict[str, str]) -> None:  # fmt: skip
        """A row whose id no receipt names: an ``info`` record whose id its call never returned,
        or a phantom."""
        rec = self.by_tag.get(tag or "")
        if rec is None or rec.id is not None or rec.table != table or rec.status == OK:
            res.add("phantom", f"{table}/{row['_id']} (tag {tag})")
        elif rec.status == FAIL:
            res.add("stored though the call raised", f"{table}/{row['_id']} ({tag})")
        elif rec.poison:
            res.add("poison stored", f"{table}/{row['_id']} ({tag}: {rec.poison})")
        else:
            res.counts["stored"] += 1
            for category, diff in differences(rec, row, kinds):
                res.add(category, f"{table}/{row['_id']} ({tag}) {diff}")

    def _poison(self, res: Result, where: str, order: list[Sent], dead_tags: set[str],
                stored: str | None) -> None:  # fmt: skip
        """Each acknowledged poison record of one id is dead-lettered (one stored instead is
        its own finding)."""
        for s in order:
            if s.poison and s.status == OK and s.tag not in dead_tags and s.tag != stored:
                if self.fsync_may_lose(s):
                    res.fsync_lost.append(f"{where} ({s.tag}, poison)")
                else:
                    res.add("lost", f"{where} ({s.tag}: poison, {s.poison}, not dead-lettered)")
            elif s.poison and s.status == OK:
                res.counts["dead"] += 1

    def _group(self, res: Result, table: str, rid: str, group: list[Sent],
               row: dict[str, Any] | None, kinds: dict[str, str],
               dead_tags: set[str]) -> None:  # fmt: skip
        """One record id: the row it must hold (or none), its poison dead-lettered."""
        order = sorted(group, key=lambda s: (s.life, s.seq))
        where = f"{table}/{rid}"
        tag = row_tag(row) if row is not None else None
        self._poison(res, where, order, dead_tags, tag)
        held = next((s for s in order if s.tag == tag), None)
        if row is not None and (held is None or held.poison or held.status == FAIL):
            if held is not None and held.poison:
                res.add("poison stored", f"{where} holds {tag}: {held.poison}")
            elif held is not None:
                res.add("stored though the call raised", f"{where} holds {tag}")
            else:
                res.add("phantom", f"{where} holds {tag}, which nobody sent under this id")
            return
        good = [s for s in order if not s.poison and s.status != FAIL]
        good.sort(key=lambda s: "_error" in s.data)  # stable: successes first, each in order
        forgiven: list[str] = []
        for s in good:
            if s is held:
                assert row is not None
                res.counts["stored"] += 1
                res.fsync_lost += forgiven
                for category, diff in differences(s, row, kinds):
                    res.add(category, f"{where} ({s.tag}) {diff}")
                return
            if s.status != OK:
                continue  # info: may never have reached Redis
            if self.fsync_may_lose(s):
                forgiven.append(f"{where} ({s.tag})")
                continue
            if row is None:
                res.add("lost", f"{where} ({s.tag})")
            else:
                late = self.during_outage(s)
                res.add("wrong record under key", f"{where} holds {tag}, first emitted not refused "
                        f"is {s.tag}{late}")  # fmt: skip
            return
        res.fsync_lost += forgiven
