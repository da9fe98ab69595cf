"""The connection file of ``collector serve``: how emitters and commands find Redis through it
(COLLECTOR_REDIS_URL first, then the file COLLECTOR_SERVER names, then the default), its mode,
and the one-line error when its server does not answer."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import workers
from collector.cli import main
from collector.errors import RET_BROKER, RET_CONFIG, ConfigError
from collector.server.process import free_port
from collector.settings import Settings
from workers import Emitter
from workers.connection import ServerInfo, check_private, connection_file, find_server
from workers.settings import DEFAULT_QUEUE, DEFAULT_REDIS_URL, EmitterSettings

PASSWORD = "s3cret-pass"


def write_file(name: str = "default", port: int = 6390, queue: str = "q:serve") -> Path:
    info = ServerInfo(
        name=name, url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0", host="127.0.0.1", port=port,
        pid=os.getpid(), hostname="node1", started="2026-11-29T00:00:00+00:00", queue=queue,
    )  # fmt: skip
    path = connection_file(name)
    info.write(path)
    return path


def test_the_file_is_written_0600_in_a_0700_directory_and_reads_back(tmp_path):
    path = write_file()
    assert path == tmp_path / "config" / "default.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    info = ServerInfo.read(path)
    assert info is not None and (info.url, info.port, info.queue, info.slurm_job_id) == (
        f"redis://:{PASSWORD}@127.0.0.1:6390/0", 6390, "q:serve", None,
    )  # fmt: skip
    assert PASSWORD not in repr(info)
    assert [p.name for p in path.parent.iterdir()] == ["default.json"]  # no temp file left


def test_emitters_use_the_environment_then_the_file_then_the_default(monkeypatch):
    assert (EmitterSettings.from_env().redis_url, find_server().file) == (DEFAULT_REDIS_URL, None)
    path = write_file()
    settings = EmitterSettings.from_env()
    assert (settings.redis_url, settings.queue, settings.connection_file) == (
        f"redis://:{PASSWORD}@127.0.0.1:6390/0", "q:serve", path,
    )  # fmt: skip
    assert PASSWORD not in repr(settings)
    monkeypatch.setenv("COLLECTOR_QUEUE", "q:mine")
    assert EmitterSettings.from_env().queue == "q:mine"
    monkeypatch.setenv("COLLECTOR_REDIS_URL", "redis://elsewhere:6379/1")
    settings = EmitterSettings.from_env()
    assert (settings.redis_url, settings.queue, settings.connection_file) == (
        "redis://elsewhere:6379/1", "q:mine", None,
    )  # fmt: skip


def test_collector_server_names_the_file(monkeypatch):
    write_file("default", port=6390)
    write_file("sweep2", port=6391, queue=DEFAULT_QUEUE)
    monkeypatch.setenv("COLLECTOR_SERVER", "sweep2")
    assert EmitterSettings.from_env().redis_url == f"redis://:{PASSWORD}@127.0.0.1:6391/0"
    monkeypatch.setenv("COLLECTOR_SERVER", "nobody")  # no such file: the default URL
    assert EmitterSettings.from_env().redis_url == DEFAULT_REDIS_URL
    monkeypatch.setenv("COLLECTOR_SERVER", "../../etc/passwd")
    with pytest.raises(ValueError, match=r"server name must match"):
        EmitterSettings.from_env()


def test_a_damaged_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "config" / "default.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"^{path} is not a collector serve connection file"):
        EmitterSettings.from_env()
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == RET_CONFIG
    assert result.output.startswith(f"Error: {path} is not a collector serve connection file (")
    assert len(result.output.strip().splitlines()) == 1


def test_a_command_whose_file_names_a_silent_server_fails_in_one_line_naming_it():
    path = write_file(port=free_port("127.0.0.1"))
    for args in (["status"], ["dead", "list"], ["sweep", "status", "s1"], ["spool", "flush"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == RET_BROKER, (args, result.output)
        assert result.output.splitlines() == [
            f"Error: no Redis answers at redis://:***@127.0.0.1:{ServerInfo.read(path).port}/0, "  # type: ignore[union-attr]
            f"named in {path}: is `collector serve` still running? (COLLECTOR_REDIS_URL or "
            "COLLECTOR_SERVER pick another)"
        ], args


def test_emit_through_a_silent_server_spools_and_the_warning_names_the_file(
    monkeypatch, tmp_path, caplog
):
    port = free_port("127.0.0.1")
    path = write_file(port=port)
    monkeypatch.setenv("COLLECTOR_EMIT_TIMEOUT", "0")
    with caplog.at_level(logging.WARNING, logger="workers.delivery"):
        record_id = workers.emit({"x": 1}, key="k1")
    assert record_id == "k1"
    assert [f.suffix for f in (tmp_path / "spool").iterdir()] == [".spool"]
    assert f"redis at redis://:***@127.0.0.1:{port}/0 (from {path}) took no records" in caplog.text
    assert PASSWORD not in caplog.text


def test_collector_emit_spools_through_a_silent_server_instead_of_failing(monkeypatch, tmp_path):
    write_file(port=free_port("127.0.0.1"))
    monkeypatch.setenv("COLLECTOR_EMIT_TIMEOUT", "0")
    result = CliRunner().invoke(main, ["emit", "--table", "t", "--key", "k2", "x=1"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "k2"
    assert len(list((tmp_path / "spool").iterdir())) == 1


def test_settings_from_env_use_the_file_as_emitters_and_commands_do(monkeypatch):
    path = write_file(port=6390, queue="q:serve")
    settings = Settings.from_env()
    assert (settings.redis_url, settings.queue) == (
        f"redis://:{PASSWORD}@127.0.0.1:6390/0", "q:serve",
    )  # fmt: skip
    assert EmitterSettings.from_env().redis_url == settings.redis_url
    assert PASSWORD not in repr(settings)
    given = Settings.from_env(redis_url="redis://other:6379/0", queue="q:given")
    assert (given.redis_url, given.queue) == ("redis://other:6379/0", "q:given")
    monkeypatch.setenv("COLLECTOR_REDIS_URL", "redis://elsewhere:6379/1")
    assert (Settings.from_env().redis_url, Settings.from_env().queue) == (
        "redis://elsewhere:6379/1", DEFAULT_QUEUE,
    )  # fmt: skip
    path.write_text("{damaged")
    monkeypatch.delenv("COLLECTOR_REDIS_URL")
    with pytest.raises(ConfigError, match=f"^{path} is not a collector serve connection file"):
        Settings.from_env()


def test_an_emitter_given_everything_reads_no_variable(monkeypatch, tmp_path):
    for name, bad in (
        ("COLLECTOR_EMIT_TIMEOUT", "soon"), ("COLLECTOR_SHARDS", "many"),
        ("COLLECTOR_SERVER", "../x"), ("COLLECTOR_REDIS_URL", "nonsense"),
    ):  # fmt: skip
        monkeypatch.setenv(name, bad)
    emitter = Emitter(
        "redis://127.0.0.1:1/0", "q", emit_timeout=0, spool_dir=tmp_path / "s", shards=1
    )
    assert (emitter.redis_url, emitter.queue, emitter.emit_timeout) == (
        "redis://127.0.0.1:1/0", "q", 0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="COLLECTOR_EMIT_TIMEOUT must be a number"):
        Emitter("redis://127.0.0.1:1/0", "q", spool_dir=tmp_path / "s", shards=1)
    settings = Settings.from_env(redis_url="redis://h:6379/0", shards=2, db_url="sqlite://")
    assert settings.shards == 2


def test_no_config_directory_means_the_default_url(tmp_path):
    assert not (tmp_path / "config").exists()
    assert Settings.from_env().redis_url == DEFAULT_REDIS_URL
    assert Emitter().redis_url == DEFAULT_REDIS_URL


def test_a_config_directory_without_its_file_means_serve_is_not_up_yet(monkeypatch, tmp_path):
    """Never localhost: emitters retry, then spool; commands and the settings fail in one line."""
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "default.json"
    line = (
        f"no connection file {path}: `collector serve` is not running (yet); start it, or set "
        "COLLECTOR_REDIS_URL for a Redis of your own"
    )
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    assert str(caught.value) == line
    result = CliRunner().invoke(main, ["status"])
    assert (result.exit_code, result.output.splitlines()) == (RET_BROKER, [f"Error: {line}"])
    delays: list[float] = []
    emitter = Emitter(emit_timeout=0.3, sleep=delays.append)
    assert emitter.emit({"x": 1}, key="k1") == "k1"
    assert delays and len(list((tmp_path / "spool").iterdir())) == 1
    emitter.close()


def rq_settings(env_dir: Path) -> subprocess.CompletedProcess[str]:
    """Import RQ's settings module as ``rq worker -c workers.rqconfig`` does."""
    env = {**os.environ, "COLLECTOR_CONFIG_DIR": str(env_dir)}
    return subprocess.run(
        [sys.executable, "-c", "import workers.rqconfig"], env=env, capture_output=True, text=True
    )


