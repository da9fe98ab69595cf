"""A producer process for the fault tests: emits ``count`` records keyed ``{prefix}-{i}``.

Usage: producer.py REDIS_URL QUEUE PREFIX COUNT PAUSE_SECONDS. Prints each id once ``emit``
returned it (delivered or spooled), so the test knows exactly what was promised.
"""

from __future__ import annotations

import sys
import time

from workers import Emitter


def main(url: str, queue: str, prefix: str, count: str, pause: str) -> None:
    emitter = Emitter(url, queue)
    for i in range(int(count)):
        rid = emitter.emit({"i": i, "who": prefix}, key=f"{prefix}-{i}")
        print(rid, flush=True)
        if float(pause):
            time.sleep(float(pause))
    emitter.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
