"""The spool file format, and the Emitter's retry -> spool -> re-send path (on fakeredis)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import fakeredis
import pytest
from click.testing import CliRunner

from collector.cli import main
from workers import EmitError, Emitter
from workers.entry import decode_records
from workers.settings import EmitterSettings
from workers.spool import FlushResult, Spool, frame, parse


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def make(tmp_path) -> Iterator[Callable[..., Emitter]]:
    """Emitters on queue ``q`` spooling to tmp_path, closed (and atexit hooks dropped) after."""
    made: list[Emitter] = []

    def build(**kwargs) -> Emitter:
        made.append(Emitter(queue="q", spool_dir=tmp_path, **kwargs))
        return made[-1]

    yield build
    for emitter in made:
        emitter.close()


@pytest.fixture
def client(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=server)


def stream_ids(client: fakeredis.FakeRedis, queue: str) -> list[str]:
    return [r.id for _, fields in client.xrange(queue) for r in decode_records(fields[b"m"])]


def spooled(directory: Path) -> list[tuple[str, bytes]]:
    entries: list[tuple[str, bytes]] = []
    for path in Spool(directory).files():
        entries += parse(path.read_bytes())[0]
    return entries


def test_frames_round_trip_and_a_torn_last_write_is_skipped() -> None:
    data = frame("q", b"one") + frame("q2", b"two")
    torn = frame("q", b"three")[:-2]
    assert parse(data) == ([("q", b"one"), ("q2", b"two")], 0)
    assert parse(data + torn) == ([("q", b"one"), ("q2", b"two")], 1)


def test_a_damaged_frame_in_the_middle_is_skipped_and_reading_resumes() -> None:
    bad = bytearray(frame("q", b"middle"))
    bad[-1] ^= 0xFF  # checksum no longer matches
    data = frame("q", b"a") + bytes(bad) + b"junk" + frame("q", b"z")
    assert parse(data) == ([("q", b"a"), ("q", b"z")], 1)  # one damaged span


def test_redis_down_spools_once_with_one_warning_and_returns_the_id(
    server, client, make, tmp_path, caplog
) -> None:
    emitter = make(client=client, emit_timeout=0)
    server.connected = False
    with caplog.at_level(logging.WARNING, logger="workers"):
        first = emitter.emit({"x": 1}, key="k1")
        rest = emitter.emit_many([{"x": 2}, {"x": 3}])
    assert first == "k1"
    assert [r.id for _, p in spooled(tmp_path) for r in decode_records(p)] == ["k1", *rest]
    assert {q for q, _ in spooled(tmp_path)} == {"q"}
    assert len(caplog.records) == 1
    assert "spooling records to" in caplog.records[0].getMessage()
    assert len(Spool(tmp_path).files()) == 1


def test_next_successful_emit_resends_the_spool(server, client, make, tmp_path) -> None:
    emitter = make(client=client, emit_timeout=0)
    server.connected = False
    spooled_ids = emitter.emit_many([{"x": 1}, {"x": 2}])
    server.connected = True
    later = emitter.emit({"x": 3})
    assert sorted(stream_ids(client, "q")) == sorted([*spooled_ids, later])
    assert Spool(tmp_path).files() == []


def test_retries_with_capped_backoff_until_redis_answers(server, client, make, tmp_path) -> None:
    delays: list[float] = []

    def sleep(delay: float) -> None:
        delays.append(delay)
        server.connected = len(delays) >= 8

    emitter = make(client=client, emit_timeout=60, sleep=sleep)
    server.connected = False
    rid = emitter.emit({"x": 1})
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert stream_ids(client, "q") == [rid]
    assert Spool(tmp_path).files() == []


def test_gives_up_after_emit_timeout_then_spools(server, client, make, tmp_path) -> None:
    emitter = make(client=client, emit_timeout=0.3)
    server.connected = False
    rid = emitter.emit({"x": 1})
    assert [r.id for _, p in spooled(tmp_path) for r in decode_records(p)] == [rid]


def test_while_spooling_a_send_is_tried_once(server, client, make, tmp_path) -> None:
    delays: list[float] = []
    emitter = make(client=client, emit_timeout=0.2, sleep=delays.append)
    server.connected = False
    emitter.emit({"x": 1})
    waited = len(delays)
    emitter.emit({"x": 2})
    assert waited > 0
    assert len(delays) == waited
    assert len(spooled(tmp_path)) == 2


def test_an_unwritable_spool_raises_emit_error(server, client, make, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    emitter = Emitter(queue="q", client=client, emit_timeout=0, spool_dir=blocker / "spool")
    server.connected = False
    with pytest.raises(EmitError, match="cannot be written"):
        emitter.emit({"x": 1})


def test_flush_spool_keeps_records_while_redis_is_down(server, client, make, tmp_path) -> None:
    emitter = make(client=client, emit_timeout=0)
    server.connected = False
    rid = emitter.emit({"x": 1})
    emitter.flush_spool()
    assert [r.id for _, p in spooled(tmp_path) for r in decode_records(p)] == [rid]
    server.connected = True
    emitter.flush_spool()
    assert stream_ids(client, "q") == [rid]
    assert Spool(tmp_path).files() == []


def test_a_failed_flush_keeps_exactly_the_undelivered_records(tmp_path) -> None:
    spool = Spool(tmp_path)
    spool.append("q", [f"r{i}".encode() for i in range(2500)])
    sent: list[bytes] = []

    def send(queue: str, payloads: list[bytes]) -> None:
        if len(sent) >= 1000:
            raise ConnectionError("gone")
        sent.extend(payloads)

    with pytest.raises(ConnectionError):
        spool.flush(send)
    assert sent == [f"r{i}".encode() for i in range(1000)]
    assert [p for _, p in spooled(tmp_path)] == [f"r{i}".encode() for i in range(1000, 2500)]
    assert spool.flush(lambda q, p: None) == FlushResult(sent=1500, left=0, skipped=0)
    assert spool.files() == []


def test_an_append_after_a_flush_removed_the_file_is_not_lost(tmp_path) -> None:
    spool = Spool(tmp_path)
    spool.append("q", [b"a"])
    assert spool.flush(lambda q, p: None).sent == 1
    spool.append("q", [b"b"])
    assert spooled(tmp_path) == [("q", b"b")]


def test_spool_files_are_private_and_one_per_process(tmp_path) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.append("q", [b"a"])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert str(os.getpid()) in path.name


def test_settings_read_timeout_and_spool_dir_from_env(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("COLLECTOR_EMIT_TIMEOUT", "2.5")
    monkeypatch.setenv("COLLECTOR_SPOOL_DIR", str(tmp_path))
    env = EmitterSettings.from_env()
    assert (env.emit_timeout, env.spool_dir) == (2.5, tmp_path)
    monkeypatch.setenv("COLLECTOR_EMIT_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="COLLECTOR_EMIT_TIMEOUT"):
        EmitterSettings.from_env()


def test_default_spool_dir_is_in_the_users_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("COLLECTOR_SPOOL_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert EmitterSettings.from_env().spool_dir == tmp_path / "result-collector" / "spool"


def test_cli_spool_flush_reports_an_empty_directory(tmp_path) -> None:
    result = CliRunner().invoke(main, ["spool", "flush", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"no spooled records in {tmp_path}"


def test_a_resend_failure_other_than_the_connection_does_not_fail_the_emit(
    server, client, make, tmp_path, monkeypatch, caplog
) -> None:
    emitter = make(client=client, emit_timeout=0)
    server.connected = False
    first = emitter.emit({"x": 1})

    def broken(*_args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(emitter.spool, "flush", broken)
    server.connected = True
    with caplog.at_level(logging.WARNING, logger="workers"):
        second = emitter.emit({"x": 2})
    assert stream_ids(client, "q") == [second]
    assert "could not re-send the spool" in caplog.text
    assert [r.id for _, p in spooled(tmp_path) for r in decode_records(p)] == [first]


def test_a_partial_flush_never_writes_through_a_planted_link(tmp_path) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.append("q", [b"r%d" % i for i in range(1500)])
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    path.with_name(path.name + ".tmp").symlink_to(victim)  # left by someone, or by a crash

    sent: list[bytes] = []

    def send(queue: str, payloads: list[bytes]) -> None:
        if sent:
            raise ConnectionError("gone")
        sent.extend(payloads)

    with pytest.raises(ConnectionError):
        spool.flush(send)  # the first 1000 went: the file is rewritten with the 500 left
    assert [p for _, p in spooled(tmp_path / "spool")] == [b"r%d" % i for i in range(1000, 1500)]
    assert victim.read_bytes() == b"precious"