def test_rq_settings_refuse_a_missing_file_or_a_silent_server_in_one_line(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    missing = rq_settings(config)
    assert (missing.returncode, missing.stderr.splitlines()) == (1, [
        f"rq worker -c workers.rqconfig: no connection file {config / 'default.json'}: "
        "`collector serve` is not running (yet); start it, or set COLLECTOR_REDIS_URL for a "
        "Redis of your own"
    ])  # fmt: skip
    port = free_port("127.0.0.1")
    path = write_file(port=port)
    silent = rq_settings(config)
    assert (silent.returncode, silent.stderr.splitlines()) == (1, [
        f"rq worker -c workers.rqconfig: no Redis answers at redis://:***@127.0.0.1:{port}/0, "
        f"named in {path}: is `collector serve` still running? (COLLECTOR_REDIS_URL or "
        "COLLECTOR_SERVER pick another)"
    ])  # fmt: skip
    assert PASSWORD not in silent.stderr


def test_a_bad_url_in_the_file_is_one_line_naming_the_file():
    path = write_file(port=99999)  # a port no Redis can have
    for args in (["status"], ["dead", "list"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == RET_CONFIG, (args, result.output)
        assert result.output.splitlines() == [
            f"Error: {path}: redis url port 99999 is outside 1-65535: "
            f"redis://:***@127.0.0.1:99999/0"
        ], args
    with pytest.raises(ConfigError, match=f"^{path}: redis url port 99999"):
        EmitterSettings.from_env()


@settings(max_examples=40, deadline=None)
@given(mode=st.integers(0o700, 0o777))
def test_a_config_directory_is_trusted_exactly_when_only_its_owner_can_write(
    tmp_path_factory, mode
):
    folder = tmp_path_factory.mktemp("config")
    folder.chmod(mode)
    if mode & 0o022:
        with pytest.raises(ValueError, match="can be written by other users"):
            check_private(folder)
    else:
        check_private(folder)
    check_private(folder / "missing")  # not there: nothing to trust yet


def test_find_server_refuses_a_config_directory_others_can_write(monkeypatch, tmp_path):
    folder = tmp_path / "loose"
    folder.mkdir()
    folder.chmod(0o777)
    monkeypatch.setenv("COLLECTOR_CONFIG_DIR", str(folder))
    monkeypatch.delenv("COLLECTOR_REDIS_URL", raising=False)
    with pytest.raises(ValueError) as caught:
        find_server()
    assert str(caught.value).startswith(f"{folder} can be written by other users")
    with pytest.raises(ValueError):
        write_file()
    assert list(folder.iterdir()) == []
