"""``collector emit``: results from jobs that are not Python (Fortran, C, a shell script).

One record from ``k=v`` arguments, or one record per JSON line on stdin. A bad line is reported
with its number on stderr and skipped; the good lines are still sent, and the exit is non-zero.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, Any

import click

from collector.cli.options import emitting_redis_options
from collector.cli.values import parse_value
from collector.errors import CommandFailed
from workers.emitter import Emitter
from workers.errors import EncodeError
from workers.record import IDENTIFIER, META_KEYS, is_identifier

BATCH = 1000


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot be a column name, or None if it can."""
    if is_identifier(key) or key in META_KEYS:
        return None
    return f"bad column name {key!r}: must match {IDENTIFIER.pattern}"


def parse_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """``k=v`` arguments as one record; a usage error names the first bad one."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="PAIRS")
        if problem := key_problem(key):
            raise click.BadParameter(problem, param_hint="PAIRS")
        if key in data:
            raise click.BadParameter(f"key {key!r} given twice", param_hint="PAIRS")
        data[key] = parse_value(value)
    return data


def parse_line(line: str) -> dict[str, Any]:
    """One JSON line as a record; ValueError says what is wrong with it."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    for key in data:
        if problem := key_problem(key):
            raise ValueError(problem)
    return data


def emit_lines(emitter: Emitter, table: str, stream: IO[str]) -> tuple[int, int]:
    """Send every good line of ``stream``, a pipelined batch at a time; (sent, bad) counts."""
    sent = bad = 0
    numbered: Iterator[tuple[int, str]] = enumerate(stream, start=1)
    while batch := list(islice(numbered, BATCH)):
        records = []
        for number, line in batch:
            if not line.strip():
                continue
            try:
                data = parse_line(line)
                emitter.record(data, table=table).encode()
            except (ValueError, EncodeError) as exc:
                bad += 1
                click.echo(f"line {number}: {exc}", err=True)
                continue
            records.append(data)
        sent += len(emitter.emit_many(records, table=table)) if records else 0
    return sent, bad


@click.command()
@emitting_redis_options
@click.option("-t", "--table", required=True, help="Table the records go to.")
@click.option("--key", default=None, help="Record id for a k=v record (a repeat is one row).")
@click.argument("pairs", nargs=-1, metavar="[KEY=VALUE]...")
def emit(redis_url: str, queue: str, table: str, key: str | None, pairs: tuple[str, ...]) -> None:
    """Send one record from KEY=VALUE pairs, or one per JSON line on stdin.

    Values become int, float, true/false, or else stay text. With JSON lines, a bad line is
    reported on stderr with its number and skipped; the rest are sent and the exit code is 1.

    \b
    Examples:
      collector emit --table data input_I=0.5 input_J=2 result_K=1.25
      printf '{"I": 1, "K": 2.5}\\n{"I": 2, "K": 3.0}\\n' | collector emit --table data
    """
    if not is_identifier(table):
        raise click.BadParameter(f"{table!r} must match {IDENTIFIER.pattern}", param_hint="--table")
    emitter = Emitter(redis_url, queue)
    try:
        if pairs:
            data = parse_pairs(pairs)
            click.echo(emitter.emit(data, table=table, key=key))
            return
        if key is not None:
            raise click.UsageError("--key names one record: give it with KEY=VALUE pairs")
        stdin = sys.stdin
        if stdin.isatty():
            raise click.UsageError("give KEY=VALUE pairs, or JSON lines on stdin")
        sent, bad = emit_lines(emitter, table, stdin)
    finally:
        emitter.close()
    click.echo(f"sent {sent} records to table {table} on {queue}", err=True)
    if bad:
        raise CommandFailed(f"{bad} bad line(s) skipped")
