"""Layering: the node side (``workers``) never pulls in SQLAlchemy or the collector, nor Dask
(jobs without Dask must not pay for importing it)."""

from __future__ import annotations

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
