"""The database side of the soak behind one small interface: where it is, how many collectors
share it, how to lock it and cut its connections (the faults), how to read every row back exactly
(the checker), and how to remove it. One class per database; another one (MariaDB) is a few
lines."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.db import make_engine
from collector.store.columns import kind_of_sql

SERVICE_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SERVICE_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test"
SOAK_APP = "soak"  # application_name of the soak's own connections, spared by kill_connections
LOCK_TRIES_SECONDS = 20.0


def negative_zero(value: float) -> bool:
    return value == 0 and math.copysign(1.0, value) < 0


def refused_float(data: dict[str, Any], refused: Callable[[float], bool]) -> str | None:
    """Why a record of ``data`` is refused: a float value (not one inside JSON) ``refused``."""
    for value in data.values():
        if type(value) is float and refused(value):
            return f"a float column cannot hold {value}"
    return None


class Database:
    """What every database of the soak offers. ``url`` is what the collectors get."""

    name = ""
    collectors = 1
    url = ""

    @staticmethod
    def refusal(data: dict[str, Any]) -> str | None:
        """Why the collector must refuse a record of ``data`` on this database (documented in
        docs/databases.md), though the workload sent it as a good one; None: it must be stored."""
        return None

    def create(self) -> None:
        """Make the empty database."""

    def drop(self) -> None:
        """Remove it; safe to call twice, and after a failed ``create``."""

    def hold_lock(self, seconds: float, tables: list[str], stop: threading.Event) -> str:
        """Lock the database (or ``tables``) for ``seconds`` or until ``stop``; what was done."""
        raise NotImplementedError

    def kill_connections(self) -> int:
        """End the collectors' connections; how many were ended (0 where there are none)."""
        return 0

    def engine(self) -> sa.Engine:
        """An engine as the collector makes one (its dialect's session settings and reflected
        types: MariaDB's DOUBLE as float, its JSON as JSON), so rows read back as
        ``collector.read()`` gives them."""
        return make_engine(self.url)

    def read(self, table: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """The column kinds of ``table`` and every row, each with ``<col>!null``: whether the
        database holds SQL NULL there (a JSON 'null' reads back as None too)."""
        engine = self.engine()
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(table):
                    return {}, []
                t = sa.Table(table, sa.MetaData(), autoload_with=conn)
                kinds = {c.name: kind_of_sql(c.type) for c in t.columns}
                nulls = [c.is_(None).label(f"{c.name}!null") for c in t.columns]
                rows = [dict(r._mapping) for r in conn.execute(sa.select(*t.columns, *nulls))]
            return kinds, rows
        finally:
            engine.dispose()

    def tables(self) -> list[str]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return sorted(sa.inspect(conn).get_table_names())
        finally:
            engine.dispose()


class Sqlite(Database):
    """A temporary SQLite file, one collector; locked with BEGIN EXCLUSIVE."""

    name = "sqlite"

    @staticmethod
    def refusal(data: dict[str, Any]) -> str | None:
        """A float column takes no -0.0 (a REAL stores it as 0.0); inside JSON it is kept."""
        return refused_float(data, negative_zero)

    def __init__(self, directory: Path) -> None:
        self.path = directory / "soak.db"
        self.url = f"sqlite:///{self.path}"

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def hold_lock(self, seconds: float, tables: list[str], stop: threading.Event) -> str:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            stop.wait(seconds)
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return "BEGIN EXCLUSIVE"


class Server(Database):
    """A fresh database on a shared server, created and dropped through ``service``: two
    collectors; locked table by table from one connection, its collectors' connections cut."""

    service = ""
    collectors = 2

    def __init__(self, tag: str) -> None:
        self.db = f"soak_{tag}"
        self.url = sa.make_url(self.service).set(database=self.db).render_as_string(False)

    def admin(self) -> sa.Engine:
        return sa.create_engine(self.service, isolation_level="AUTOCOMMIT")

    def run_admin(self, *statements: str) -> None:
        engine = self.admin()
        try:
            with engine.connect() as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement)
        finally:
            engine.dispose()


