"""docs/from-the-tutorial.md, run: the Database IO tutorial's three scripts (define_data.py, the
``session.add``/``commit`` writer, the reader), taken from its page in docs/, against a SQLite
file; beside them the page's replacements (``emit``, a collector, ``collector.read``), and the
rows compared. Also the page's duplicate-row warning: four rows both ways, two with keys."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from collector.models import load_models
from collector.output.read import read
from collector.settings import Settings
from tests.helpers import on_real_redis, run_collector
from workers.emitter import Emitter

DOCS = Path(__file__).resolve().parents[1] / "docs"
# A printed row: "1  :  1.0 ,  2.0  :  3.0" (the tutorial's, with its id) or "1.0 , 2.0 : 3.0"
# (ours); the tutorial's engine also logs its SQL on stdout (echo=True), which this skips.
ROW = re.compile(r"^(?:\d+ +: +)?(\S+) +, +(\S+) +: +(\S+)$")
TUTORIAL_ROWS = [(1.0, 2.0, 3.0), (1.2, 2.5, 9.8), (1.0, 2.0, 3.0), (1.2, 2.5, 9.8)]


def code_blocks(page: str, fence: str) -> list[str]:
    """The code blocks of docs/``page`` opened with ``fence`` (```Python, ```python)."""
    text = (DOCS / page).read_text()
    return re.findall(rf"^{re.escape(fence)}\n(.*?)^```$", text, flags=re.M | re.S)


def replacement(name: str) -> str:
    """The block of docs/from-the-tutorial.md whose first line is ``# NAME: ...``."""
    [block] = [b for b in code_blocks("from-the-tutorial.md", "```python") if b.startswith(name)]
    return block


def run(script: Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def printed_rows(output: str) -> list[tuple[float, ...]]:
    """The (I, J, K) of each row a reader printed."""
    found = (ROW.match(line) for line in output.splitlines())
    return [tuple(float(n) for n in match.groups()) for match in found if match]


def tutorial_rows(folder: Path) -> list[tuple[float, ...]]:
    """Run the tutorial's three scripts, as its page has them, in ``folder``; the reader's rows."""
    define, write, read_back = code_blocks("database-io-tutorial.md", "```Python")
    for name, source in (("define_data", define), ("write", write), ("read", read_back)):
        (folder / f"{name}.py").write_text(source)
    run(folder / "define_data.py", folder)
    run(folder / "write.py", folder)
    output = run(folder / "read.py", folder)
    return printed_rows(output)


def test_the_tutorial_page_has_the_three_scripts_the_side_by_side_page_shows() -> None:
    define, write, read_back = code_blocks("database-io-tutorial.md", "```Python")
    side = "\n".join(code_blocks("from-the-tutorial.md", "```python"))
    for script in (define, write, read_back):
        assert script in side  # the left column is the tutorial, verbatim
    assert "class Data(Base)" in define and "session.commit()" in write
    assert "session.query(Data)" in read_back


@pytest.mark.redis
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.MovedIn20Warning")
def test_the_tutorial_and_its_replacement_store_the_same_rows(
    real_redis: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "tutorial").mkdir()
    tutorial = tutorial_rows(tmp_path / "tutorial")
    assert tutorial == TUTORIAL_ROWS  # the repeat is stored again: four rows

    ours = on_real_redis(settings)
    (tmp_path / "write.py").write_text(replacement("# write.py"))
    (tmp_path / "read.py").write_text(replacement("# read.py"))
    env = {
        **os.environ,
        "COLLECTOR_REDIS_URL": ours.redis_url,
        "COLLECTOR_QUEUE": ours.queue,
        "COLLECTOR_DB_URL": ours.db_url,
    }
    run(tmp_path / "write.py", tmp_path, env)
    counters = run_collector(ours)
    assert counters.stored == 4
    assert printed_rows(run(tmp_path / "read.py", tmp_path, env)) == tutorial


@pytest.mark.redis
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.MovedIn20Warning")
def test_with_the_tutorials_own_model_the_rows_are_the_same(
    real_redis: redis.Redis, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    define, _write, _read = code_blocks("database-io-tutorial.md", "```Python")
    (tmp_path / "define_data.py").write_text(define)
    monkeypatch.syspath_prepend(str(tmp_path))
    ours = on_real_redis(settings)
    emitter = Emitter(ours.redis_url, ours.queue)
    for _ in range(2):
        emitter.emit({"input_I": 1, "input_J": 2, "result_K": 3}, table="data")
        emitter.emit({"input_I": 1.2, "input_J": 2.5, "result_K": 9.8}, table="data")
    emitter.close()
    try:
        run_collector(ours, declared=load_models("define_data"))
    finally:
        sys.modules.pop("define_data", None)
    frame = read("data", ours.db_url)
    assert list(frame["id"]) == [1, 2, 3, 4]  # the model's own counter, as in the tutorial
    assert list(frame[["input_I", "input_J", "result_K"]].itertuples(index=False, name=None)) == (
        TUTORIAL_ROWS
    )


@pytest.mark.redis
def test_with_keys_a_repeated_result_is_one_row(
    real_redis: redis.Redis, settings: Settings
) -> None:
    ours = on_real_redis(settings)
    emitter = Emitter(ours.redis_url, ours.queue)
    for _ in range(2):
        emitter.emit({"input_I": 1, "input_J": 2, "result_K": 3}, table="data", key="I=1,J=2")
        emitter.emit({"input_I": 1.2, "input_J": 2.5, "result_K": 9.8}, table="data", key="I=1.2")
    emitter.close()
    run_collector(ours)
    frame = read("data", ours.db_url)
    assert sorted(frame["_id"]) == ["I=1,J=2", "I=1.2"]
    assert sorted(frame[["input_I", "input_J", "result_K"]].itertuples(index=False, name=None)) == (
        [(1.0, 2.0, 3.0), (1.2, 2.5, 9.8)]
    )
