"""``collector run`` whose process dies (SIGKILL, as the kernel's OOM killer would) whenever a
batch it is about to store holds a record with ``"die": true``: a record that kills the
collector, for the delivery-count test. Arguments are those of ``collector run``."""

from __future__ import annotations

import os
import signal
import sys

from collector.cli import main
from collector.store.store import Store

_write = Store.write


def write(self: Store, records: list) -> list:
    if any(rec.data.get("die") for rec in records):
        os.kill(os.getpid(), signal.SIGKILL)
    return _write(self, records)


if __name__ == "__main__":
    Store.write = write  # type: ignore[method-assign]
    sys.exit(main(["run", *sys.argv[1:]]))
