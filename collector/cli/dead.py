"""``collector dead``: list the dead letters, put them back on the queue, or purge them."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import msgpack
from tqdm import tqdm

from collector.cli.connect import open_redis
from collector.cli.options import redis_options, shards_option
from collector.cli.render import render, render_fields, shorten
from collector.deadletters import DeadLetter, DeadLetters, shard_letters
from collector.errors import CommandFailed
from workers.checks import is_identifier
from workers.names import FIELD

F = TypeVar("F", bound=Callable[..., Any])
PREVIEW_CHARS = 72
REASON_CHARS = 300  # a longer reason (written by hand into Redis) is cut
RETRY_BATCH = 500
_STREAM_ID = re.compile(r"\d+-\d+")
_MAX = 2**64 - 1  # each part of a stream id is an unsigned 64-bit integer


def preview(raw: bytes | None) -> tuple[str, str]:
    """(table, short preview of the data) of a dead letter's bytes, as far as they can be read;
    any bytes at all give a bounded line (render.py), never an error."""
    if raw is None:
        return "-", f"(entry has no field {FIELD!r})"
    try:
        wire = msgpack.unpackb(raw, raw=False, strict_map_key=False, timestamp=3)
    except Exception:  # the bytes are dead because they are not valid msgpack, of any kind
        return "?", render(raw[: PREVIEW_CHARS * 4], PREVIEW_CHARS)
    if not isinstance(wire, dict):
        return "?", printable(render(wire, PREVIEW_CHARS))
    data, table = wire.get("d", wire), wire.get("t", "?")
    if isinstance(data, dict):
        return printable(_table(table)), printable(render_fields(data, PREVIEW_CHARS))
    return printable(_table(table)), printable(render(data, PREVIEW_CHARS))


def _table(name: Any) -> str:
    """A dead letter's table as given, or its bounded repr when it is no identifier."""
    return name if is_identifier(name) else render(name, 40)


def printable(text: str) -> str:
    """``text`` with each character a terminal would act on (ESC, BEL, a newline...) shown as
    its escape: a record's table name or key reaches the screen as written, never as a
    command to the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@contextmanager
def dead_letters(redis_url: str, queue: str, shards: int | None) -> Iterator[list[DeadLetters]]:
    """Each shard's dead-letter stream (one, unsharded), over a client closed afterwards. Each
    shard's letters go back onto that shard: one slot a command."""
    with open_redis(redis_url) as client:
        yield shard_letters(client, queue, shards)


def where(letters: list[DeadLetters]) -> str:
    """The dead-letter stream(s) named in messages."""
    return ", ".join(one.key for one in letters)


def _stream_ids(_ctx: click.Context, _param: click.Parameter, ids: tuple[str, ...]) -> list[str]:
    bad = [i for i in ids if not _STREAM_ID.fullmatch(i) or max(map(int, i.split("-"))) > _MAX]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not a stream id like 1732630000000-0")
    return list(ids)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def dead() -> None:
    """Records the collector refused, kept in the stream <queue>:dead with the reason.

    \b
    Example, after fixing the models module:
      collector dead list
      collector dead retry --all
    """


@dead.command(name="list")
@redis_options
@shards_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Most dead letters to show.",
)
def list_(redis_url: str, queue: str, shards: int | None, limit: int) -> None:
    """Show the oldest dead letters: id, table, reason and a preview of the data.

    \b
    Example:
      collector dead list --limit 50
    """
    with dead_letters(redis_url, queue, shards) as every:
        total = sum(one.count() for one in every)
        head: list[tuple[DeadLetters, DeadLetter]] = []
        for one in every:  # the oldest of each shard in turn, until --limit
            if len(head) < limit:
                head += [(one, letter) for letter in one.head(limit - len(head))]
    for one, letter in head:
        table, data = preview(letter.raw)
        stream = f"  ({one.queue})" if len(every) > 1 else ""
        reason = shorten(printable(letter.reason[: REASON_CHARS * 2]), REASON_CHARS)
        click.echo(f"{letter.id}  {table}  {reason}{stream}\n    {data}")
    click.echo(f"{len(head)} of {total} dead letters in {where(every)}", err=True)


@dead.command()
@redis_options
@shards_option
@click.option("--all", "everything", is_flag=True, help="Retry every dead letter.")
@click.option(
    "--stream",
    default=None,
    help="The stream whose dead letters IDS are (as `dead list` shows it); needed only when "
    "an id is on several shards' streams.",
)
@click.argument("ids", nargs=-1, callback=_stream_ids)
def retry(
    redis_url: str,
    queue: str,
    shards: int | None,
    everything: bool,
    stream: str | None,
    ids: list[str],
) -> None:
    """Put dead letters back on the queue (original bytes) and delete them from the dead stream.

    Records that still do not fit are dead-lettered again by the collector, with a new id.
    A dead letter is named by its stream and id: ids are per stream, so two shards' dead
    letters may share one, and then --stream says which.

    \b
    Examples:
      collector dead retry 1732630000000-0 1732630000000-1
      collector dead retry --stream 'collector:results:{2}' 1732630000000-0
      collector dead retry --all
    """
    if everything == bool(ids):
        raise click.UsageError("give dead-letter IDS or --all (not both)")
    with dead_letters(redis_url, queue, shards) as every:
        if stream is not None:
            every = on_stream(every, stream)
        moved = retry_ids(every, ids) if ids else retry_all(every)
    click.echo(f"put {moved} dead letters back on {queue}")


def on_stream(every: list[DeadLetters], stream: str) -> list[DeadLetters]:
    """The dead letters of ``stream`` alone; CommandFailed when the queue has no such stream."""
    chosen = [one for one in every if one.queue == stream]
    if not chosen:
        streams = ", ".join(one.queue for one in every)
        raise CommandFailed(f"{stream} is no stream of this queue (its streams: {streams})")
    return chosen


def retry_ids(every: list[DeadLetters], ids: list[str]) -> int:
    """Retry the letters with these ids, each of which must be on exactly one stream."""
    found = [(one, one.get(ids)) for one in every]
    missing = [i for i in ids if not any(i in letters for _one, letters in found)]
    if missing:
        raise CommandFailed(f"no dead letter {', '.join(missing)} in {where(every)}")
    for i in ids:
        on = [one.queue for one, letters in found if i in letters]
        if len(on) > 1:
            raise CommandFailed(
                f"dead letter {i} is on {len(on)} streams ({', '.join(on)}): give --stream "
                "to say which"
            )
    return sum(one.retry(list(letters.values())) for one, letters in found if letters)


def retry_all(every: list[DeadLetters]) -> int:
    """Retry every dead letter, shard by shard, a batch at a time, with a progress bar."""
    moved, total = 0, sum(one.count() for one in every)
    with tqdm(total=total, unit="records", disable=None, file=sys.stderr) as bar:
        for one in every:
            for batch in one.batches(RETRY_BATCH):
                moved += one.retry(batch)
                bar.update(len(batch))
    return moved


@dead.command()
@redis_options
@shards_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(redis_url: str, queue: str, shards: int | None, yes: bool) -> None:
    """Delete every dead letter of the queue, for good.

    \b
    Example:
      collector dead purge --yes
    """
    with dead_letters(redis_url, queue, shards) as every:
        count = sum(one.count() for one in every)
        if count and not yes:
            click.confirm(f"delete {count} dead letters from {where(every)}?", abort=True)
        purged = sum(one.purge() for one in every) if count else 0
    click.echo(f"purged {purged} dead letters from {where(every)}")
