"""``collector dead list / retry / purge`` through the console script, on the machine's Redis."""

from __future__ import annotations

import pytest
import redis
import sqlalchemy as sa

from collector.cli.dead import preview
from collector.errors import RET_CONFIG, RET_FAILED
from collector.settings import Settings
from tests.helpers import REAL_REDIS_URL, collector, on_real_redis, run_collector, typed_rows
from workers.emitter import Emitter
from workers.record import Record

pytestmark = pytest.mark.redis


def strict_models() -> sa.MetaData:
    """A declared table ``data`` with columns I and K only: a record with ``extra`` is refused."""
    metadata = sa.MetaData()
    sa.Table(
        "data", metadata,
        sa.Column("_id", sa.String(255), primary_key=True),
        sa.Column("I", sa.Integer), sa.Column("K", sa.Float),
    )  # fmt: skip
    return metadata


@pytest.fixture
def setup(real_redis: redis.Redis, settings: Settings) -> tuple[Settings, list[str]]:
    """Three records refused by the strict model (dead letters), one stored; the args to use."""
    settings = on_real_redis(settings)
    emitter = Emitter(settings.redis_url, settings.queue)
    emitter.emit({"I": 1, "K": 0.5}, table="data", key="good")
    for i in range(3):
        emitter.emit({"I": i, "K": 1.5, "extra": f"e{i}"}, table="data", key=f"bad{i}")
    emitter.close()
    assert run_collector(settings, strict_models()).dead == 3
    return settings, ["--redis-url", REAL_REDIS_URL, "--queue", settings.queue]


def dead_ids(client: redis.Redis, queue: str) -> list[str]:
    return [mid.decode() for mid, _ in client.xrange(f"{queue}:dead")]


def test_list_shows_id_table_reason_and_preview(setup, real_redis: redis.Redis) -> None:
    settings, args = setup
    ids = dead_ids(real_redis, settings.queue)
    done = collector("dead", "list", *args, "--limit", "2")
    assert done.returncode == 0, done.stderr
    reason = "table 'data' is declared by the models module and has no column 'extra'"
    assert done.stdout.splitlines() == [
        f"{ids[0]}  data  {reason}",
        "    I=0, K=1.5, extra='e0'",
        f"{ids[1]}  data  {reason}",
        "    I=1, K=1.5, extra='e1'",
    ]
    assert done.stderr == f"2 of 3 dead letters in {settings.queue}:dead\n"


def test_preview_of_bytes_that_are_not_a_record() -> None:
    assert preview(b"\xc1garbage") == ("?", repr(b"\xc1garbage"))
    assert preview(None) == ("-", "(entry has no field 'm')")
    long = Record(id="x", table="t", data={"s": "a" * 200}).encode()
    table, text = preview(long)
    assert (table, len(text), text[-1]) == ("t", 72, "…")


def test_retry_ids_puts_the_original_bytes_back(setup, real_redis: redis.Redis) -> None:
    settings, args = setup
    entries = real_redis.xrange(f"{settings.queue}:dead")
    chosen = [entries[0][0].decode(), entries[2][0].decode()]
    done = collector("dead", "retry", *args, *chosen)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"put 2 dead letters back on {settings.queue}\n"
    assert dead_ids(real_redis, settings.queue) == [entries[1][0].decode()]
    requeued = [fields[b"m"] for _, fields in real_redis.xrange(settings.queue)]
    assert requeued == [entries[0][1][b"m"], entries[2][1][b"m"]]


def test_retry_all_after_fixing_the_model_stores_the_records(
    setup, real_redis: redis.Redis
) -> None:
    settings, args = setup
    done = collector("dead", "retry", *args, "--all")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"put 3 dead letters back on {settings.queue}\n"
    assert real_redis.xlen(f"{settings.queue}:dead") == 0
    assert run_collector(settings).stored == 3  # without the strict model, the column is added
    assert [(r["_id"], r["extra"]) for r in typed_rows(settings.db_url, "data")] == [
        ("bad0", "e0"), ("bad1", "e1"), ("bad2", "e2"), ("good", None),
    ]  # fmt: skip


def test_retry_all_ends_when_records_are_refused_again(setup, real_redis: redis.Redis) -> None:
    settings, args = setup
    assert collector("dead", "retry", *args, "--all").returncode == 0
    assert (
        run_collector(settings, strict_models()).dead == 3
    )  # still refused: three new dead letters
    again = collector("dead", "retry", *args, "--all")
    assert again.stdout == f"put 3 dead letters back on {settings.queue}\n"


def test_retry_unknown_id_fails_and_moves_nothing(setup, real_redis: redis.Redis) -> None:
    settings, args = setup
    before = dead_ids(real_redis, settings.queue)
    done = collector("dead", "retry", *args, before[0], "1-0")
    assert done.returncode == RET_FAILED
    assert done.stderr == f"Error: no dead letter 1-0 in {settings.queue}:dead\n"
    assert dead_ids(real_redis, settings.queue) == before
    assert real_redis.xlen(settings.queue) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "Error: give dead-letter IDS or --all (not both)"),
        (["--all", "1-0"], "Error: give dead-letter IDS or --all (not both)"),
        (["12abc"], "Error: Invalid value for '[IDS]...': '12abc' is not a stream id"),
    ],
)
def test_retry_usage_errors(setup, extra: list[str], message: str) -> None:
    _settings, args = setup
    done = collector("dead", "retry", *args, *extra)
    assert done.returncode == RET_CONFIG
    assert done.stderr.splitlines()[-1].startswith(message)


def test_purge_asks_then_deletes_and_counts(setup, real_redis: redis.Redis) -> None:
    settings, args = setup
    refused = collector("dead", "purge", *args, stdin="n\n")
    assert refused.returncode == RET_FAILED
    assert real_redis.xlen(f"{settings.queue}:dead") == 3
    done = collector("dead", "purge", *args, "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"purged 3 dead letters from {settings.queue}:dead\n"
    assert real_redis.exists(f"{settings.queue}:dead") == 0
    again = collector("dead", "purge", *args)
    assert again.stdout == f"purged 0 dead letters from {settings.queue}:dead\n"
