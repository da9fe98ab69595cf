"""An array task with a buffered emitter, run by the job scripts of docs/sweeps.md: it installs
the documented SIGTERM handler (not with NO_HANDLER=1), buffers RECORDS results, writes the file
``ready``, then computes until it is stopped. Nothing is sent before it ends."""

import os
import signal
import sys
import time
from pathlib import Path

from workers import Emitter

RECORDS = 50


def stop(signum, frame):
    signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM must not cut the flush short
    sys.exit(128 + signum)  # a normal exit: the emitter sends its buffer at exit


if os.environ.get("NO_HANDLER") != "1":
    signal.signal(signal.SIGTERM, stop)
emitter = Emitter(buffer=100_000, flush_interval=3600)
task = int(sys.argv[1])
for step in range(RECORDS):
    emitter.emit({"task": task, "step": step}, table="steps", key=f"t{task}s{step}")
Path("ready").write_text(str(os.getpid()))
while True:
    time.sleep(0.1)  # the rest of the computation
