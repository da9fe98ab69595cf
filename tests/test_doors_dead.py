"""``collector dead list`` shows any stored letter in a bounded line, and never fails on one."""

from __future__ import annotations

import time

import msgpack
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.cli.dead import PREVIEW_CHARS, REASON_CHARS, preview
from collector.settings import Settings
from tests.helpers import REAL_REDIS_URL, collector, on_real_redis, run_collector


def nested_record(depth: int, rid: str) -> bytes:
    """A version-1 record whose field ``x`` is a list nested ``depth`` deep (msgpack's packer
    refuses to build that, so the bytes are written by hand, as a hostile job could)."""
    head = msgpack.packb(
        {
            "v": 1,
            "id": rid,
            "t": "data",
            "ts": time.time(),
            "src": {"host": "h", "pid": 1, "job": None},
            "d": {"x": None},
        }
    )
    assert head.endswith(b"\x81\xa1x\xc0")
    return head[:-1] + b"\x91" * depth + b"\x90"


@pytest.mark.redis
@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_dead_list_shows_letters_nested_a_thousand_deep_and_more(
    real_redis: redis.Redis, settings: Settings, db: str, request: pytest.FixtureRequest
) -> None:
    if db == "postgres":
        settings = Settings(**{**settings.__dict__, "db_url": request.getfixturevalue("pg_url")})
    settings = on_real_redis(settings)
    for depth in (40, 1_000, 100_000):
        real_redis.xadd(settings.queue, {"m": nested_record(depth, f"deep{depth}")})
    assert run_collector(settings).dead == 3
    done = collector("dead", "list", "--redis-url", REAL_REDIS_URL, "--queue", settings.queue)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 6
    assert lines[1] == "    x=[[[[[…]]]]]"  # 40 deep: read, refused for its depth
    assert all(len(line) <= PREVIEW_CHARS + 4 for line in lines[1::2])
    assert done.stderr == f"3 of 3 dead letters in {settings.queue}:dead\n"


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=300) | st.binary(max_size=300),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4)
    | st.dictionaries(st.integers(-(2**63), 2**63), kids, max_size=2),
    max_leaves=30,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=70), VALUES, max_size=6), st.integers(0, 3000))
def test_any_value_previews_as_one_bounded_line(data: dict, tower: int) -> None:
    raw = msgpack.packb({"v": 1, "t": "data", "d": data}, use_bin_type=True)
    if tower:  # a tower of lists under one more field, deeper than any repr could go
        raw = b"\x81\xa1d\x81\xa1y" + b"\x91" * tower + b"\x90"
    table, text = preview(raw)
    assert "\n" not in text and "\n" not in table
    assert len(text) <= PREVIEW_CHARS


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_preview_as_one_bounded_line(raw: bytes) -> None:
    table, text = preview(raw)
    assert "\n" not in text and "\n" not in table
    assert len(text) <= PREVIEW_CHARS and len(table) <= 40


@pytest.mark.redis
def test_a_huge_or_hostile_reason_is_one_bounded_line(real_redis: redis.Redis, queue: str) -> None:
    dead = f"{queue}:dead"
    real_redis.xadd(dead, {"m": b"\xc1", "reason": b"R" * 200_000, "ts": b"nan"})
    real_redis.xadd(dead, {"m": b"\xc1", "reason": b"\xff\x1b[2J\nnext", "ts": b"1"})
    done = collector("dead", "list", "--redis-url", REAL_REDIS_URL, "--queue", queue)
    assert done.returncode == 0, done.stderr
    first, _, second, _ = done.stdout.splitlines()
    assert first.endswith("  ?  " + "R" * (REASON_CHARS - 1) + "…")
    assert second.endswith("  ?  \ufffd\\x1b[2J\\nnext")
