"""``collector serve`` on a login node shared with other users: a stale connection file whose
port another user's password-less redis-server took, a taken --port, a serve restarted on a new
port under a running producer, and the privacy of serve's data directory. As root the foreign
server runs as a second Unix user (created and removed here); otherwise as this user, which is
what matters: the server, not the uid."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
import rq

from collector.errors import RET_BROKER, RET_CONFIG
from faults.servers import Process, free_port, missing, stored_ids, wait_for_rows, wait_until
from faults.test_serve import JOB, TESTS, Serves, command, redis_child
from tests.helpers import can_make_users, unix_user
from tests.webtools import http_get, start_web, stop_web

pytestmark = pytest.mark.slow


@pytest.fixture
def serves(tmp_path: Path) -> Iterator[Serves]:
    helper = Serves(tmp_path)
    yield helper
    helper.kill_all()


@pytest.fixture(scope="module")
def other_user() -> Iterator[str | None]:
    """A second Unix user when we are root (removed afterwards), else None (this user)."""
    if not can_make_users():
        yield None
        return
    with unix_user() as name:
        yield name


class Foreign:
    """Someone else's redis-server on ``port``: no password (or, ``any_password``, a user named
    like serve's that takes any password), run as ``user`` when given."""

    def __init__(
        self, port: int, user: str | None, *, any_password: bool = False, marker: str = ""
    ) -> None:
        binary = shutil.which("redis-server") or missing("redis-server")
        self.directory = Path(tempfile.mkdtemp(prefix="foreign-redis-"))
        argv = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory)]  # fmt: skip
        if any_password:
            argv += ["--user", "collector", "on", "nopass", "~*", "&*", "+@all"]
        if marker:  # the disabled user a serve's server id names (workers.identity)
            argv += ["--user", marker, "off"]
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
            argv = ["runuser", "-u", user, "--", *argv]
        self.proc = subprocess.Popen(argv, cwd="/", stdout=subprocess.DEVNULL)
        self.client = redis.Redis(port=port)
        wait_until(self._answers, 15, f"the foreign redis-server on port {port}")
        pid = int(self.client.info("server")["process_id"])
        uid = pwd.getpwnam(user).pw_uid if user is not None else os.geteuid()
        assert psutil.Process(pid).uids().real == uid  # really that user's server

    def _answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(15)
        shutil.rmtree(self.directory, ignore_errors=True)


def kill_leaving_the_file(serves: Serves) -> int:
    """Start a serve and SIGKILL it (its redis-server dies with it); the file stays. Its port."""
    serve = serves.start()
    child = redis_child(serve)
    port = int(json.loads(serves.file.read_text())["port"])
    serve.stop(signal.SIGKILL)
    wait_until(lambda: not child.is_running(), 15, "redis-server to die with its parent")
    assert serves.file.exists()
    return port


@pytest.mark.parametrize("any_password", [False, True], ids=["no-password", "any-password"])
def test_a_foreign_server_on_a_stale_files_port_gets_nothing(
    serves, tmp_path, other_user, any_password
):
    port = kill_leaving_the_file(serves)
    foreign = Foreign(port, other_user, any_password=any_password)
    try:
        status = serves.run(*command("status"))
        assert status.returncode == RET_BROKER
        (line,) = status.err.strip().splitlines()
        assert line.startswith(
            f"Error: the Redis at redis://collector:***@127.0.0.1:{port}/0 is not the server "
            f"named in {serves.file} ("
        ), line
        spool = tmp_path / "spool"
        job = serves.run(JOB, "0", "2", COLLECTOR_EMIT_TIMEOUT="0", COLLECTOR_SPOOL_DIR=str(spool))
        assert (job.returncode, job.out) == (0, "r0\nr1\n"), job.err
        assert len(list(spool.iterdir())) == 1
        worker = Process(
            [sys.executable, "-m", "rq.cli", "worker", "--burst", "-c", "workers.rqconfig",
             "--path", str(TESTS), "default"],
            env=serves.env(),
        )  # fmt: skip
        assert worker.stop(None, timeout=60) != 0
        (refusal,) = worker.err.strip().splitlines()
        assert refusal.startswith("rq worker -c workers.rqconfig: the Redis at ")
        assert str(serves.file) in refusal
        assert foreign.client.keys("*") == []  # nothing reached it: no records, no RQ worker
        again = serves.start()  # the foreign server is no serve of ours: the file is replaced
        assert json.loads(serves.file.read_text())["pid"] == again.pid
        assert again.stop(signal.SIGTERM, timeout=60) == 0
        assert "replacing the stale connection file" in again.err
    finally:
        foreign.stop()


