"""The least-privilege ACL rules of docs/security.md, exactly as written there, as users of the
machine's Redis (unique names, deleted afterwards): a job emits, ``collector run`` stores and
dead-letters, ``collector status`` and ``collector dead`` work, and nothing more is granted."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from collector.errors import RET_CONFIG
from tests.helpers import (
    REAL_REDIS_URL,
    collector,
    rows,
    start_collector,
    stop,
    wait_ready,
    wait_until,
)
from workers import Emitter
from workers.names import QueueNames

pytestmark = pytest.mark.redis
DOC = Path(__file__).parents[1] / "docs" / "security.md"
DEFAULT_QUEUE = "collector:results"
RULE = re.compile(r"^    user (\w+) on >(\S+) (.+)$", re.MULTILINE)


def documented() -> dict[str, list[str]]:
    """The documented rules by user name: the ACL words after the password."""
    return {name: rest.split() for name, _password, rest in RULE.findall(DOC.read_text())}


def test_the_documented_key_patterns_are_the_queue_names() -> None:
    rules, names = documented(), QueueNames(DEFAULT_QUEUE)
    assert set(rules) == {"jobs", "collector", "operator"}
    keys = {user: [w[1:] for w in words if w.startswith("~")] for user, words in rules.items()}
    assert keys["jobs"] == names.job_patterns()
    assert keys["collector"] == keys["operator"] == names.key_patterns()


@pytest.fixture
def users(real_redis: redis.Redis, queue: str):
    """Each documented rule for this test's queue, as a user with a unique name: role -> URL."""
    made: dict[str, str] = {}
    try:
        for role, words in documented().items():
            name, password = f"test-{role}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
            rule = [w.replace(DEFAULT_QUEUE, queue) for w in words]
            real_redis.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", *rule)
            made[role] = REAL_REDIS_URL.replace("redis://", f"redis://{name}:{password}@", 1)
        yield made
    finally:
        for url in made.values():
            real_redis.execute_command("ACL", "DELUSER", url.split("//")[1].split(":")[0])


def test_a_job_the_collector_and_the_cli_work_as_the_documented_users(
    users, real_redis, queue, db_url
) -> None:
    job = Emitter(users["jobs"], queue)
    job.emit({"x": 1}, key="first")
    proc = start_collector(users["collector"], db_url, queue, "--shards", "2")
    try:
        wait_ready(proc)
        wait_until(lambda: real_redis.get(QueueNames(queue).count) == b"2", 30)
        job.emit({"x": "text"}, key="clash")  # a type conflict: a dead letter
        where_to = ["--redis-url", users["jobs"], "--queue", queue, "--table", "results"]
        sent = collector("emit", *where_to, "--key", "cli", "x=2")
        assert sent.returncode == 0, sent.stderr
        letters = [QueueNames.dead(s) for s in QueueNames(queue).read_streams(2)]
        wait_until(lambda: sum(real_redis.xlen(key) for key in letters) == 1, 30)
        wait_until(lambda: len(rows(db_url, "results")) == 2, 30)
        where = ["--redis-url", users["operator"], "--queue", queue]
        shown = collector("status", *where, "--db-url", db_url, "--json")
        assert shown.returncode == 0, shown.stderr
        info = json.loads(shown.stdout)
        assert (info["queue"], info["pending"], info["dead"]) == (0, 0, 1)
        assert info["tables"] == {"results": 2} and info["persistence"]["rdb"] is None
        listed = collector("dead", "list", *where)
        assert listed.returncode == 0 and "clash" not in listed.stderr, listed.stderr
        retried = collector("dead", "retry", "--all", *where)
        assert (retried.returncode, retried.stdout) == (0, f"put 1 dead letters back on {queue}\n")
        wait_until(lambda: collector("dead", "list", *where).stderr.startswith("1 of 1 "), 30)
        purged = collector("dead", "purge", "--yes", *where)
        assert purged.returncode == 0 and purged.stdout.startswith("purged 1 dead letters")
    finally:
        job.close()
        code = stop(proc)
    log = proc.log_path.read_text()
    assert code == 0, log
    assert "NOPERM" not in log and "refused" not in log
    assert sorted(r["_id"] for r in rows(db_url, "results")) == ["cli", "first"]


def test_the_documented_rules_grant_nothing_beyond_the_queue(users, real_redis, queue) -> None:
    for role, url in users.items():
        client = redis.Redis.from_url(url)
        try:
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.xadd(f"{queue}-other", {"m": b"x"})  # another queue's key
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command("CONFIG", "GET", "requirepass")
            if role == "jobs":
                with pytest.raises(redis.exceptions.NoPermissionError):
                    client.xreadgroup("collector", "c", {queue: ">"})
        finally:
            client.close()


GLOBBY = st.text(alphabet="ab:{}*?[]\\", min_size=1, max_size=12)


@hsettings(max_examples=30, deadline=None)
@given(name=GLOBBY)
def test_the_key_patterns_match_a_queue_whose_name_has_wildcards_alone(name) -> None:
    client = redis.Redis.from_url(REAL_REDIS_URL)
    queue, user = f"test:{uuid.uuid4().hex[:8]}:{name}", f"test-glob-{uuid.uuid4().hex[:8]}"
    names = QueueNames(queue)
    rule = [f"~{p}" for p in names.key_patterns() + names.job_patterns()]
    client.execute_command("ACL", "SETUSER", user, "reset", "on", "nopass", "+xadd", *rule)
    try:

        def may_xadd(key: str) -> bool:
            reply = client.execute_command("ACL", "DRYRUN", user, "XADD", key, "*", "m", "x")
            return reply in (b"OK", "OK")

        assert all(map(may_xadd, [queue, names.shard(3), names.dead(names.shard(3))]))
        neighbour = queue.replace("*", "ZZ").replace("?", "Z")
        assert neighbour == queue or not may_xadd(neighbour)  # another queue's stream
    finally:
        client.execute_command("ACL", "DELUSER", user)
        client.close()


@pytest.mark.parametrize("missing", ["+xdel", "+xack"])
def test_a_collector_user_without_xdel_or_xack_is_refused_before_reading(
    real_redis, queue, sqlite_url, missing
) -> None:
    words = [w.replace(DEFAULT_QUEUE, queue) for w in documented()["collector"] if w != missing]
    name, password = f"test-noack-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    real_redis.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", *words)
    url = REAL_REDIS_URL.replace("redis://", f"redis://{name}:{password}@", 1)
    try:
        Emitter(REAL_REDIS_URL, queue).emit({"x": 1}, key="first")
        done = collector("run", "--redis-url", url, "--db-url", sqlite_url, "--queue", queue)
    finally:
        real_redis.execute_command("ACL", "DELUSER", name)
    masked = url.replace(password, "***")
    command = missing.lstrip("+")
    assert done.returncode == RET_CONFIG
    assert done.stderr.splitlines()[-1] == (
        f"Error: redis at {masked} refused the collector: this user has no permissions to run "
        f"the '{command}' command (the collector needs it for every batch it stores: see the "
        "ACL rule in docs/security.md)"
    )
    assert "could not acknowledge" not in done.stderr
    assert real_redis.xlen(queue) == 1  # not read, so neither stored nor left acknowledged
    assert real_redis.xpending(queue, "collector")["pending"] == 0
    assert sa.inspect(sa.create_engine(sqlite_url)).get_table_names() == []  # none stored
