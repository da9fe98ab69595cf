"""``collector run`` with a deliberate defect, for the test that proves the soak's checker can
fail: every DROP_EVERY-th batch loses one record with a fresh id (never stored, yet acknowledged
with its batch), and the id is printed as ``soak-dropper: dropped ID``. Arguments are those of
``collector run``, its URLs on stdin as the soak gives them (scripts/soak/child.py); the product
has no hook for this, the wrapper patches it in its own process."""

from __future__ import annotations

import re
import sys
from typing import Any

from collector.store.store import Store
from scripts.soak import child

DROP_EVERY = 15
FRESH_ID = re.compile(r"[0-9a-f]{32}")
_write = Store.write
_batches = 0


def write(self: Store, records: list[Any]) -> list[tuple[int, str]]:
    global _batches
    _batches += 1
    fresh = [i for i, r in enumerate(records) if FRESH_ID.fullmatch(r.id) and r.table != "probe"]
    if _batches % DROP_EVERY or not fresh:
        return _write(self, records)
    gone = fresh[0]
    refused = _write(self, records[:gone] + records[gone + 1 :])
    print(f"soak-dropper: dropped {records[gone].id}", file=sys.stderr, flush=True)
    return [(pos + (pos >= gone), reason) for pos, reason in refused]


if __name__ == "__main__":
    Store.write = write  # type: ignore[method-assign]
    child.main(["run", *sys.argv[1:]])