def test_serve_on_a_taken_port_ends_in_one_line_and_writes_no_file(serves, other_user):
    port = free_port()
    foreign = Foreign(port, other_user)
    try:
        serve = serves.start_failing("--port", str(port))
        assert serve.returncode == RET_BROKER
        assert serve.err.strip().splitlines() == [
            f"Error: port {port} on 127.0.0.1 is in use by another program: pick another "
            "--port, or leave it out for a free one"
        ]
        assert not serves.file.exists()
        assert foreign.client.keys("*") == []
    finally:
        foreign.stop()


PRODUCER = """
import sys, time, workers
for i in range(int(sys.argv[1])):
    workers.emit({"i": i}, key=f"p{i}")
    time.sleep(0.02)
"""


def test_a_producer_follows_serve_to_its_new_port_without_a_flush(serves, tmp_path):
    first = serves.start("--port", str(free_port()))
    producer = Process(
        [sys.executable, "-c", PRODUCER, "400"],
        env=serves.env(COLLECTOR_EMIT_TIMEOUT="0.2", COLLECTOR_SPOOL_DIR=str(tmp_path / "sp")),
    )
    wait_until(lambda: len(stored_ids(serves.db_url)) >= 20, 60, "rows through the first serve")
    assert first.stop(signal.SIGTERM, timeout=60) == 0
    new_port = free_port()
    second = serves.start("--port", str(new_port))
    assert json.loads(serves.file.read_text())["port"] == new_port
    assert producer.stop(None, timeout=120) == 0, producer.err
    wait_for_rows(serves.db_url, {f"p{i}" for i in range(400)}, timeout=60)
    assert not list((tmp_path / "sp").glob("*.spool"))  # nothing left for a manual flush
    assert second.stop(signal.SIGTERM, timeout=60) == 0


def test_the_data_directory_and_its_files_are_private_even_when_it_existed(serves):
    serves.data.mkdir(mode=0o755)
    os.chmod(serves.data, 0o755)
    old = serves.data / "left-over.aof"
    old.write_text("x")
    old.chmod(0o644)
    serve = serves.start()
    assert serves.run(JOB, "0", "2").returncode == 0
    wait_for_rows(serves.db_url, {"r0", "r1"}, timeout=60)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [serves.data, *serves.data.rglob("*")]}
    assert len(modes) > 2  # the log and the append-only files are there
    loose = {str(p): oct(m) for p, m in modes.items() if m & 0o077}
    assert loose == {}
    assert serve.stop(signal.SIGTERM, timeout=60) == 0


def test_what_another_user_planted_in_a_loose_data_directory_is_refused(
    serves, tmp_path, other_user
):
    """A ``--dir`` that existed writable by others: a symbolic link planted in it (redis-server
    would write its log and append-only files where it points) or, as root, a file of theirs
    (still theirs after a chmod) ends serve in one line, with no connection file."""
    loot = tmp_path / "loot"
    loot.mkdir()
    serves.data.mkdir()
    os.chmod(serves.data, 0o777)
    link = serves.data / "appendonlydir"
    link.symlink_to(loot)
    theirs = serves.data / "redis.log"
    theirs.touch()
    if other_user is not None:
        entry = pwd.getpwnam(other_user)
        for path in (loot, link, theirs):
            os.lchown(path, entry.pw_uid, entry.pw_gid)
    serve = serves.start_failing()
    assert serve.returncode == RET_CONFIG
    assert serve.err.strip().splitlines() == [
        f"Error: --dir {serves.data}: {link} is a symbolic link, which serve does not follow; "
        "give serve a directory of your own"
    ]
    link.unlink()
    if other_user is not None:
        serve = serves.start_failing()
        assert serve.returncode == RET_CONFIG
        assert serve.err.strip().splitlines() == [
            f"Error: --dir {serves.data}: {theirs} belongs to another user; give serve a "
            "directory of your own"
        ]
    assert not serves.file.exists()
    assert list(loot.iterdir()) == []
    assert theirs.read_bytes() == b""


