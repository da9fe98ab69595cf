"""``collector status`` shows any stored health entry and consumer name, written straight into
Redis past our checks: one bounded, printable line each, strict JSON with ``--json``, never a
traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.errors import RET_OK
from collector.queuestats import MAX_ERROR_CHARS, failing_entry
from collector.settings import Settings
from tests.helpers import REAL_REDIS_URL, collector, on_real_redis, run_collector
from workers.emitter import Emitter
from workers.names import QueueNames


def strict(text: str) -> Any:
    """``text`` parsed as a strict JSON reader would: no NaN, no Infinity."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


HOSTILE = [
    b"not json",
    b'{"a": 1}',
    b"[1]",
    b'{"since": "x", "attempts": 1, "error": "e"}',
    b'{"since": 1e400, "attempts": "many", "error": "red\\u001b[31m\\nnext"}',
    b'{"since": 1.0, "attempts": 2, "error": ' + json.dumps("x" * 100_000).encode() + b"}",
    b"[" * 100_000,
    b"\xff\xfe",
]


@pytest.mark.redis
def test_hostile_health_entries_and_consumer_names_are_one_line_each(
    real_redis: redis.Redis, queue: str
) -> None:
    names = QueueNames(queue)
    for n, value in enumerate(HOSTILE):
        real_redis.hset(names.health, f"c{n}", value)
    real_redis.hset(names.health, b"\xff\x1b[2Jbad", b'{"since": 1, "attempts": 1, "error": "e"}')
    real_redis.xgroup_create(queue, "collector", id="0", mkstream=True)
    real_redis.xadd(queue, {"m": b"x"})
    real_redis.xreadgroup("collector", b"\xfe\x1b]0;title\x07", {queue: ">"}, count=1)
    args = ["status", "--redis-url", REAL_REDIS_URL, "--queue", queue, "--db-url"]
    args.append("sqlite:////nonexistent/i21/results.db")
    done = collector(*args)
    assert (done.returncode, done.stderr) == (RET_OK, "")
    failing = [line for line in done.stdout.splitlines() if "batch failing" in line]
    assert len(failing) == len(HOSTILE) + 1
    assert all(line.isprintable() and len(line) < MAX_ERROR_CHARS + 120 for line in failing)
    assert "  consumer \\xfe\\x1b]0;title\\x07: 1 pending" in done.stdout.splitlines()[2]
    found = strict(collector(*args, "--json").stdout)
    assert len(found["failing"]) == len(HOSTILE) + 1
    assert found["failing"]["c4"] == {
        "since": None,
        "attempts": None,
        "error": "red\\x1b[31m\\nnext",
    }
    assert found["failing"]["c0"]["error"].startswith("unreadable health entry: b'not json'")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
            lambda kids: (
                st.lists(kids, max_size=3)
                | st.dictionaries(st.sampled_from(["since", "attempts", "error", "x"]), kids)
            ),
            max_leaves=10,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_stored_health_value_reads_as_strict_json_fields(raw: bytes) -> None:
    entry = failing_entry(raw)
    assert set(entry) == {"since", "attempts", "error"}
    assert strict(json.dumps(entry)) == entry
    assert entry["since"] is None or isinstance(entry["since"], float)
    assert entry["attempts"] is None or isinstance(entry["attempts"], int)
    assert entry["error"].isprintable() and len(entry["error"]) <= MAX_ERROR_CHARS


@pytest.mark.redis
@pytest.mark.parametrize("value", [b"not json", b"[1]", b'{"error": 5}', b"[" * 100_000])
def test_a_collector_starts_whatever_its_health_entry_holds(
    real_redis: redis.Redis, settings: Settings, value: bytes
) -> None:
    settings = on_real_redis(settings)
    real_redis.hset(QueueNames(settings.queue).health, settings.consumer, value)
    emitter = Emitter(settings.redis_url, settings.queue)
    emitter.emit({"x": 1}, table="data", key="one")
    emitter.close()
    assert run_collector(settings).stored == 1
