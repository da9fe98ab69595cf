"""``collector serve`` as a person runs it: real serve, redis-server, job and command processes,
a private HOME (the connection file's default place), and jobs with no COLLECTOR_* variables."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import redis

from collector.errors import RET_ALREADY_RUNNING, RET_BROKER
from collector.server.binary import bundled_path
from faults.servers import (
    Process,
    collector,
    python,
    stored_ids,
    wait_for_rows,
    wait_until,
)
from workers.keys import point_key

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parent.parent

JOB = """
import sys, workers
first, count = int(sys.argv[1]), int(sys.argv[2])
for i in range(first, first + count):
    print(workers.emit({"i": i, "K": i * 0.5}, key=f"r{i}"))
"""


class Serves:
    """Starts ``collector serve`` processes for one test and kills whatever is left of them (and
    of their redis-servers) afterwards, however the test ended."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.db_url = f"sqlite:///{tmp_path / 'results.db'}"
        self.data = tmp_path / "redis-data"
        self.started: list[psutil.Process] = []

    @property
    def file(self) -> Path:
        return self.home / ".config" / "result-collector" / "default.json"

    def env(self, **extra: str) -> dict[str, str]:
        """This machine's environment without COLLECTOR_* variables, HOME the private one."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTOR_")}
        return {**env, "HOME": str(self.home), **extra}

    def start(self, *args: str, cwd: Path | None = None, db_url: str = "", **env: str) -> Process:
        """A serve, once its collector runs (its signal handlers are in place); ``db_url``
        (default: ``self.db_url``) is read from ``cwd``."""
        proc = collector(
            "serve", "--dir", str(self.data), "--db-url", db_url or self.db_url, "--max-wait",
            "0.1", *args, env=self.env(**env), cwd=cwd,
        )  # fmt: skip
        self.started.append(psutil.Process(proc.pid))
        proc.wait_for("collector started", timeout=60)
        if proc.poll() is not None:
            proc.stop(None)
            pytest.fail(f"serve exited with {proc.returncode}: {proc.out} {proc.err}")
        self.started += psutil.Process(proc.pid).children()
        return proc

    def start_failing(self, *args: str, **env: str) -> Process:
        """A serve expected to end on its own, run to its end."""
        proc = collector(
            "serve", "--dir", str(self.data), "--db-url", self.db_url, *args, env=self.env(**env)
        )
        self.started.append(psutil.Process(proc.pid))  # killed after the test if it runs on
        proc.stop(None, timeout=60)
        return proc

    def run(self, *argv: str, timeout: float = 60, cwd: Path | None = None, **env: str) -> Process:
        """A job or command run to its end (in ``cwd``, default this one)."""
        proc = python(*argv, env=self.env(**env), cwd=cwd)
        proc.stop(None, timeout=timeout)
        return proc

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.is_running():
                proc.kill()
                proc.wait(10)


@pytest.fixture
def serves(tmp_path: Path) -> Iterator[Serves]:
    helper = Serves(tmp_path)
    yield helper
    helper.kill_all()


def redis_child(serve: Process) -> psutil.Process:
    (child,) = psutil.Process(serve.pid).children()
    return child


def command(*args: str) -> tuple[str, ...]:
    return ("import sys; from collector.cli import main; sys.exit(main())", *args)


def test_serve_with_no_redis_on_path_a_job_with_no_settings_and_a_clean_sigterm(serves):
    serve = serves.start(PATH=str(serves.home))  # no redis-server there: the bundled one
    assert redis_child(serve).exe() == bundled_path()
    assert stat.S_IMODE(serves.file.stat().st_mode) == 0o600
    info = json.loads(serves.file.read_text())
    password = urlsplit(info["url"]).password
    assert len(password) >= 32
    assert (info["host"], info["pid"], info["slurm_job_id"]) == ("127.0.0.1", serve.pid, None)

    job = serves.run(JOB, "0", "100")
    assert job.returncode == 0, job.err
    wait_for_rows(serves.db_url, {f"r{i}" for i in range(100)}, timeout=60)

    # Records emitted just before SIGTERM: stored by this serve, or kept in Redis's append-only
    # file and stored by the next one on the same --dir.
    assert serves.run(JOB, "100", "400").returncode == 0
    child = redis_child(serve)
    assert serve.stop(signal.SIGTERM, timeout=60) == 0
    assert not child.is_running()
    assert not serves.file.exists()
    assert password not in serve.out + serve.err
    assert serve.out.splitlines()[-1].endswith(f"redis-server stopped; {serves.file} removed")

    again = serves.start()
    wait_for_rows(serves.db_url, {f"r{i}" for i in range(500)}, timeout=60)
    assert again.stop(signal.SIGTERM, timeout=60) == 0
    assert password not in (serves.data / "redis.log").read_text()


def test_a_second_serve_with_the_same_name_is_refused(serves):
    first = serves.start()
    second = collector("serve", "--dir", str(serves.data / "b"), env=serves.env())
    assert second.stop(None, timeout=60) == RET_ALREADY_RUNNING
    assert second.err.strip().splitlines() == [
        f"Error: collector serve 'default' already runs (pid {first.pid} on "
        f"{os.uname().nodename}, since {json.loads(serves.file.read_text())['started']}): "
        f"{serves.file}; stop it first, or give this one another --name (jobs pick it with "
        "COLLECTOR_SERVER)"
    ]
    assert first.poll() is None
    assert serves.run(JOB, "0", "3").returncode == 0
    wait_for_rows(serves.db_url, {"r0", "r1", "r2"}, timeout=60)
    assert first.stop(signal.SIGTERM, timeout=60) == 0


def test_a_file_left_by_a_killed_serve_is_detected_and_replaced(serves, tmp_path):
    serve = serves.start()
    child = redis_child(serve)
    port = json.loads(serves.file.read_text())["port"]
    serve.stop(signal.SIGKILL)
    wait_until(lambda: not child.is_running(), 15, "redis-server to die with its parent")
    assert serves.file.exists()

    status = serves.run(*command("status"))
    assert status.returncode == RET_BROKER
    assert status.err.strip().splitlines() == [
        f"Error: no Redis answers at redis://collector:***@127.0.0.1:{port}/0, named in "
        f"{serves.file}: is `collector serve` still running? (COLLECTOR_REDIS_URL or "
        "COLLECTOR_SERVER pick another)"
    ]
    spool = tmp_path / "spool"
    job = serves.run(
        JOB, "0", "1", COLLECTOR_EMIT_TIMEOUT="0", COLLECTOR_SPOOL_DIR=str(spool)
    )  # fmt: skip
    assert (job.returncode, job.out) == (0, "r0\n")
    assert f"(from {serves.file}) took no records" in job.err
    assert len(list(spool.iterdir())) == 1

    again = serves.start()
    assert json.loads(serves.file.read_text())["pid"] == again.pid
    flush = serves.run(*command("spool", "flush", str(spool)))
    assert flush.returncode == 0, flush.err
    wait_for_rows(serves.db_url, {"r0"}, timeout=60)
    assert again.stop(signal.SIGTERM, timeout=60) == 0
    stale = f"replacing the stale connection file {serves.file}: its server (pid {serve.pid} on "
    assert stale in again.err


def test_serve_bound_to_another_address_refuses_clients_without_the_password(serves):
    serve = serves.start("--bind", "127.0.0.2")
    info = json.loads(serves.file.read_text())
    assert (info["host"], urlsplit(info["url"]).hostname) == ("127.0.0.2", "127.0.0.2")
    for password in (None, "wrong"):
        client = redis.Redis(host="127.0.0.2", port=info["port"], password=password)
        with pytest.raises(redis.AuthenticationError):
            client.xadd("collector:results", {"m": b"x"})
        client.close()
    client = redis.Redis(host="127.0.0.1", port=info["port"])
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()
    assert serves.run(JOB, "0", "2").returncode == 0
    wait_for_rows(serves.db_url, {"r0", "r1"}, timeout=60)
    assert serve.stop(signal.SIGTERM, timeout=60) == 0


def test_a_sweep_submitted_as_rq_jobs_reaches_serve_through_the_file_alone(serves):
    serve = serves.start()
    grid = ("--grid", "I=1,2", "--grid", "J=1,2,3", "--rq-queue", "serve-sweep")
    submit = serves.run(*command("sweep", "submit", "rq_jobs.point", *grid))
    assert submit.returncode == 0, submit.err
    worker = Process(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "-c", "workers.rqconfig",
         "-w", "rq.worker.SimpleWorker", "--path", str(TESTS), "serve-sweep"],
        env=serves.env(),
    )  # fmt: skip
    assert worker.stop(None, timeout=120) == 0, worker.err
    wait_until(lambda: len(stored_ids(serves.db_url, "rq_points")) == 6, 60, "six rows")
    assert serve.stop(signal.SIGTERM, timeout=60) == 0


POINT = """
import workers
from workers.keys import point_key
for i in (1, 2):
    workers.emit({"I": i, "K": i * 0.5}, key=point_key("results", {"I": i}))
