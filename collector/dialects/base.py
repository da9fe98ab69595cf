"""The Dialect: what the collector needs to know of one database, with the answers most
databases share; each database's module subclasses it and overrides what differs."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import sqlalchemy as sa

from collector.store.columns import SQL_TYPE, MetaColumn
from collector.store.fault import Fault


class Dialect:
    """One supported database: SQLAlchemy's backend name, the driver we use, and the SQL and
    rules that differ from one database to another."""

    name: ClassVar[str]  # SQLAlchemy's backend name, as in the URL
    title: ClassVar[str]  # for messages
    driver: ClassVar[str]  # SQLAlchemy's name of the one driver we use
    module: ClassVar[str]  # the driver's Python module
    extra: ClassVar[str] = ""  # the package extra that installs the driver
    types: ClassVar[dict[str, Any]] = SQL_TYPE  # value kind -> column type of new columns
    table_options: ClassVar[dict[str, Any]] = {}  # keyword arguments of a new sa.Table
    refuses_floats: ClassVar[bool] = False  # whether float_problem refuses any float

    def configure(self, engine: sa.Engine, url: sa.URL) -> None:
        """Set up a new engine (connection hooks); nothing by default."""

    def limit_lock_waits(self, engine: sa.Engine, seconds: int) -> None:
        """Make every statement of ``engine`` wait at most ``seconds`` for a lock another
        session holds (then fail, classified transient); nothing by default."""

    def meta_type(self, conn: sa.Connection, meta: MetaColumn) -> Any:
        """The column type of metadata column ``meta`` in a new table."""
        return meta.sql_type

    def table_problem(self, name: str) -> str | None:
        """Why this database cannot take ``name`` (past the identifier rule) as a table."""
        return None

    def column_problem(self, name: str) -> str | None:
        """Why this database cannot take ``name`` (past the identifier rule) as a column."""
        return None

    def float_problem(self, value: float) -> str | None:
        """Why a float column cannot hold ``value`` as it is; asked, where ``refuses_floats``,
        for NaN, the infinities and -0.0 (every other float is stored as it is everywhere)."""
        return None

    def classify(self, orig: BaseException) -> Fault | None:
        """The fault of a driver error by its code; None when the code says nothing."""
        return None

    def insert(self, table: sa.Table) -> Any:
        """An INSERT into ``table`` that renders ON CONFLICT (collector.store.conflict)."""
        raise NotImplementedError

    def add_column(self, conn: sa.Connection, table: sa.Table, column: str, kind: str) -> None:
        """ALTER TABLE ... ADD COLUMN for a name that already passed the identifier rule."""
        prep = conn.dialect.identifier_preparer
        sql_type = self.types[kind]().compile(dialect=conn.dialect)
        conn.exec_driver_sql(
            f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {prep.quote(column)} {sql_type}"
        )

    def widen_to_float(self, conn: sa.Connection, table: sa.Table, columns: set[str]) -> None:
        """Turn the integer ``columns`` of ``table`` (as it is now) into float columns."""
        raise NotImplementedError

    def writes_locked(self, conn: sa.Connection, table: sa.Table) -> AbstractContextManager[None]:
        """Hold off every peer's writes to ``table`` (waiting for those under way to commit)
        while its ints are checked and it is widened; nothing where one writer is alone."""
        return contextlib.nullcontext()

    def create_exact(self, conn: sa.Connection, table: sa.Table) -> None:
        """Before a model table is created: declared column types this database would store
        inexactly made exact (MySQL's DATETIME and FLOAT); nothing by default."""

    def guard_model(self, conn: sa.Connection, table: sa.Table, reflected: dict[str, Any]) -> None:
        """For a model table as the database has it (``reflected``: column name -> type): its
        column types made to refuse, with a reason, a value the column would store altered;
        nothing by default."""

    def generic_writer(self, dialect: sa.Dialect) -> Any:
        """The writer for tables the fast path does not suit (Python-side column defaults), or
        None for the store's own portable one (collector.store.writers.Writer)."""
        return None

    def fast_writer(self, dialect: sa.Dialect) -> Any:
        """The writer for tables the fast path suits (collector.store.writers), or None."""
        return None

    def epoch(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        """Seconds since the epoch of a naive UTC datetime column (the status page's rates)."""
        return sa.cast(sa.extract("epoch", column), sa.BigInteger)
