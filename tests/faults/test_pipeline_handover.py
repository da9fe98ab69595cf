"""The pipelined collector's hand-over: the writer process decodes what the reader hands it. The
reader SIGKILLed while the writer holds two handed batches it has not decoded (a poison entry
among them): nothing was acknowledged or dead-lettered, the writer ends with its reader, and the
next collector stores every record once and dead-letters the poison once."""

from __future__ import annotations

import os
import signal

import redis

from faults.servers import (
    drained,
    gone,
    python,
    start_collector,
    wait_for_rows,
    wait_until,
    writer_pid,
)
from workers import Emitter

POISON = b"\xc1 not msgpack"
READER = """
import os, signal, sys
from collector.pipeline import PipelinedCollector
from collector.settings import Settings
redis_url, db_url, queue = sys.argv[1:]
settings = Settings(redis_url=redis_url, db_url=db_url, queue=queue, consumer="c1",
                    batch_size=4, max_wait=0.05, pipeline=True)
piped = PipelinedCollector(settings)
piped.start()
os.kill(piped.writer.proc.pid, signal.SIGSTOP)  # it takes in what it is handed, decodes none
print(piped.run_once(), file=sys.stderr, flush=True)  # a full batch: the read ahead may go too
print(piped._settle_and_read(), "handed", file=sys.stderr, flush=True)
signal.pause()
"""


def test_the_reader_sigkilled_while_the_writer_holds_undecoded_batches_loses_nothing(
    redis_server, sqlite_url, queue
) -> None:
    url = redis_server.url()
    emitter = Emitter(url, queue)
    for i in range(3):
        emitter.emit({"i": i}, key=f"a{i}")
    emitter.client.xadd(queue, {"m": POISON})
    for i in range(5):
        emitter.emit({"i": i}, key=f"b{i}")
    emitter.close()
    reader = python(READER, url, sqlite_url, queue)
    reader.wait_for("4 handed")
    writer = writer_pid(reader)
    assert reader.stop(signal.SIGKILL) == -signal.SIGKILL, reader.err
    assert reader.err.splitlines()[-2:] == ["4", "4 handed"], reader.err
    client = redis.Redis.from_url(url)
    assert client.xpending(queue, "collector")["pending"] == 9  # two handed, one read ahead
    assert client.xlen(f"{queue}:dead") == 0
    os.kill(writer, signal.SIGCONT)  # now it learns its reader is gone, and ends
    wait_until(lambda: gone(writer), 10, "the writer to end with its reader")
    daemon = start_collector(url, sqlite_url, queue)
    try:
        expected = {*(f"a{i}" for i in range(3)), *(f"b{i}" for i in range(5))}
        wait_for_rows(sqlite_url, expected, timeout=60)
        wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
        ((_, letter),) = client.xrange(f"{queue}:dead")
        assert letter[b"m"] == POISON
        assert letter[b"reason"].decode().startswith("not valid msgpack")
    finally:
        assert daemon.stop() == 0, daemon.err
        client.close()