def test_the_status_page_answers_no_other_user_of_the_node(tmp_path, other_user):
    """Without a token the page (its tables, record previews in its dead letters) is this
    user's: another user's program connecting to its loopback port is refused."""
    if other_user is None:
        pytest.skip("being another user takes root")
    curl = shutil.which("curl") or missing("curl")
    web, base = start_web("redis://127.0.0.1:1/0", f"sqlite:///{tmp_path / 'r.db'}", "q")
    try:
        assert http_get(base + "/api/tables")[0] == 200
        theirs = subprocess.run(
            ["runuser", "-u", other_user, "--", curl, "-s", "-w", "\\n%{http_code}",
             base + "/api/tables"],
            capture_output=True, text=True, timeout=60, check=False, cwd="/",
        )  # fmt: skip
        body, code = theirs.stdout.rsplit("\n", 1)
        assert (code, json.loads(body)) == ("403", {
            "error": "without a token this page answers only to the user who started it, on "
            "this machine: start it with --token (or COLLECTOR_WEB_TOKEN) to share it"
        })  # fmt: skip
    finally:
        stop_web(web)


def test_a_config_directory_others_can_write_is_refused(serves, tmp_path, other_user):
    """Whoever can write into the config directory can put a connection file there that names
    their own server, server id included: nothing may trust a file in it."""
    port, server_id = free_port(), uuid.uuid4().hex
    foreign = Foreign(port, other_user, any_password=True, marker=f"rc-server-{server_id}")
    try:
        config = serves.file.parent
        config.mkdir(parents=True)
        os.chmod(config, 0o777)
        planted = {
            "name": "default", "url": f"redis://collector:x@127.0.0.1:{port}/0",
            "host": "127.0.0.1", "port": port, "pid": 1, "hostname": "elsewhere",
            "started": "2026-12-01T00:00:00+00:00", "queue": "collector:results",
            "server_id": server_id,
        }  # fmt: skip
        serves.file.write_text(json.dumps(planted))
        if other_user is not None:
            entry = pwd.getpwnam(other_user)
            os.chown(serves.file, entry.pw_uid, entry.pw_gid)
        refusal = (
            f"Error: {config} can be written by other users, who could replace the connection "
            f"files in it: make it yours alone (chmod 700 {config}) or pick another "
            "COLLECTOR_CONFIG_DIR"
        )
        emit = serves.run(*command("emit", "--table", "t", "x=1"), COLLECTOR_EMIT_TIMEOUT="0")
        assert (emit.returncode, emit.err.strip().splitlines()) == (RET_CONFIG, [refusal])
        status = serves.run(*command("status"))
        assert (status.returncode, status.err.strip().splitlines()) == (RET_CONFIG, [refusal])
        serve = serves.start_failing()
        assert (serve.returncode, serve.err.strip().splitlines()) == (RET_CONFIG, [refusal])
        assert foreign.client.keys("*") == []
    finally:
        foreign.stop()


def test_a_waiting_rq_worker_ends_when_serve_dies_and_takes_nothing_from_its_port(
    serves, tmp_path, other_user
):
    """RQ reconnects on its own: a worker left waiting when serve dies must not take (and
    unpickle) a job from whoever takes the port next; it ends in one line naming the file."""
    serve = serves.start()
    child = redis_child(serve)
    port = int(json.loads(serves.file.read_text())["port"])
    worker = Process(
        [sys.executable, "-m", "rq.cli", "worker", "-c", "workers.rqconfig",
         "-w", "rq.worker.SimpleWorker", "--path", str(TESTS), "guarded"],
        env=serves.env(),
    )  # fmt: skip
    foreign = None
    try:
        ours = redis.Redis.from_url(json.loads(serves.file.read_text())["url"])
        wait_until(lambda: ours.scard("rq:workers") == 1, 60, "the worker to register")
        ours.close()
        assert worker.poll() is None
        serve.stop(signal.SIGKILL)
        wait_until(lambda: not child.is_running(), 15, "redis-server to die with its parent")
        foreign = Foreign(port, other_user, any_password=True)
        marker = tmp_path / "ran"
        rq.Queue("guarded", connection=foreign.client).enqueue("os.system", f"touch {marker}")
        wait_until(lambda: worker.poll() is not None or marker.exists(), 60, "the worker's end")
        assert not marker.exists()
        assert worker.stop(None) != 0
        # RQ may log its own reconnect attempt while the guard writes: the guard's is one line
        (line,) = [x for x in worker.err.splitlines() if x.startswith("rq worker -c ")]
        assert line.startswith("rq worker -c workers.rqconfig: the Redis at "), worker.err
        assert str(serves.file) in line and "Traceback" not in worker.err
        assert foreign.client.llen("rq:queue:guarded") == 1  # the job is still there, untaken
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.stop(None)
        if foreign is not None:
            foreign.stop()
