"""The progress line the soak prints every few seconds: calls answered (read on in the receipts
from where the last line stopped), rows stored, the backlog in Redis."""

from __future__ import annotations

from pathlib import Path

import redis
import sqlalchemy as sa

from collector.db import count_rows
from scripts.soak.broker import Broker
from scripts.soak.databases import Database
from scripts.soak.final import backlog
from scripts.soak.workload import TABLES


class Progress:
    def __init__(self, receipts: Path, broker: Broker, db: Database) -> None:
        self.receipts, self.broker, self.db = receipts, broker, db
        self.read_up_to: dict[Path, int] = {}
        self.answered = 0

    def line(self) -> str:
        for path in self.receipts.glob("*"):
            with path.open("rb") as handle:
                handle.seek(self.read_up_to.get(path, 0))
                chunk = handle.read()
            done = chunk.rfind(b"\n") + 1
            self.read_up_to[path] = self.read_up_to.get(path, 0) + done
            self.answered += chunk[:done].count(b'"ok": [')
        try:
            client = self.broker.client(0.5)
            entries, pending = backlog(client)
            client.close()
            queued = f"backlog {entries} ({pending} pending)"
        except redis.RedisError:
            queued = "backlog ? (Redis away)"
        try:
            rows = str(sum(self.count(t) for t in TABLES))
        except sa.exc.SQLAlchemyError:
            rows = "?"  # locked, or its connection cut
        return f"calls answered {self.answered}, rows {rows}, {queued}"

    def count(self, table: str) -> int:
        engine = self.db.engine()
        try:
            with engine.connect() as conn:
                if self.db.name == "postgresql":
                    conn.exec_driver_sql("SET lock_timeout = 500")
                return count_rows(conn, table)
        finally:
            engine.dispose()