class Postgres(Server):
    """A fresh PostgreSQL database on 127.0.0.1:5432: LOCK TABLE ... ACCESS EXCLUSIVE and
    pg_terminate_backend of the collectors' connections."""

    name = "postgresql"
    service = SERVICE_PG

    def create(self) -> None:
        self.run_admin(f'CREATE DATABASE "{self.db}"')

    def drop(self) -> None:
        self.run_admin(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')

    def engine(self) -> sa.Engine:
        url = sa.make_url(self.url).update_query_dict({"application_name": SOAK_APP})
        return make_engine(url.render_as_string(hide_password=False))

    def hold_lock(self, seconds: float, tables: list[str], stop: threading.Event) -> str:
        """LOCK TABLE ... NOWAIT, tried again until it is had: waiting for the tables while
        holding some of them could deadlock with a collector's batch (PostgreSQL would then
        end our transaction, not theirs)."""
        engine = self.engine()
        deadline = time.monotonic() + LOCK_TRIES_SECONDS
        try:
            with engine.connect() as conn:
                names = [t for t in tables if sa.inspect(conn).has_table(t)]
                conn.rollback()
                if not names:
                    stop.wait(seconds)
                    return "no table yet"
                quoted = ", ".join(f'"{t}"' for t in names)
                statement = f"LOCK TABLE {quoted} IN ACCESS EXCLUSIVE MODE NOWAIT"
                while True:
                    trans = conn.begin()
                    try:
                        conn.exec_driver_sql(statement)
                    except sa.exc.OperationalError:  # not free now: try again shortly
                        trans.rollback()
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                        continue
                    try:
                        stop.wait(seconds)
                    finally:
                        trans.rollback()
                    return f"LOCK TABLE {quoted}"
        finally:
            engine.dispose()

    def kill_connections(self) -> int:
        engine = self.engine()
        query = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name <> %(app)s"
        )
        try:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql(query, {"app": SOAK_APP}).scalar() or 0)
        finally:
            engine.dispose()


class Mysql(Server):
    """A fresh MariaDB/MySQL database on 127.0.0.1:3306: LOCK TABLES ... WRITE and KILL of the
    collectors' connections."""

    name = "mysql"
    service = SERVICE_MYSQL

    @staticmethod
    def refusal(data: dict[str, Any]) -> str | None:
        """A float column takes no NaN, no infinity and no -0.0 (MariaDB would store 0.0);
        inside a list or dict (JSON) -0.0 is kept."""
        return refused_float(data, lambda v: not math.isfinite(v) or negative_zero(v))

    def create(self) -> None:
        self.run_admin(f"CREATE DATABASE `{self.db}`")

    def drop(self) -> None:
        self.run_admin(f"DROP DATABASE IF EXISTS `{self.db}`")

    def hold_lock(self, seconds: float, tables: list[str], stop: threading.Event) -> str:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                names = [t for t in tables if sa.inspect(conn).has_table(t)]
                if not names:
                    stop.wait(seconds)
                    return "no table yet"
                conn.exec_driver_sql("LOCK TABLES " + ", ".join(f"`{t}` WRITE" for t in names))
                stop.wait(seconds)
                conn.exec_driver_sql("UNLOCK TABLES")
            return "LOCK TABLES " + ", ".join(names)
        finally:
            engine.dispose()

    def kill_connections(self) -> int:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                ids = conn.exec_driver_sql(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE db = %s AND id <> CONNECTION_ID()",
                    (self.db,),
                ).scalars()
                killed = 0
                for pid in list(ids):
                    with contextlib.suppress(sa.exc.DBAPIError):
                        conn.exec_driver_sql(f"KILL {int(pid)}")
                        killed += 1
                return killed
        finally:
            engine.dispose()


def mysql_supported() -> bool:
    """Whether this build's collector stores into MySQL/MariaDB (a dialect of its own)."""
    try:
        return bool(importlib.util.find_spec("pymysql")) and bool(
            importlib.util.find_spec("collector.dialects.mysql")
        )
    except ModuleNotFoundError:
        return False


def open_database(kind: str, directory: Path, tag: str) -> Database:
    if kind == "sqlite":
        return Sqlite(directory)
    if kind == "postgresql":
        return Postgres(tag)
    return Mysql(tag)
