"""Shard counts and queue names as a careless or hostile user meets them: collectors with
other counts coming and going while one runs, a count key of the wrong type, stream ids out of
range given to ``dead retry``."""

from __future__ import annotations

from dataclasses import replace

import hypothesis
import msgpack
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from collector.cli import main
from collector.cli.dead import preview
from collector.daemon import Collector
from collector.shards import RESCAN
from tests.helpers import REAL_REDIS_URL, collector, drain, rows
from workers import Emitter
from workers.names import QueueNames

MAX_ID = 2**64 - 1  # each part of a stream id is an unsigned 64-bit integer


def stored(settings) -> list[str]:
    return sorted(r["_id"] for r in rows(settings.db_url, "t"))


def test_a_running_collector_reads_the_shards_a_peer_with_more_left(
    settings, fake_redis, tmp_path
) -> None:
    now = [0.0]
    mine = Collector(replace(settings, shards=2), client=fake_redis, clock=lambda: now[0])
    mine.start()
    try:
        drain(mine)  # reads <queue>:{0}, {1} and <queue>, publishes 2
        peer = replace(settings, shards=4, consumer="peer", db_url=f"sqlite:///{tmp_path}/p.db")
        other = Collector(peer, client=fake_redis)
        other.start()
        drain(other)  # publishes 4, then stops: emitters keep sending to four shards
        other.close()
        assert fake_redis.get(QueueNames(settings.queue).count) == b"4"
        emit = Emitter(queue=settings.queue, client=fake_redis)
        sent = sorted(emit.emit({"x": 1}, table="t", key=f"k{i}") for i in range(40))
        now[0] += RESCAN
        drain(mine)
        assert stored(settings) == sent
    finally:
        mine.close()


def test_a_count_key_of_another_type_is_a_malformed_count(settings, fake_redis, caplog) -> None:
    names = QueueNames(settings.queue)
    fake_redis.hset(names.count, "a", "b")  # a careless hand: not a string key at all
    sent = Emitter(queue=settings.queue, client=fake_redis).emit({"x": 1}, table="t", key="k")
    assert fake_redis.xlen(settings.queue) == 1
    assert "malformed shard count" in caplog.text
    collector = Collector(replace(settings, shards=3), client=fake_redis)
    collector.start()
    try:
        drain(collector)
    finally:
        collector.close()
    assert stored(settings) == [sent]
    assert fake_redis.get(names.count) == b"3"


@hsettings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=MAX_ID + 1, max_value=10**30),
    st.integers(min_value=0, max_value=10**30),
    st.booleans(),
)
def test_dead_retry_refuses_a_stream_id_out_of_range_as_bad_usage(big, other, first) -> None:
    millis, seq = (big, other) if first else (other, big)
    where = ["--redis-url", "redis://127.0.0.1:1", "--queue", "q"]  # never reached
    result = CliRunner().invoke(main, ["dead", "retry", *where, f"{millis}-{seq}"])
    assert result.exit_code == 2, result.output
    assert f"'{millis}-{seq}' is not a stream id" in result.output


def test_dead_retry_takes_the_largest_stream_id() -> None:
    where = ["--redis-url", "redis://127.0.0.1:1", "--queue", "q"]
    result = CliRunner().invoke(main, ["dead", "retry", *where, f"{MAX_ID}-{MAX_ID}"])
    assert result.exit_code == 5 and "redis unavailable" in result.output  # valid: Redis asked


CONTROL = st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=6)


@hsettings(max_examples=50, deadline=None)
@given(table=CONTROL, key=CONTROL, value=CONTROL)
def test_a_dead_letter_preview_prints_no_control_character(table, key, value) -> None:
    raw = msgpack.packb({"v": 1, "id": "k", "t": f"t{table}", "d": {f"a{key}": value}})
    shown = "".join(preview(raw))
    assert shown.isprintable(), repr(shown)


def test_dead_list_shows_a_terminal_escape_in_a_table_name_escaped(real_redis, queue) -> None:
    bad = {"v": 1, "id": "k", "t": "t\x1b]0;pwned\x07", "d": {"x": 1}, "ts": 1.0}
    real_redis.xadd(QueueNames.dead(queue), {"m": msgpack.packb(bad), "reason": "bad\x1b[2J"})
    where = ["--redis-url", REAL_REDIS_URL, "--queue", queue]
    listed = collector("dead", "list", *where)
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout + listed.stderr
    # a table name that is no identifier is shown as its bounded repr (collector.cli.render)
    assert "'t\\x1b]0;pwned\\x07'  bad\\x1b[2J" in listed.stdout


BAD_SHARDS = st.one_of(
    st.integers().filter(lambda n: not 1 <= n <= 1024).map(str),
    st.text(alphabet="abc.-+ x*", min_size=1, max_size=6).filter(lambda t: t.strip() != ""),
)


@hsettings(max_examples=20, deadline=None)
@given(name=st.sampled_from(["COLLECTOR_SHARDS", "COLLECTOR_EMIT_TIMEOUT"]), value=BAD_SHARDS)
def test_collector_emit_with_a_malformed_variable_says_so_in_one_line(name, value) -> None:
    hypothesis.assume(name == "COLLECTOR_SHARDS" or not value.lstrip("+").isdigit())
    where = ["--redis-url", "redis://127.0.0.1:1", "--queue", "q", "--table", "t"]
    result = CliRunner().invoke(main, ["emit", *where, "x=1"], env={name: value})
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {name} must be") and result.output.count("\n") == 1
