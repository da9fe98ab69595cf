"""A byte that is not UTF-8 in an emitter's environment (Python holds it as a lone surrogate):
in COLLECTOR_QUEUE it is a one-line ConfigError naming the variable, never a
UnicodeEncodeError; in a scheduler's job id it leaves ``_job`` NULL with one warning, and the
result is sent all the same."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers import Emitter, jobinfo
from workers.connection import Found
from workers.errors import ConfigError
from workers.jobinfo import scheduler_job_id
from workers.record import Record
from workers.settings import resolve_queue

SCHEDULER_VARS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "PBS_JOBID",
                  "LSB_JOBID", "LSB_JOBINDEX")  # fmt: skip
# a value the environment can hold that is not UTF-8: at least one escaped byte 0x80..0xff
undecodable = st.builds(
    lambda head, byte, tail: head + chr(0xDC00 + byte) + tail,
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
    st.integers(0x80, 0xFF),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
)


def test_emit_with_an_undecodable_queue_is_one_line_naming_it() -> None:
    code = "import workers; workers.emit({'a': 1})"
    env = {**os.environ, "COLLECTOR_QUEUE": "\udcff", "COLLECTOR_EMIT_TIMEOUT": "0"}
    env["COLLECTOR_REDIS_URL"] = "redis://127.0.0.1:1/0"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "UnicodeEncodeError" not in done.stderr
    assert (
        "workers.errors.ConfigError: COLLECTOR_QUEUE is not UTF-8 text: '\\udcff'"
        in (done.stderr.strip().splitlines()[-1])
    )


@given(queue=undecodable)
def test_any_undecodable_queue_is_refused_naming_the_variable(queue: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLLECTOR_QUEUE", queue)
        with pytest.raises(ConfigError) as refused:
            Emitter(redis_url="redis://127.0.0.1:1/0")
    assert str(refused.value) == f"COLLECTOR_QUEUE is not UTF-8 text: {queue!a}"


def test_an_undecodable_queue_argument_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        Emitter(redis_url="redis://127.0.0.1:1/0", queue="q\udcff")
    assert str(refused.value) == "the queue name is not UTF-8 text: 'q\\udcff'"


@given(name=st.sampled_from(SCHEDULER_VARS), value=undecodable)
def test_an_undecodable_job_id_leaves_the_job_unnamed(name: str, value: str) -> None:
    env = {"SLURM_JOB_ID": "201", "SLURM_ARRAY_JOB_ID": "200", "SLURM_ARRAY_TASK_ID": "0"}
    assert scheduler_job_id({**env, name: value}) is None


def test_emit_in_a_job_with_an_undecodable_id_sends_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    for name in SCHEDULER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "12\udcff")
    monkeypatch.setattr(jobinfo, "_warned", set())
    client = fakeredis.FakeRedis()
    emitter = Emitter(queue="q", spool_dir=tmp_path, client=client)
    with caplog.at_level(logging.WARNING, logger="workers.jobinfo"):
        emitter.emit({"a": 1}, key="k1")
        emitter.emit({"a": 2}, key="k2")
    emitter.close()
    records = [Record.decode(f[b"m"]) for _id, f in client.xrange("q")]
    assert [(r.id, r.job) for r in records] == [("k1", None), ("k2", None)]
    assert [r.getMessage() for r in caplog.records] == [
        "SLURM_JOB_ID is not UTF-8 text: records from this job have no job name"
    ]


@pytest.mark.parametrize(
    ("url", "line"),
    [
        ("redis://:s3cr\udcffet@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379/0?client_name=a\udcff", "redis://127.0.0.1:6379/0?client_name=a\\udcff"),
        ("redis://h\udcffst:6379/0", "redis://h\\udcffst:6379/0"),
    ],
)  # fmt: skip
def test_an_undecodable_redis_url_is_one_line_without_its_password(url: str, line: str) -> None:
    env = {**os.environ, "COLLECTOR_REDIS_URL": url, "COLLECTOR_EMIT_TIMEOUT": "0"}
    done = subprocess.run(
        [sys.executable, "-c", "import workers; workers.emit({'a': 1})"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        f"workers.errors.ConfigError: redis url holds a byte that is not UTF-8 text: {line}"
    )
    assert "s3cr" not in done.stderr


@pytest.mark.parametrize(
    ("url", "line"),
    [
        ("sqlite:///x\udcff.db", "sqlite:///x\\udcff.db"),
        ("postgresql+psycopg://u:s3cr\udcffet@127.0.0.1/test", "postgresql+psycopg://u:***@127.0.0.1/test"),
    ],
)  # fmt: skip
def test_an_undecodable_db_url_is_one_line_without_its_password(url: str, line: str) -> None:
    env = {**os.environ, "COLLECTOR_DB_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "collector", "status", "--redis-url", "redis://127.0.0.1:1/0"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        2,
        f"Error: database url holds a byte that is not UTF-8 text: {line}\n",
    )


def test_a_connection_file_queue_that_is_not_text_is_refused_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.delenv("COLLECTOR_QUEUE", raising=False)
    found = Found("redis://127.0.0.1:1/0", queue="q\udcff", file=tmp_path / "default.json")
    with pytest.raises(ConfigError) as refused:
        resolve_queue(None, found)  # JSON's "\udcff" escape reads as a lone surrogate
    assert str(refused.value) == f"the queue of {found.file} is not UTF-8 text: 'q\\udcff'"
