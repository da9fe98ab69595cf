"""``collector emit``: results from jobs that are not Python (Fortran, C, a shell script).

One record from ``k=v`` arguments, or one record per JSON line on stdin. A bad line (not UTF-8,
not JSON, nested too deep to read, a number no column holds, longer than MAX_LINE_BYTES) is
reported with its number on stderr and skipped; the good lines are still sent, and the exit is
non-zero.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

import click

from collector.cli.options import emitting_redis_options
from collector.cli.values import parse_float, parse_int, parse_value
from collector.errors import CommandFailed, ConfigError
from workers.checks import IDENTIFIER, META_KEYS, is_identifier
from workers.emitter import Emitter
from workers.errors import EncodeError

BATCH = 1000  # records per emit_many call
BATCH_BYTES = 64 << 20  # line bytes per emit_many call: bounds the memory a batch holds
MAX_LINE_BYTES = 64 << 20  # a longer line is refused unread (no record can be that large)
BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot be a column name, or None if it can."""
    if is_identifier(key) or key in META_KEYS:
        return None
    return f"bad column name {key!r}: must match {IDENTIFIER.pattern}"


def parse_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """``k=v`` arguments as one record; a usage error names the bad ones (each on its line)."""
    data: dict[str, Any] = {}
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if problem := pair_problem(key, sep, pair, data):
            problems.append(problem)
            continue
        try:
            value.encode()
            data[key] = parse_value(value)
        except UnicodeEncodeError:
            problems.append(f"value of {key!r} is not UTF-8 text")
        except ConfigError as exc:
            problems.append(f"value of {key!r}: {exc}")
    if problems:
        for problem in problems[:-1]:
            click.echo(f"Error: Invalid value for PAIRS: {problem}", err=True)
        raise click.BadParameter(problems[-1], param_hint="PAIRS")
    return data


def pair_problem(key: str, sep: str, pair: str, data: dict[str, Any]) -> str | None:
    """Why ``pair`` (split into ``key``, ``sep``) cannot be a field of ``data``, or None."""
    if not sep:
        return f"{pair!r} is not KEY=VALUE"
    if problem := key_problem(key):
        return problem
    if key in data:
        return f"key {key!r} given twice"
    return None


def parse_line(line: bytes) -> dict[str, Any]:
    """One JSON line as a record; ValueError says what is wrong with it."""
    try:
        text = line.decode()
    except UnicodeDecodeError as exc:
        at = exc.start
        raise ValueError(f"not UTF-8: byte 0x{line[at]:02x} at column {at + 1}") from None
    try:
        data = json.loads(
            text, parse_int=parse_int, parse_float=parse_float, object_pairs_hook=_object
        )
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise ValueError("nested too deeply to read") from None
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    for key in data:
        if problem := key_problem(key):
            raise ValueError(problem)
    return data


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a key given twice is refused (json would keep the last value
    and drop the first without a word), as it is for ``k=v`` pairs."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ConfigError(f"key {key!r} given twice")
        data[key] = value
    return data


def read_lines(stream: IO[bytes], most: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """Each line of ``stream`` with its number from 1; None for a line longer than ``most``
    bytes, which is skipped without being held in memory."""
    number = 0
    while line := stream.readline(most + 1):
        number += 1
        if len(line) <= most or line.endswith(b"\n"):
            yield number, line
            continue
        while line and not line.endswith(b"\n"):
            line = stream.readline(1 << 20)
        yield number, None


def emit_lines(emitter: Emitter, table: str, stream: IO[bytes]) -> tuple[int, int]:
    """Send every good line of ``stream``, a pipelined batch at a time; (sent, bad) counts."""
    sent = bad = held = 0
    records: list[dict[str, Any]] = []
    for number, line in read_lines(stream):
        if number == 1 and line is not None:
            line = line.removeprefix(BOM)  # an encoding mark some editors write, not data
        try:
            if line is None:
                raise ValueError(f"longer than {MAX_LINE_BYTES} bytes")
            if not line.strip():
                continue
            data = parse_line(line)
            emitter.record(data, table=table).encode()
        except (ValueError, EncodeError) as exc:
            bad += 1
            click.echo(f"line {number}: {exc}", err=True)
            continue
        records.append(data)
        held += len(line)
        if len(records) >= BATCH or held >= BATCH_BYTES:
            sent += len(emitter.emit_many(records, table=table))
            records, held = [], 0
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
        if stdin is None or stdin.isatty():  # None: the shell closed it (<&-)
            raise click.UsageError("give KEY=VALUE pairs, or JSON lines on stdin")
        sent, bad = emit_lines(emitter, table, stdin.buffer)
    finally:
        emitter.close()
    click.echo(f"sent {sent} records to table {table} on {queue}", err=True)
    if bad:
        raise CommandFailed(f"{bad} bad line(s) skipped")
