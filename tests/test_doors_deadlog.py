"""The collector logs each dead letter (table, id, reason) at warning level, rate-limited."""

from __future__ import annotations

import logging

import msgpack
import pytest
import redis

import collector.daemon
from collector.deadlog import DeadLetterLog, identify
from collector.settings import Settings
from tests.helpers import on_real_redis, run_collector
from workers.emitter import Emitter
from workers.record import Record

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_each_dead_letter_is_one_warning_with_table_id_and_reason(
    real_redis: redis.Redis,
    settings: Settings,
    db: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if db == "postgres":
        settings = Settings(**{**settings.__dict__, "db_url": request.getfixturevalue("pg_url")})
    settings = on_real_redis(settings)
    monkeypatch.setattr(collector.daemon, "log_dead_letters", DeadLetterLog().report)
    emitter = Emitter(settings.redis_url, settings.queue)
    emitter.emit({"x": 1}, table="data", key="good")
    emitter.emit({"v": [1.0, float("nan")]}, table="vec", key="nan-inside")  # the store refuses
    emitter.close()
    bad = Record(id="bad-name", table="data", data={"x": 1}).encode().replace(b"\xa1x", b"\xa1-")
    real_redis.xadd(settings.queue, {"m": bad})  # refused when decoded
    real_redis.xadd(settings.queue, {"m": b"\xc1 not msgpack"})
    with caplog.at_level(logging.WARNING, logger="collector.deadlog"):
        assert run_collector(settings).dead == 3
    assert sorted(caplog.messages) == [
        "dead letter: table ?, id ?: not valid msgpack: FormatError: ",
        "dead letter: table data, id bad-name: bad column name '-': must match "
        "[A-Za-z][A-Za-z0-9_]{0,62}",
        "dead letter: table vec, id nan-inside: cannot store the row: NaN or infinity inside a "
        "list or dict: JSON has no such numbers (send null, or the value as text)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_a_flood_is_rate_limited_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    limiter = DeadLetterLog(most=3, every=10.0, clock=lambda: now[0])
    letter = (b"1-0", Record(id="r", table="t", data={}).encode(), "why")
    with caplog.at_level(logging.WARNING, logger="collector.deadlog"):
        limiter.report([letter] * 8)
        assert caplog.messages == ["dead letter: table t, id r: why"] * 3
        now[0] += 10.0
        limiter.report([letter])
    assert caplog.messages[3:] == [
        "5 more dead letters in 10 s not logged one by one (see collector dead list)",
        "dead letter: table t, id r: why",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xc1", ("?", "?")),
        (msgpack.packb([1, 2]), ("?", "?")),
        (msgpack.packb({"v": 2, "t": "t", "id": ["a", "b", "c"]}), ("t", "a and 2 more")),
        (
            msgpack.packb({"t": "bad\nname", "id": "x" * 1000}),
            ("'bad\\nname'", "'" + "x" * 78 + "…"),
        ),
    ],
)
def test_any_bytes_name_their_table_and_id_in_one_short_line(
    raw: bytes, expected: tuple[str, str]
) -> None:
    assert identify(raw) == expected
