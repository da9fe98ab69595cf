"""``collector emit`` through the console script, against the machine's Redis."""

from __future__ import annotations

import pytest
import redis

from collector.cli.values import parse_value
from collector.errors import RET_CONFIG, RET_FAILED
from tests.helpers import REAL_REDIS_URL, collector
from workers.entry import decode_records
from workers.record import Record


def stream_records(client: redis.Redis, queue: str) -> list[Record]:
    return [r for _id, fields in client.xrange(queue) for r in decode_records(fields[b"m"])]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42), ("-7", -7), ("0.5", 0.5), ("1e3", 1000.0), ("-.25", -0.25), ("nan", "nan"),
        ("true", True), ("False", False), ("hello", "hello"), ("1.2.3", "1.2.3"), ("", ""),
        ("1_000", "1_000"), (" 3", " 3"),
    ],
)  # fmt: skip
def test_values_are_parsed_as_int_float_bool_or_text(text: str, value: object) -> None:
    parsed = parse_value(text)
    if value == "nan":
        assert parsed != parsed  # NaN is the only value unequal to itself
    else:
        assert parsed == value
        assert type(parsed) is type(value)


@pytest.mark.redis
def test_pairs_become_one_record(real_redis: redis.Redis, queue: str) -> None:
    args = ["--redis-url", REAL_REDIS_URL, "--queue", queue, "--table", "data"]
    done = collector("emit", *args, "I=3", "x=0.5", "ok=true", "name=hello world", "e=")
    assert done.returncode == 0, done.stderr
    [rec] = stream_records(real_redis, queue)
    assert done.stdout.strip() == rec.id
    assert rec.table == "data"
    assert rec.data == {"I": 3, "x": 0.5, "ok": True, "name": "hello world", "e": ""}


@pytest.mark.redis
def test_key_is_the_record_id(real_redis: redis.Redis, queue: str) -> None:
    args = ["--redis-url", REAL_REDIS_URL, "--queue", queue, "--table", "data"]
    done = collector("emit", *args, "--key", "point-17", "K=1.5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "point-17"
    assert [r.id for r in stream_records(real_redis, queue)] == ["point-17"]


@pytest.mark.redis
def test_json_lines_send_the_good_lines_and_name_the_bad_ones(
    real_redis: redis.Redis, queue: str
) -> None:
    lines = [
        '{"I": 1, "K": 2.5}',
        "not json",
        "[1, 2]",
        "",
        '{"bad-key": 1}',
        '{"I": 2, "K": null, "tags": ["a", "b"]}',
    ]
    args = ["--redis-url", REAL_REDIS_URL, "--queue", queue, "--table", "data"]
    done = collector("emit", *args, stdin="\n".join(lines) + "\n")
    assert done.returncode == RET_FAILED
    assert done.stderr.splitlines() == [
        "line 2: not valid JSON: Expecting value (column 1)",
        "line 3: expected a JSON object, got list",
        "line 5: bad column name 'bad-key': must match [A-Za-z][A-Za-z0-9_]{0,62}",
        f"sent 2 records to table data on {queue}",
        "Error: 3 bad line(s) skipped",
    ]
    sent = stream_records(real_redis, queue)
    assert [(r.table, r.data) for r in sent] == [
        ("data", {"I": 1, "K": 2.5}),
        ("data", {"I": 2, "K": None, "tags": ["a", "b"]}),
    ]


@pytest.mark.redis
def test_all_good_lines_exit_zero(real_redis: redis.Redis, queue: str) -> None:
    stdin = "".join(f'{{"i": {i}}}\n' for i in range(2500))  # more than one pipelined batch
    args = ["--redis-url", REAL_REDIS_URL, "--queue", queue, "--table", "t"]
    done = collector("emit", *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert [r.data["i"] for r in stream_records(real_redis, queue)] == list(range(2500))


@pytest.mark.redis
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--table", "bad name", "a=1"], "Error: Invalid value for --table: 'bad name' must match"),
        (["--table", "t", "a"], "Error: Invalid value for PAIRS: 'a' is not KEY=VALUE"),
        (["--table", "t", "a=1", "a=2"], "Error: Invalid value for PAIRS: key 'a' given twice"),
        (["--table", "t", "x-y=1"], "Error: Invalid value for PAIRS: bad column name 'x-y'"),
        (["--table", "t", "--key", "k"], "Error: --key names one record"),
    ],
)
def test_bad_arguments_fail_in_one_line_and_send_nothing(
    real_redis: redis.Redis, queue: str, args: list[str], message: str
) -> None:
    done = collector("emit", "--redis-url", REAL_REDIS_URL, "--queue", queue, *args)
    assert done.returncode == RET_CONFIG
    assert done.stderr.splitlines()[-1].startswith(message)
    assert "Traceback" not in done.stderr
    assert real_redis.exists(queue) == 0


def test_unreachable_redis_spools_with_one_warning_without_the_password(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("COLLECTOR_EMIT_TIMEOUT", "0.2")
    url = "redis://user:s3cret@127.0.0.1:1/0"
    done = collector("emit", "--redis-url", url, "--table", "t", "a=1")
    assert done.returncode == 0
    assert "spool" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    spooled = list((tmp_path / "spool").glob("*.spool"))
    assert len(spooled) == 1 and spooled[0].stat().st_size > 0


@pytest.mark.redis
def test_a_shell_jobs_records_carry_slurms_name_of_its_task(
    real_redis: redis.Redis, queue: str, monkeypatch
) -> None:
    """``collector emit`` in a Slurm array task: both ways in name the task ``200_3``."""
    for key, value in {"SLURM_JOB_ID": "204", "SLURM_ARRAY_JOB_ID": "200",
                       "SLURM_ARRAY_TASK_ID": "3"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    args = ["--redis-url", REAL_REDIS_URL, "--queue", queue, "--table", "data"]
    assert collector("emit", *args, "K=1").returncode == 0
    assert collector("emit", *args, stdin='{"K": 2}\n').returncode == 0
    assert [(r.data, r.job) for r in stream_records(real_redis, queue)] == [
        ({"K": 1}, "200_3"),
        ({"K": 2}, "200_3"),
    ]
