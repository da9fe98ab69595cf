"""The soak's parts other than the checker: its children get the URLs on stdin (never in argv or
their environment: a URL may hold a password), the fault schedule is the seed's and holds every
kind, the canary bounds what a Redis restart lost, and shard changes at once each raise the
count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts.soak import final
from scripts.soak.canary import KEY, Canary, Window
from scripts.soak.child import options_line
from scripts.soak.databases import Sqlite
from scripts.soak.faults import HEAL_MARGIN, draw, kinds_for
from scripts.soak.fleet import Collectors, Producers
from scripts.soak.procs import Children
from scripts.soak.run import Soak
from scripts.soak.workload import Plan
from tests.helpers import REAL_REDIS_URL

REPO = Path(__file__).resolve().parents[1]
SECRET = "s3cret-pw"
REDIS_URL = f"redis://:{SECRET}@127.0.0.1:1/0"
DB_URL = f"postgresql+psycopg://soak:{SECRET}@127.0.0.1:1/soak"
# What a child saw: its argv, its environment's values and the first line on its stdin
SHOW = ("import json, os, sys; print('SEEN ' + json.dumps({'argv': sys.argv, "
        "'env': list(os.environ.values()), 'stdin': sys.stdin.readline()}))")  # fmt: skip


def seen(log: Path) -> dict[str, Any]:
    line = next(x for x in log.read_text().splitlines() if x.startswith("SEEN "))
    return json.loads(line[5:])


def assert_secret_only_on_stdin(what: dict[str, Any]) -> None:
    assert not any(SECRET in arg for arg in what["argv"]), what["argv"]
    assert not any(SECRET in value for value in what["env"])
    assert json.loads(what["stdin"]) == {"--redis-url": REDIS_URL, "--db-url": DB_URL}


def test_collectors_get_the_urls_on_stdin_not_in_argv_or_their_environment(tmp_path) -> None:
    children = Children()
    try:
        urls = {"--redis-url": REDIS_URL, "--db-url": DB_URL}
        fleet = Collectors(children, tmp_path, [sys.executable, "-c", SHOW], ["--queue", "q"],
                           ["c1"], None, urls)  # fmt: skip
        fleet.start("c1")
        assert fleet.procs["c1"].wait(60) == 0
    finally:
        children.end_all()
    what = seen(tmp_path / "collector-c1.log")
    assert_secret_only_on_stdin(what)
    assert what["argv"][1:3] == ["--queue", "q"]


def test_producers_get_the_redis_url_on_stdin_not_in_their_environment(tmp_path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "receipts").mkdir()
    plan = Plan.draw(1, 0.0, 60.0, 65536)
    plan.until = 1e12  # never "too late" to start one
    children = Children()
    try:
        pool = Producers(children, tmp_path, plan, {"PATH": os.environ["PATH"]}, ["p0"],
                         REDIS_URL, [sys.executable, "-c", SHOW])  # fmt: skip
        pool.start("p0")
        assert pool.procs["p0"].wait(60) == 0
    finally:
        children.end_all()
    what = seen(tmp_path / "logs" / "producer-p0-1.log")
    assert not any(SECRET in arg for arg in what["argv"]) and SECRET not in str(what["env"])
    assert json.loads(what["stdin"]) == {"redis_url": REDIS_URL}


def test_spool_flush_and_status_get_the_urls_on_stdin(tmp_path, monkeypatch) -> None:
    calls: list[dict[str, Any]] = []

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append({"argv": argv, "env": kwargs.get("env"), "input": kwargs.get("input")})
        return subprocess.CompletedProcess(argv, 0, "{}", "")

    monkeypatch.setattr(final.subprocess, "run", run)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "left.spool").write_bytes(b"x")
    assert final.flush_spools(spool, REDIS_URL)  # the recorder sent nothing: it stays
    db = Sqlite(tmp_path)
    db.url = DB_URL
    monkeypatch.setattr(final, "streams", lambda client: ([], []))
    monkeypatch.setattr(Sqlite, "tables", lambda self: [])
    final.agree("redis://127.0.0.1:1/0", "q", db, {}, None)
    flush, status = calls
    assert flush["argv"][-3:] == ["spool", "flush", str(spool)]
    assert status["argv"][3:6] == ["status", "--json", "--queue"]
    for call in calls:
        assert not any(SECRET in arg for arg in call["argv"]), call["argv"]
        assert call["env"] is None or SECRET not in str(call["env"])
    assert json.loads(flush["input"]) == {"--redis-url": REDIS_URL}
    assert json.loads(status["input"]) == {"--redis-url": "redis://127.0.0.1:1/0",
                                           "--db-url": DB_URL}  # fmt: skip


@pytest.mark.redis
def test_the_child_runs_a_collector_command_with_the_urls_from_stdin(tmp_path, queue) -> None:
    line = options_line({"--redis-url": REAL_REDIS_URL,
                         "--db-url": f"sqlite:///{tmp_path / 'r.db'}"})  # fmt: skip
    argv = [sys.executable, "-m", "scripts.soak.child", "status", "--json", "--queue", queue]
    proc = subprocess.run(argv, cwd=REPO, input=line, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert (status["queue"], status["pending"], status["dead"], status["tables"]) == (0, 0, 0, {})


def test_the_child_refuses_a_missing_options_line_in_one_line() -> None:
    argv = [sys.executable, "-m", "scripts.soak.child", "status"]
    proc = subprocess.run(argv, cwd=REPO, input="", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "soak child: the first line on stdin must be a JSON map of options"
    ]


# --- the fault schedule ------------------------------------------------------------------------


class World:
    def __init__(self, collectors: int, producers: int) -> None:
        self.collectors = [f"c{i + 1}" for i in range(collectors)]
        self.producers = [f"p{i}" for i in range(producers)]


def resource(kind: str, target: str) -> str:
    return "redis" if kind.startswith("redis") else "db" if kind.startswith("db") else target


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), server=st.booleans(), shards=st.booleans(),
       producers=st.integers(4, 8), seconds=st.sampled_from([60.0, 120.0, 720.0]))  # fmt: skip
def test_a_seed_draws_one_schedule_with_every_kind_healed_before_the_end(
    seed: int, server: bool, shards: bool, producers: int, seconds: float
) -> None:
    world = World(2 if server else 1, producers)
    kinds = kinds_for(server, shards)
    claim_idle = 2.0 if server else 60.0
    faults = draw(seed, seconds, world, kinds, claim_idle)  # type: ignore[arg-type]
    assert faults == draw(seed, seconds, world, kinds, claim_idle)  # type: ignore[arg-type]
    assert {f.kind for f in faults} == set(kinds)
    assert ("shard_change" in kinds) == shards and ("db_cut" in kinds) == server
    assert all(f.at + f.seconds <= seconds - HEAL_MARGIN for f in faults)
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    if server:  # paused longer than --claim-idle, so the peer claims its records
        assert all(f.seconds > claim_idle for f in faults if f.kind == "collector_stop")
    ends: dict[str, float] = {}
    for f in faults:  # never two faults on one target at once
        res = resource(f.kind, f.target)
        assert ends.get(res, 0.0) <= f.at, f
        ends[res] = f.at + f.seconds


# --- the canary ----------------------------------------------------------------------------------


def canary_on(client: fakeredis.FakeRedis) -> Canary:
    canary = Canary("redis://127.0.0.1:1/0")
    canary.client.close()
    canary.client = client  # type: ignore[assignment]
    canary.idle = threading.Event()
    return canary


def test_the_canary_bounds_a_loss_by_the_write_redis_came_back_with() -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    canary = canary_on(client)
    canary.sent = {n: 100.0 + n / 100 for n in range(1, 11)}
    canary.last_acked = 10
    client.set(KEY, 7)  # Redis came back with write 7 of 10
    text = canary.after_restart(killed_at=100.5)
    assert canary.windows == [Window(canary.sent[7], 100.5, 3)]
    assert text == "canary 7 of 10: Redis lost 0.430 s of writes"
    client.set(KEY, 10)
    assert canary.after_restart(killed_at=101.0) == "canary 10, nothing lost"
    assert len(canary.windows) == 1


# --- the faults' world ---------------------------------------------------------------------------


class SlowFleet:
    """A fleet whose restart waits until a second reader has looked at the shard count (or 5 s):
    a shard change that reads the count outside the fleet's lock reads the old one."""

    def __init__(self) -> None:
        self.changing = threading.RLock()
        self.count, self.reads = 2, 0
        self.read_twice = threading.Event()

    @property
    def shards(self) -> int:
        self.reads += 1
        if self.reads >= 2:
            self.read_twice.set()
        return self.count

    def restart_all(self, shards: int) -> None:
        self.read_twice.wait(5)
        self.count = shards


def test_two_shard_changes_at_once_raise_the_count_twice() -> None:
    world = Soak.__new__(Soak)
    world.fleet = SlowFleet()  # type: ignore[assignment]
    said: list[str] = []
    threads = [threading.Thread(target=lambda: said.append(world.shards_raise())) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(said) == ["shards 2 -> 3", "shards 3 -> 4"]
    assert world.fleet.count == 4  # type: ignore[attr-defined]
