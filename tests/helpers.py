"""Small helpers shared by tests: drive a collector over a client until the queue is empty."""

from __future__ import annotations

import sqlalchemy as sa

from collector.daemon import Collector


def drain(collector: Collector, rounds: int = 100) -> int:
    """Call ``run_once`` until it finds nothing; returns the number of entries taken."""
    total = 0
    for _ in range(rounds):
        taken = collector.run_once()
        if not taken:
            return total
        total += taken
    raise AssertionError(f"queue not drained after {rounds} rounds")


def rows(db_url: str, table: str, order: str = "_id") -> list[dict]:
    """Every row of ``table`` as dicts, ordered by ``order``."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            sql = f'SELECT * FROM "{table}" ORDER BY "{order}"'  # noqa: S608 - test names
            result = conn.execute(sa.text(sql))
            return [dict(r._mapping) for r in result]
    finally:
        engine.dispose()


def dead_reasons(client, queue: str) -> list[str]:
    """Reasons of the dead letters on ``queue``, oldest first."""
    return [f[b"reason"].decode() for _, f in client.xrange(f"{queue}:dead")]
