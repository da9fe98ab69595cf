"""``collector export``: a table as CSV, JSON lines or Parquet, streamed in chunks.

Rows come through a server-side cursor (``yield_per``) a chunk at a time, so a table of millions
of rows never sits in memory. A file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import decimal
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

import click
import sqlalchemy as sa
from tqdm import tqdm

from collector.cli.options import db_option
from collector.errors import CommandFailed
from collector.read import check_table_name, open_table
from collector.schema import kind_of_sql

PYARROW_MISSING = "parquet export needs pyarrow: pip install 'result-collector[data]'"
Chunks = Iterable[Sequence[Sequence[Any]]]


def _json_default(value: Any) -> Any:
    """JSON for what the database returns but JSON lacks: datetimes, bytes (base64), decimals,
    and anything else (a UUID, say) as its text."""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def csv_cell(value: Any) -> Any:
    """One CSV cell: empty for NULL, true/false, ISO datetimes, base64 bytes, JSON for lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    return _json_default(value)


def write_csv(columns: list[sa.Column], chunks: Chunks, sink: IO[bytes]) -> None:
    """A header row, then one line per row."""
    text = io.TextIOWrapper(sink, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow([c.name for c in columns])
    for chunk in chunks:
        writer.writerows([csv_cell(v) for v in row] for row in chunk)
    text.flush()
    text.detach()


def write_jsonl(columns: list[sa.Column], chunks: Chunks, sink: IO[bytes]) -> None:
    """One JSON object per row and line, keys in column order."""
    names = [c.name for c in columns]
    text = io.TextIOWrapper(sink, encoding="utf-8", newline="\n")
    for chunk in chunks:
        text.writelines(
            json.dumps(dict(zip(names, row, strict=True)), default=_json_default) + "\n"
            for row in chunk
        )
    text.flush()
    text.detach()


def write_parquet(columns: list[sa.Column], chunks: Chunks, sink: IO[bytes]) -> None:
    """Parquet with one row group per chunk; column types come from the SQL types, not values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = {
        "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "bytes": pa.binary(),
        "datetime": pa.timestamp("us"), "str": pa.string(),
    }  # fmt: skip
    names = [c.name for c in columns]
    kinds = [kind_of_sql(c.type) for c in columns]
    schema = pa.schema([(n, arrow.get(k, pa.string())) for n, k in zip(names, kinds, strict=True)])
    as_text = [i for i, k in enumerate(kinds) if k not in arrow]
    with pq.ParquetWriter(sink, schema) as writer:
        for chunk in chunks:
            cols = [list(col) for col in zip(*chunk, strict=True)] or [[] for _ in names]
            for i in as_text:
                cols[i] = [None if v is None else _text_of(v) for v in cols[i]]
            writer.write_batch(pa.RecordBatch.from_arrays(cols, schema=schema))


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=_json_default, ensure_ascii=False)


WRITERS: dict[str, Callable[[list[sa.Column], Chunks, IO[bytes]], None]] = {
    "csv": write_csv,
    "jsonl": write_jsonl,
    "parquet": write_parquet,
}


@contextlib.contextmanager
def output_sink(path: str | None) -> Iterator[IO[bytes]]:
    """stdout, or a temporary file next to ``path`` renamed to it only when writing succeeded."""
    if path is None:
        yield sys.stdout.buffer
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class Progress:
    """Counts the rows of the chunks passing through, and moves a progress bar (on a terminal)."""

    def __init__(self, chunks: Chunks, total: int, desc: str) -> None:
        self.chunks, self.rows = chunks, 0
        self.bar = tqdm(total=total, unit="rows", desc=desc, disable=None, file=sys.stderr)

    def __iter__(self) -> Iterator[Sequence[Sequence[Any]]]:
        with self.bar:
            for chunk in self.chunks:
                yield chunk
                self.rows += len(chunk)
                self.bar.update(len(chunk))


@click.command()
@click.argument("table")
@db_option
@click.option(
    "--format", "fmt", type=click.Choice(sorted(WRITERS)), default="csv", show_default=True,
    help="csv (header row, NULL as empty), jsonl (one JSON object a line) or parquet.",
)  # fmt: skip
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
    help="File to write (default: stdout).",
)  # fmt: skip
@click.option(
    "--chunk-size", type=click.IntRange(min=1), default=10_000, show_default=True,
    help="Rows fetched from the database at a time.",
)  # fmt: skip
def export(table: str, db_url: str, fmt: str, output: str | None, chunk_size: int) -> None:
    """Write TABLE as CSV, JSON lines or Parquet, streamed in chunks.

    \b
    Examples:
      collector export data --format csv -o data.csv
      collector export data --format jsonl | gzip > data.jsonl.gz
      collector export data --format parquet -o data.parquet
    """
    check_table_name(table)
    if fmt == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise CommandFailed(PYARROW_MISSING) from None
    with open_table(db_url, table) as (conn, tbl):
        total = conn.scalar(sa.select(sa.func.count()).select_from(tbl)) or 0
        result = conn.execution_options(yield_per=chunk_size).execute(sa.select(tbl))
        progress = Progress(result.partitions(), total, table)
        with output_sink(output) as sink:
            WRITERS[fmt](list(tbl.columns), progress, sink)
    if output is not None:
        click.echo(f"exported {progress.rows} rows of {table} to {output}", err=True)
