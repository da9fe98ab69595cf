"""Layering: the node side (``workers``) never pulls in SQLAlchemy or the collector, nor Dask
(jobs without Dask must not pay for importing it); on the collector side the reader and the
sink are separate seams that only the daemon joins."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import sys
import fakeredis
import workers
from workers import Emitter, collect

assert not {names}, "imported by `import workers`: " + ", ".join(sorted({names}))

@collect(table="t", emitter=Emitter(client=fakeredis.FakeRedis()))
def f(x):
    return {{"y": x}}

assert f(1) == {{"y": 1}}
assert not {names}, "imported by using collect: " + ", ".join(sorted({names}))
print("ok")
"""
FORBIDDEN = (
    "[m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'collector', 'dask', "
    "'distributed')]"
)


def test_workers_imports_neither_sqlalchemy_nor_collector_nor_dask() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(names=FORBIDDEN)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


SEAMS = """
import importlib, json, sys
importlib.import_module({module!r})
loaded = {{m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'collector')}}
print(json.dumps(sorted(m for m in loaded if m.startswith({forbidden!r}))))
"""
READ_SIDE = ("collector.reader", "collector.shards", "collector.stream", "collector.batch")
WRITE_SIDE = (
    "collector.sink", "collector.store", "collector.dialects.sqlite",
    "collector.dialects.postgresql", "collector.dialects.mysql",
)  # fmt: skip
# what each side must not load: the reader knows no database, the sink and the store no reader
# (nor Redis commands), and neither side knows the daemon that joins them or the CLI
NOT_ON_READ_SIDE = ("sqlalchemy", "collector.store", "collector.dialects", "collector.sink")
NOT_ON_WRITE_SIDE = ("collector.reader", "collector.shards", "collector.stream", "collector.batch")
NEITHER = ("collector.daemon", "collector.pipeline", "collector.cli", "collector.service")


def loaded_by(module: str, forbidden: tuple[str, ...]) -> list[str]:
    """The modules among ``forbidden`` (prefixes) that importing ``module`` alone loads."""
    result = subprocess.run(
        [sys.executable, "-c", SEAMS.format(module=module, forbidden=forbidden)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found: list[str] = json.loads(result.stdout)
    return found


def test_the_reader_and_the_sink_are_separate_seams() -> None:
    for module in READ_SIDE:
        assert loaded_by(module, NOT_ON_READ_SIDE + NEITHER) == [], module
    for module in WRITE_SIDE:
        assert loaded_by(module, NOT_ON_WRITE_SIDE + NEITHER) == [], module
