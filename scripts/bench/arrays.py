"""Arrays of 8 MB: emit -> collector -> HDF5 (``--arrays``), against a ceiling of library calls.

ours: one producer process ``emit``s N records of one 8 MB float64 array each while
``collector run --arrays`` drains them into an HDF5 file (SQLite for the rows); timed from the
first emit to the last row stored.
ceiling, each stage alone with library calls only (redis-py, msgpack, h5py): XADD of the same
msgpack bytes; XREADGROUP (8 entries a read) + ``msgpack.unpackb`` + XACK/XDEL; h5py appending
the same arrays to one dataset with a flush a batch. Run: ``python -m scripts.bench.arrays``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import msgpack
import numpy as np
import redis
import sqlalchemy as sa

from scripts.bench.common import unique_queue

SIDE = 1 << 20  # float64 values: 8 MiB an array
PRODUCER = """
import sys, numpy as np
from workers import Emitter
emitter = Emitter(sys.argv[1], sys.argv[2])
for i in range(int(sys.argv[3])):
    emitter.emit({"i": i, "K": np.full(1 << 20, float(i))}, table="arrays", key=f"r{i}")
emitter.close()
"""


def ours(redis_url: str, count: int, folder: Path) -> float:
    """Seconds from the first emit to the last row stored, the collector running throughout."""
    queue, db = unique_queue(), folder / "ours.db"
    collector = subprocess.Popen(
        [sys.executable, "-m", "collector", "run", "--redis-url", redis_url, "--queue", queue,
         "--db-url", f"sqlite:///{db}", "--arrays", str(folder / "ours.h5"),
         "--max-record-bytes", str(16 << 20)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(3)  # started and waiting on the queue
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", PRODUCER, redis_url, queue, str(count)], check=True)
    engine = sa.create_engine(f"sqlite:///{db}")
    while True:
        with engine.connect() as conn:
            made = sa.inspect(conn).has_table("arrays")
            if made and conn.scalar(sa.text("SELECT count(*) FROM arrays")) == count:
                break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    engine.dispose()
    collector.terminate()
    collector.wait()
    redis.Redis.from_url(redis_url).delete(queue)
    return seconds


def ceiling(redis_url: str, count: int, folder: Path) -> dict[str, float]:
    """Seconds of each stage alone, library calls only."""
    client, queue = redis.Redis.from_url(redis_url), unique_queue()
    payloads = [
        msgpack.packb({"i": i, "K": np.full(SIDE, float(i)).tobytes()}) for i in range(count)
    ]
    times: dict[str, float] = {}
    started = time.perf_counter()
    for payload in payloads:
        client.xadd(queue, {"m": payload})
    times["XADD"] = time.perf_counter() - started
    client.xgroup_create(queue, "g", id="0")
    started = time.perf_counter()
    arrays = []
    while len(arrays) < count:
        for _stream, entries in client.xreadgroup("g", "c", {queue: ">"}, count=8):
            ids = [entry_id for entry_id, _ in entries]
            arrays += [msgpack.unpackb(fields[b"m"])["K"] for _, fields in entries]
            with client.pipeline(transaction=False) as pipe:
                pipe.xack(queue, "g", *ids).xdel(queue, *ids).execute()
    times["XREADGROUP+unpack+XACK/XDEL"] = time.perf_counter() - started
    client.delete(queue)
    started = time.perf_counter()
    with h5py.File(folder / "ceiling.h5", "w", libver="latest") as file:
        data = file.create_dataset(
            "K", (0, SIDE), maxshape=(None, SIDE), dtype="f8", chunks=(1, SIDE)
        )
        file.swmr_mode = True
        for first in range(0, count, 8):
            batch = arrays[first : first + 8]
            data.resize(first + len(batch), axis=0)
            for slot, raw in enumerate(batch, first):
                data[slot] = np.frombuffer(raw, "f8")
            file.flush()
    times["h5py append+flush"] = time.perf_counter() - started
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100, help="8 MB records (default 100)")
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args(argv)
    mb = args.records * SIDE * 8 / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        seconds = ours(args.redis_url, args.records, Path(tmp))
        stages = ceiling(args.redis_url, args.records, Path(tmp))
    print(f"{args.records} records of 8 MiB ({mb:.0f} MB)")
    print(f"{'ours: emit -> collector -> HDF5':40s} {seconds:7.2f} s {mb / seconds:8.0f} MB/s")
    for stage, took in stages.items():
        print(f"{'ceiling: ' + stage:40s} {took:7.2f} s {mb / took:8.0f} MB/s")
    total = sum(stages.values())
    print(f"{'ceiling: the three stages in a row':40s} {total:7.2f} s {mb / total:8.0f} MB/s")


if __name__ == "__main__":
    main()
