"""Many producers at once: forks N children that each emit M records through ``workers.emit``.

Usage: fleet.py REDIS_URL QUEUE N M. The parent emits first (so it holds a connection when it
forks); every process then prints ``CLIENT ID`` of its own connection, which must all differ.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import workers


def report_connection() -> None:
    """Print this process's connection id in one write (print() makes two, which interleave)."""
    os.write(1, f"{workers.default_emitter().client.client_id()}\n".encode())


def child(k: int, count: int) -> None:
    for i in range(count):
        workers.emit({"k": k, "i": i}, key=f"c{k}-{i}")
    report_connection()


def main(url: str, queue: str, procs: str, count: str) -> None:
    os.environ["COLLECTOR_REDIS_URL"], os.environ["COLLECTOR_QUEUE"] = url, queue
    workers.emit({"k": -1, "i": 0}, key="parent")
    report_connection()
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=child, args=(k, int(count))) for k in range(int(procs))]
    for p in children:
        p.start()
    for p in children:
        p.join()
    sys.exit(max(p.exitcode or 0 for p in children))


if __name__ == "__main__":
    main(*sys.argv[1:])
