"""``collector export``: a table as CSV, JSON lines or Parquet, streamed in chunks.

Rows come through a server-side cursor (``yield_per``) a chunk at a time, so a table of millions
of rows never sits in memory. A file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Any

import click
import sqlalchemy as sa
from tqdm import tqdm

from collector.arrays.export import write_hdf5
from collector.cli.options import db_option, output_option
from collector.errors import CommandFailed, first_line
from collector.output.formats import PYARROW_MISSING, WRITERS, Chunks
from collector.output.tables import check_table_name, open_table


@contextlib.contextmanager
def output_sink(path: str | None) -> Iterator[IO[bytes]]:
    """stdout, or a temporary file next to ``path`` renamed to it only when writing succeeded."""
    if path is None:
        yield sys.stdout.buffer
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".part"
        )
    except OSError as exc:  # no such directory, no permission, a read-only file system
        raise CommandFailed(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


BINARY_CHUNK = 64  # rows a fetch when a table has binary columns (arrays of megabytes)


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
    "--format",
    "fmt",
    type=click.Choice(sorted([*WRITERS, "hdf5"])),
    default="csv",
    show_default=True,
    help="csv (header row, NULL as empty), jsonl (one JSON object a line), parquet, or hdf5 "
    "(scalars and arrays in one file, needs -o). "
    'An array cell is JSON {"dtype", "shape", "base64"} in csv and jsonl (or {"hdf5", '
    '"slot"} when the collector wrote it to its --arrays file).',
)
@output_option("File to write (default: stdout).")
@click.option(
    "--arrays",
    envvar="COLLECTOR_ARRAYS",
    default=None,
    help="The HDF5 file `collector run --arrays` wrote (for --format hdf5 of such a table).",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Rows fetched from the database at a time.",
)
def export(
    table: str, db_url: str, fmt: str, output: str | None, arrays: str | None, chunk_size: int
) -> None:
    """Write TABLE as CSV, JSON lines or Parquet, streamed in chunks.

    \b
    Examples:
      collector export data --format csv -o data.csv
      collector export data --format jsonl | gzip > data.jsonl.gz
      collector export data --format parquet -o data.parquet
      collector export data --format hdf5 -o data.h5
    """
    check_table_name(table)
    if fmt == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise CommandFailed(PYARROW_MISSING) from None
    writer = WRITERS.get(fmt)
    if fmt == "hdf5":  # h5py seeks: a file, not stdout
        if output is None:
            raise CommandFailed("--format hdf5 writes a file: pass -o FILE.h5")
        writer = functools.partial(write_hdf5, table=table, arrays=arrays)
    with open_table(db_url, table) as (conn, tbl):
        if any(isinstance(c.type, sa.LargeBinary) for c in tbl.columns):
            chunk_size = min(chunk_size, BINARY_CHUNK)  # rows may hold large arrays
        total = conn.scalar(sa.select(sa.func.count()).select_from(tbl)) or 0
        result = conn.execution_options(yield_per=chunk_size).execute(sa.select(tbl))
        progress = Progress(result.partitions(), total, table)
        try:
            with output_sink(output) as sink:
                writer(list(tbl.columns), progress, sink)  # type: ignore[misc]
        except (ValueError, TypeError, OverflowError) as exc:  # pyarrow's errors among them
            raise CommandFailed(
                f"cannot export {table} as {fmt}: a stored value cannot be read as its column's "
                f"type or written in this format ({first_line(exc)}; after row {progress.rows})"
            ) from None
    if output is not None:
        click.echo(f"exported {progress.rows} rows of {table} to {output}", err=True)
