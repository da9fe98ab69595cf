"""A spool directory (COLLECTOR_SPOOL_DIR) someone else owns or may write to could lose or
forge the records kept in it (its owner may remove, replace or link our files): spooling there
is refused in one line, the records not taken as kept."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest

from tests.helpers import second_user
from workers import EmitError, Emitter
from workers.spool import Spool


@pytest.fixture
def other_user() -> Iterator[str]:
    yield from second_user()


def down_emitter(spool: Path) -> Emitter:
    server = fakeredis.FakeServer()
    server.connected = False
    return Emitter(
        queue="q", spool_dir=spool, emit_timeout=0, client=fakeredis.FakeRedis(server=server)
    )


def test_a_spool_directory_another_user_owns_is_refused(tmp_path: Path, other_user: str) -> None:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o755)
    shutil.chown(spool, user=other_user)
    emitter = down_emitter(spool)
    with pytest.raises(EmitError) as refused:
        emitter.emit({"a": 1})
    emitter.close()
    uid = os.stat(spool).st_uid
    assert str(refused.value) == (
        f"Redis is unreachable and the spool {spool} cannot be written ({spool} is owned by uid "
        f"{uid} with mode 0755: it must be this user's (uid {os.getuid()}) and writable by "
        "nobody else); 1 record(s) not kept"
    )
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_a_spool_directory_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    spool.chmod(mode)
    with pytest.raises(EmitError, match=f"with mode {mode:04o}: it must be this user's"):
        Spool(spool).append("q", [b"x"])
    assert list(spool.iterdir()) == []


def test_a_link_to_our_own_private_directory_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "scratch"
    real.mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(real)  # ~/.cache on scratch storage
    path = Spool(tmp_path / "cache").append("q", [b"x"])
    assert path.parent == tmp_path / "cache" and [p.name for p in real.iterdir()] == [path.name]
