"""``collector emit`` takes any input: JSON lines on stdin and ``k=v`` pairs of any kind give one
line per bad item, send every good one and exit non-zero, never a traceback."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.cli import main
from collector.cli.emit import MAX_LINE_BYTES, read_lines
from collector.errors import RET_CONFIG, RET_FAILED, RET_OK, ConfigError
from collector.settings import Settings
from tests.helpers import REAL_REDIS_URL, collector, on_real_redis, rows, run_collector
from tests.test_cli_emit import stream_records

pytestmark = pytest.mark.redis

DEEP = "[" * 100_000 + "]" * 100_000


def emit(queue: str, stdin: bytes) -> Any:
    """``collector emit`` in this process, as the console script runs it."""
    args = ["emit", "--redis-url", REAL_REDIS_URL, "--queue", queue, "--table", "t"]
    return CliRunner().invoke(main, args, input=stdin)


def sent_data(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    return [r.data for r in stream_records(client, queue)]


def test_deep_line_between_good_lines_is_one_line_and_the_good_are_sent(
    real_redis: redis.Redis, queue: str
) -> None:
    stdin = f'{{"i": 1}}\n{{"deep": {DEEP}}}\n{{"i": 2}}\n'
    done = collector(
        "emit", "--redis-url", REAL_REDIS_URL, "--queue", queue, "-t", "t", stdin=stdin
    )
    assert done.returncode == RET_FAILED
    assert done.stderr.splitlines() == [
        "line 2: nested too deeply to read",
        f"sent 2 records to table t on {queue}",
        "Error: 1 bad line(s) skipped",
    ]
    assert sent_data(real_redis, queue) == [{"i": 1}, {"i": 2}]


def test_a_5000_digit_value_is_refused_by_name(real_redis: redis.Redis, queue: str) -> None:
    digits = "9" * 5000
    args = ["--redis-url", REAL_REDIS_URL, "--queue", queue, "-t", "t"]
    done = collector("emit", *args, f"big={digits}", "ok=1")
    assert done.returncode == RET_CONFIG
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "Error: Invalid value for PAIRS: value of 'big': "
        "integer 999999999999...9999 (5000 characters) is beyond 64 bits"
    )
    assert real_redis.exists(queue) == 0
    done = collector("emit", *args, stdin=f'{{"big": {digits}}}\n{{"i": 3}}\n')
    assert done.returncode == RET_FAILED
    assert done.stderr.splitlines()[0] == (
        "line 1: integer 999999999999...9999 (5000 characters) is beyond 64 bits"
    )
    assert sent_data(real_redis, queue) == [{"i": 3}]


def test_every_bad_pair_is_named_on_its_own_line(real_redis: redis.Redis, queue: str) -> None:
    args = ["emit", "--redis-url", REAL_REDIS_URL, "--queue", queue, "-t", "t"]
    done = CliRunner().invoke(main, [*args, "a=1e999", "b", "c=2", f"d={2**63}"])
    assert done.exit_code == RET_CONFIG
    lines = done.output.splitlines()
    assert lines[:2] == [
        "Error: Invalid value for PAIRS: value of 'a': number 1e999 is beyond the float range",
        "Error: Invalid value for PAIRS: 'b' is not KEY=VALUE",
    ]
    assert lines[-1] == (
        f"Error: Invalid value for PAIRS: value of 'd': integer {2**63} is beyond 64 bits"
    )
    assert real_redis.exists(queue) == 0


def test_invalid_utf8_nul_and_empty_input(real_redis: redis.Redis, queue: str) -> None:
    stdin = b'{"a": "\xff"}\n\x00\n{"b": "\x00"}\n{"c": "\\u0000x"}\n{"s": ["\\ud800"]}\n'
    done = emit(queue, stdin)
    assert done.exit_code == RET_FAILED, done.output
    assert done.output.splitlines()[:4] == [
        "line 1: not UTF-8: byte 0xff at column 8",
        "line 2: not valid JSON: Expecting value (column 1)",
        "line 3: not valid JSON: Invalid control character at (column 8)",
        "line 5: record for table 't': 'utf-8' codec can't encode character '\\ud800' in "
        "position 0: surrogates not allowed",
    ]
    assert sent_data(real_redis, queue) == [{"c": "\x00x"}]
    empty = emit(f"{queue}:empty", b"")
    assert empty.exit_code == RET_OK
    assert empty.output == f"sent 0 records to table t on {queue}:empty\n"


def test_a_line_too_long_is_skipped_unread() -> None:
    import io

    stream = io.BytesIO(b"x" * 50 + b"\nshort\n" + b"y" * 30)
    assert list(read_lines(stream, most=20)) == [(1, None), (2, b"short\n"), (3, None)]
    assert MAX_LINE_BYTES >= 16 << 20  # room for any record a collector takes by default


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)  # no lone surrogates
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats() | TEXT,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(TEXT, kids, max_size=3),
    max_leaves=8,
)
NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
GOOD = st.dictionaries(NAMES, JSON, max_size=4)


def _not_an_object(text: str) -> bool:
    """True for text that is no JSON object on one line (so ``collector emit`` refuses it)."""
    if any(c in text for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        return False  # more than one line to Python's str.splitlines: keep examples one line
    try:
        return not isinstance(json.loads(text), dict)
    except ValueError:
        return True


BAD = st.one_of(
    st.integers(min_value=50, max_value=3000).map(lambda n: "[" * n + "]" * n),  # deep
    st.integers(min_value=21, max_value=6000).map(lambda n: '{"n": ' + "7" * n + "}"),  # huge
    st.binary(min_size=1, max_size=10).map(  # not UTF-8 (one line: no newline in it)
        lambda b: b'{"x": "' + b"\xff" + b.replace(b"\n", b"") + b'"}'
    ),
    st.just(b"\x00"),
    st.just('{"k": 1e400}'),
    st.just("[1]"),
    st.just('{"bad key": 1}'),
    st.text(max_size=10).filter(_not_an_object),
)


def _encoded(line: str | bytes) -> bytes:
    return line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.one_of(GOOD.map(lambda d: ("good", d)), BAD.map(lambda b: ("bad", b))), max_size=8)
)
def test_random_lines_send_every_good_one(
    real_redis: redis.Redis, lines: list[tuple[str, Any]]
) -> None:
    queue = f"test:{uuid.uuid4().hex[:12]}:results"
    try:
        body = [json.dumps(v) if kind == "good" else _encoded(v) for kind, v in lines]
        stdin = b"".join(_encoded(line) + b"\n" for line in body)
        done = emit(queue, stdin)
        assert done.exception is None or isinstance(done.exception, SystemExit), done.output
        assert "Traceback" not in done.output
        good = [v for kind, v in lines if kind == "good"]
        sent = sent_data(real_redis, queue)
        assert len(sent) == len(good)
        assert json.dumps(sent) == json.dumps(good)  # NaN equals itself here
        reported = [line for line in done.output.splitlines() if line.startswith("line ")]
        blank = sum(1 for kind, v in lines if kind == "bad" and not _encoded(v).strip())
        assert len(reported) == len(lines) - len(good) - blank
        assert done.exit_code == (RET_FAILED if reported else RET_OK)
    finally:
        real_redis.delete(queue)


def test_a_line_over_the_limit_is_one_line_and_the_next_is_sent(
    real_redis: redis.Redis, queue: str
) -> None:
    huge = b'{"s": "' + b"x" * MAX_LINE_BYTES + b'"}\n'
    done = emit(queue, b'{"i": 1}\n' + huge + b'{"i": 2}\n')
    assert done.exit_code == RET_FAILED
    assert done.output.splitlines()[0] == f"line 2: longer than {MAX_LINE_BYTES} bytes"
    assert sent_data(real_redis, queue) == [{"i": 1}, {"i": 2}]


def test_a_key_given_twice_in_a_json_line_is_refused_not_overwritten(
    real_redis: redis.Redis, queue: str
) -> None:
    done = emit(queue, b'{"a": 1, "a": 2}\n{"b": {"c": 1, "c": 2}}\n{"a": 3}\n')
    assert done.exit_code == RET_FAILED
    assert done.output.splitlines()[:2] == [
        "line 1: key 'a' given twice",
        "line 2: key 'c' given twice",
    ]
    assert sent_data(real_redis, queue) == [{"a": 3}]


def test_a_byte_order_mark_before_the_first_line_is_no_part_of_it(
    real_redis: redis.Redis, queue: str
) -> None:
    done = emit(queue, b'\xef\xbb\xbf{"a": 1}\r\n{"b": 2}\r\n\xef\xbb\xbf{"c": 3}\n')
    assert done.exit_code == RET_FAILED
    assert done.output.splitlines()[0] == (
        "line 3: not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) (column 1)"
    )
    assert sent_data(real_redis, queue) == [{"a": 1}, {"b": 2}]


def test_a_closed_stdin_is_one_line() -> None:
    argv = [sys.executable, "-m", "collector", "emit", "--redis-url", REAL_REDIS_URL, "-t", "t"]
    done = subprocess.run(
        ["sh", "-c", 'exec "$@" <&-', "sh", *argv], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr.splitlines()[-1]) == (
        RET_CONFIG,
        "Error: give KEY=VALUE pairs, or JSON lines on stdin",
    )


@pytest.mark.parametrize("flag", ["--queue", "--key"])
def test_a_queue_or_key_that_is_no_text_is_one_line(flag: str, queue: str) -> None:
    argv = [sys.executable, "-m", "collector", "emit", "--redis-url", REAL_REDIS_URL, "-t", "t"]
    if flag == "--key":
        argv += ["--queue", queue]
    done = subprocess.run([*map(os.fsencode, argv), flag.encode(), b"\xff", b"a=1"],
                          capture_output=True, check=False)  # fmt: skip
    if flag == "--queue":
        assert (done.returncode, done.stderr) == (
            RET_CONFIG,
            b"Error: queue name '\\udcff' is not UTF-8 text\n",
        )
    else:
        assert done.returncode == RET_FAILED
        assert b"Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_consumer_name_that_is_no_text_is_a_config_error() -> None:
    from collector.settings import Settings

    with pytest.raises(ConfigError, match=r"^consumer name '\\udcff' is not UTF-8 text$"):
        Settings(consumer="\udcff").validate()


@pytest.mark.parametrize("text", ["١٢٣", "\uff11\uff12", "৩.৫", "1e-400", "-2.5e-330", "0.0"])
def test_a_number_is_ascii_digits_and_never_rounds_to_zero(text: str) -> None:
    from collector.cli.values import parse_value

    if text.isascii() and text != "0.0":
        with pytest.raises(ConfigError, match=f"^number {text} is beyond the float range$"):
            parse_value(text)
    else:
        assert parse_value(text) == (0.0 if text == "0.0" else text)  # kept as text, unaltered


def test_a_float_that_underflows_is_refused_in_a_json_line(
    real_redis: redis.Redis, queue: str
) -> None:
    done = emit(queue, b'{"x": 1e-400}\n{"x": 0e-400}\n{"x": 5e-324}\n')
    assert done.exit_code == RET_FAILED
    assert done.output.splitlines()[0] == "line 1: number 1e-400 is beyond the float range"
    assert sent_data(real_redis, queue) == [{"x": 0.0}, {"x": 5e-324}]


PAIR_TEXT = st.one_of(
    st.text(max_size=12),  # lone surrogates among them, as argv bytes that are no UTF-8 give
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(["1e999", "1e-400", "9" * 5000, "true", "FALSE", "", "=", "١٢٣", "0x10"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(NAMES, st.text(max_size=4)), PAIR_TEXT), max_size=4))
def test_random_pairs_are_a_record_or_one_line_each(pairs: list[tuple[str, str]]) -> None:
    import click

    from collector.cli.emit import parse_pairs

    try:
        data = parse_pairs(f"{k}={v}" for k, v in pairs)
    except click.BadParameter as exc:
        assert "\n" not in exc.format_message()
        return
    assert list(data) == [k for k, _v in pairs]
    for (_key, text), value in zip(pairs, data.values(), strict=True):
        if isinstance(value, bool):
            assert text.lower() == str(value).lower()
        elif isinstance(value, int):
            assert -(2**63) <= value < 2**63 and int(text) == value and text.isascii()
        elif isinstance(value, float):
            assert float(text) == value or value != value
        else:
            assert value == text  # anything else is kept exactly as written


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_the_good_lines_around_a_deep_line_and_a_5000_digit_value_are_stored(
    real_redis: redis.Redis, settings: Settings, db: str, request: pytest.FixtureRequest
) -> None:
    if db == "postgres":
        settings = dataclasses.replace(settings, db_url=request.getfixturevalue("pg_url"))
    settings = on_real_redis(settings)
    stdin = f'{{"i": 1}}\n{{"deep": {DEEP}}}\n{{"i": 2}}\n{{"big": {"9" * 5000}}}\n{{"i": 3}}\n'
    args = ["--redis-url", REAL_REDIS_URL, "--queue", settings.queue, "-t", "t"]
    done = collector("emit", *args, stdin=stdin)
    assert done.returncode == RET_FAILED
    assert done.stderr.splitlines()[:2] == [
        "line 2: nested too deeply to read",
        "line 4: integer 999999999999...9999 (5000 characters) is beyond 64 bits",
    ]
    assert collector("emit", *args, "big=" + "9" * 5000, "i=4").returncode == RET_CONFIG
    counters = run_collector(settings)
    assert (counters.stored, counters.dead) == (3, 0)
    assert sorted(row["i"] for row in rows(settings.db_url, "t")) == [1, 2, 3]