"""


def test_the_file_names_the_absolute_database_and_commands_elsewhere_read_it(serves, tmp_path):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    serve = serves.start(cwd=here, db_url="sqlite:///results.db")
    absolute = f"sqlite:///{here / 'results.db'}"
    assert json.loads(serves.file.read_text())["db_url"] == absolute
    declare = ("sweep", "declare", "loc", "--table", "results", "--grid", "I=1,2")
    assert serves.run(*command(*declare), cwd=elsewhere).returncode == 0
    assert serves.run(POINT, cwd=elsewhere).returncode == 0
    wait_for_rows(absolute, {point_key("results", {"I": i}) for i in (1, 2)}, timeout=60)

    status = serves.run(*command("status", "--json"), cwd=elsewhere)
    assert status.returncode == 0, status.err
    info = json.loads(status.out)
    assert (info["db_url"], info["tables"]["results"]) == (absolute, 2)
    sweep = serves.run(*command("sweep", "status", "loc", "--json"), cwd=elsewhere)
    assert sweep.returncode == 0, sweep.err
    assert json.loads(sweep.out)["done"] == 2
    wait = serves.run(*command("wait", "-t", "results", "-n", "2"), cwd=elsewhere)
    assert wait.returncode == 0, wait.err
    lines = wait.err.splitlines()
    assert (lines[0], lines[-1]) == (f"database  {absolute}", "results: 2 rows")
    assert "warning" not in wait.err  # serve's collector is seen on the queue
    assert not (elsewhere / "results.db").exists()
    assert serve.stop(signal.SIGTERM, timeout=60) == 0
    assert f"db={absolute} " in serve.err  # the start log line
    assert not serves.file.exists()


def test_serve_whose_redis_server_dies_exits_in_one_line_and_removes_the_file(serves):
    serve = serves.start()
    redis_child(serve).kill()
    assert serve.stop(None, timeout=60) == RET_BROKER
    assert serve.err.strip().splitlines()[-1] == (
        f"Error: redis-server exited on its own (code -9); see {serves.data / 'redis.log'}"
    )
    assert not serves.file.exists()
