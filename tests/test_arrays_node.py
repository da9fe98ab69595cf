"""The node side of arrays: a job that sends none loads neither numpy nor h5py, and the
emitter's spool keeps 8 MiB arrays exactly while Redis is away."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import fakeredis
import numpy as np

import collector
from collector.daemon import Collector
from tests.helpers import drain
from tests.test_arrays import same
from workers.checks import Limits
from workers.emitter import Emitter
from workers.spool import Spool, parse

CHECK = """
import sys
import workers
from workers.record import Record
Record("r", "t", {"a": [1.5, 2], "b": b"x", "c": "y"}).encode()  # what emit sends
print(sorted(m for m in ("numpy", "h5py") if m in sys.modules))
"""


def test_a_job_without_arrays_imports_neither_numpy_nor_h5py() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_8_mib_arrays_spooled_while_redis_is_away_arrive_and_are_stored_exactly(
    settings, tmp_path
) -> None:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    spool_dir = tmp_path / "spool"
    emitter = Emitter(queue=settings.queue, client=client, spool_dir=spool_dir, emit_timeout=0)
    sent = {f"r{i}": np.random.default_rng(i).standard_normal(1 << 20) for i in range(3)}
    server.connected = False
    for rid, value in sent.items():
        emitter.emit({"K": value}, table="arr", key=rid)
    emitter.emit_many([{"K": value} for value in sent.values()], table="many")
    [path] = Spool(spool_dir).files()
    assert parse(path.read_bytes())[1] == 0  # every frame written reads back
    server.connected = True
    emitter.close()  # re-sends the spool
    assert list(spool_dir.iterdir()) == []
    limits = Limits(max_record_bytes=16 << 20)
    daemon = Collector(replace(settings, limits=limits), client=client)
    daemon.start()
    drain(daemon)
    daemon.close()
    frame = collector.read("arr", settings.db_url)
    assert {rid: same(k, sent[rid]) for rid, k in zip(frame["_id"], frame["K"], strict=True)} == {
        rid: True for rid in sent
    }
    many = sorted(collector.read("many", settings.db_url)["K"], key=lambda a: a[0])
    assert all(
        same(a, b) for a, b in zip(many, sorted(sent.values(), key=lambda a: a[0]), strict=True)
    )
