"""The directory of the SQLite identity locks, ``/tmp/result-collector-<uid>``, has a name
another user of the host can guess: one they made first (or a link, or one others may write
to) is refused in one line, never used; ours is created 0700."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector import lock
from collector.errors import ConfigError
from collector.lock import WriterLock
from tests.helpers import second_user


@pytest.fixture
def other_user() -> Iterator[str]:
    yield from second_user()


@pytest.fixture
def host_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shared = tmp_path / "tmp"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    monkeypatch.setattr(lock, "host_tmp", lambda: str(shared))
    return shared


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "results.db"
    path.write_bytes(b"")
    return path


def private(host_tmp: Path) -> Path:
    return host_tmp / f"result-collector-{os.getuid()}"


def refused(db: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        WriterLock(str(db)).acquire()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_directory_is_created_0700_and_owned_by_us(host_tmp: Path, db: Path) -> None:
    old = os.umask(0)  # the widest umask: the mode must not depend on it
    try:
        held = WriterLock(str(db))
        held.acquire()
        held.release()
    finally:
        os.umask(old)
    found = os.lstat(private(host_tmp))
    assert (stat.S_ISDIR(found.st_mode), stat.S_IMODE(found.st_mode)) == (True, 0o700)
    assert found.st_uid == os.getuid()


def test_a_directory_another_user_made_first_is_refused(
    host_tmp: Path, db: Path, other_user: str
) -> None:
    planted = private(host_tmp)
    planted.mkdir(mode=0o700)
    shutil.chown(planted, user=other_user)
    uid = os.lstat(planted).st_uid
    message = refused(db)
    assert message.startswith(f"{planted} is owned by uid {uid} with mode 0700: ")
    assert list(planted.iterdir()) == []  # nothing made in it


@pytest.mark.parametrize("mode", [0o777, 0o720, 0o702])
def test_our_directory_writable_by_others_is_refused(host_tmp: Path, db: Path, mode: int) -> None:
    planted = private(host_tmp)
    planted.mkdir()
    planted.chmod(mode)
    assert refused(db).startswith(f"{planted} is owned by uid {os.getuid()} with mode {mode:04o}")
    assert list(planted.iterdir()) == []


def test_a_link_in_place_of_the_directory_is_refused(
    host_tmp: Path, db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "theirs"
    target.mkdir(mode=0o700)
    private(host_tmp).symlink_to(target)
    assert refused(db).startswith(f"{private(host_tmp)} is not a directory; remove it")
    assert list(target.iterdir()) == []


def test_a_link_in_place_of_the_lock_file_is_not_followed(
    host_tmp: Path, db: Path, tmp_path: Path
) -> None:
    directory = private(host_tmp)
    directory.mkdir(mode=0o700)
    found = os.stat(db)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (directory / f"{found.st_dev}-{found.st_ino}.lock").symlink_to(victim)
    assert refused(db).startswith(f"cannot open {directory}/{found.st_dev}-{found.st_ino}.lock")
    assert victim.read_bytes() == b"precious"
