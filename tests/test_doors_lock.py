"""The SQLite writer lock is taken on the file itself: a symbolic or hard link to the same
database cannot open a second writer; the lock file names its holder; a file system that cannot
lock is one line; a network file system gets one line saying what to do, and never WAL."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector import netfs
from collector.daemon import Collector
from collector.db import make_engine
from collector.errors import RET_CONFIG, AlreadyRunning, ConfigError
from collector.lock import WriterLock
from collector.settings import Settings
from workers.jobinfo import host_name


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "results.db"
    path.parent.mkdir()
    path.write_bytes(b"")
    return path


def other_names(db: Path) -> dict[str, Path]:
    """The same database file reached by a symbolic link and by a hard link, elsewhere."""
    elsewhere = db.parent.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    (elsewhere / "link.db").symlink_to(db)
    os.link(db, elsewhere / "hard.db")
    return {"symlink": elsewhere / "link.db", "hardlink": elsewhere / "hard.db"}


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_second_writer_through_another_name_is_refused(db: Path, kind: str) -> None:
    other = other_names(db)[kind]
    first = WriterLock(str(db))
    first.acquire()
    try:
        with pytest.raises(AlreadyRunning) as refused:
            WriterLock(str(other)).acquire()
        assert f"(pid {os.getpid()} on host {host_name()})" in str(refused.value)
    finally:
        first.release()
    second = WriterLock(str(other))
    second.acquire()  # free again once the first let go
    second.release()


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_second_collector_through_a_link_is_refused(
    db: Path, settings: Settings, kind: str
) -> None:
    other = other_names(db)[kind]
    first = Collector(dataclasses.replace(settings, db_url=f"sqlite:///{db}"))
    first.start()
    try:
        second = Collector(dataclasses.replace(settings, db_url=f"sqlite:///{other}"))
        with pytest.raises(AlreadyRunning, match="already writes to"):
            second.start()
        second.close()
    finally:
        first.close()


def test_the_lock_file_names_host_and_pid(db: Path) -> None:
    lock = WriterLock(str(db))
    lock.acquire()
    try:
        assert Path(lock.path).read_text() == f"pid {os.getpid()} on host {host_name()}\n"
        assert lock.path == f"{db}.collector.lock"
    finally:
        lock.release()


FLOCK_FAILS = """
import errno, fcntl, sys
def flock(fd, op):
    raise OSError(errno.ENOLCK, "No locks available")
fcntl.flock = flock
from collector.cli import main
sys.argv = ["collector", *sys.argv[1:]]
main()
"""


def test_a_lock_the_file_system_refuses_is_one_line(db: Path) -> None:
    argv = [sys.executable, "-c", FLOCK_FAILS, "run", "--db-url", f"sqlite:///{db}"]
    argv += ["--redis-url", "redis://127.0.0.1:6379/0", "--queue", "test:doors:lock"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == RET_CONFIG
    assert done.stderr.splitlines()[-1] == (
        f"Error: cannot lock {db}.collector.lock (No locks available): {netfs.ADVICE}"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("magic", "name"), sorted(netfs.NETWORK.items()))
def test_each_network_file_system_gets_its_line_and_no_wal(
    db: Path, monkeypatch: pytest.MonkeyPatch, magic: int, name: str
) -> None:
    monkeypatch.setattr(netfs, "probe", lambda _path: magic)
    assert netfs.network_warning(str(db)) == (
        f"the SQLite file {db} is on a network file system ({name}): {netfs.ADVICE}"
    )
    assert journal(f"sqlite:///{db}") == "delete"


def test_a_local_file_system_passes_and_keeps_wal(db: Path) -> None:
    assert netfs.probe(str(db)) is not None  # the real probe answers on Linux
    assert netfs.network_warning(str(db)) is None
    assert journal(f"sqlite:///{db}") == "wal"


def test_a_collector_on_a_network_file_system_warns_once_in_one_line(
    db: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(netfs, "probe", lambda _path: 0x6969)
    daemon = Collector(dataclasses.replace(settings, db_url=f"sqlite:///{db}"))
    with caplog.at_level(logging.WARNING, logger="collector.lock"):
        daemon.start()
    daemon.close()
    assert caplog.messages == [
        f"the SQLite file {db} is on a network file system (NFS): {netfs.ADVICE}"
    ]


def test_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot open .*: No such file or directory"):
        WriterLock(str(tmp_path / "nowhere" / "results.db")).acquire()


def test_the_database_file_itself_is_never_opened_once_it_exists(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(
        os, "open", lambda path, *a: opened.append(str(path)) or real_open(path, *a)
    )
    lock = WriterLock(str(db))
    lock.acquire()
    lock.release()
    assert str(db) not in opened  # closing such a descriptor would drop SQLite's POSIX locks


def journal(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
    finally:
        engine.dispose()


def test_the_probe_looks_at_the_directory_of_a_file_not_created_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    monkeypatch.setattr(netfs, "probe", lambda path: seen.append(path))
    assert netfs.network_fs(str(tmp_path / "new.db")) is None
    assert seen == [str(tmp_path)]


def test_a_hard_link_is_refused_whatever_tmpdir_each_collector_has(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    other = other_names(db)["hardlink"]
    (tmp_path / "job1").mkdir()
    (tmp_path / "job2").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "job1"))  # TMPDIR=... of one job
    first = WriterLock(str(db))
    first.acquire()
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "job2"))  # and of another
        with pytest.raises(AlreadyRunning):
            WriterLock(str(other)).acquire()
    finally:
        first.release()
