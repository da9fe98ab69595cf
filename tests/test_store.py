"""collector.store on SQLite and PostgreSQL: names quoted, not refused; every failure either
retried whole (transient) or bisected down to the records at fault; a batch ends as its records
sent one by one would; schema changes leave no trace when interrupted."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS as PG_RESERVED

from collector.db import make_engine
from collector.errors import DatabaseUnavailable
from collector.store import Schema, Store
from tests.helpers import REAL_PG_URL, URL_PARAMS
from workers.entry import decode_records, encode_entries, packed
from workers.record import Record

# SQLite's keywords (sqlite.org/lang_keywords.html), some of which SQLAlchemy's list lacks
SQLITE_KEYWORDS = """abort action add after all alter always analyze and as asc attach
autoincrement before begin between by cascade case cast check collate column commit conflict
constraint create cross current current_date current_time current_timestamp database default
deferrable deferred delete desc detach distinct do drop each else end escape except exclude
exclusive exists explain fail filter first following for foreign from full generated glob group
groups having if ignore immediate in index indexed initially inner insert instead intersect into
is isnull join key last left like limit match materialized natural no not nothing notnull null
nulls of offset on or order others outer over partition plan pragma preceding primary query
raise range recursive references regexp reindex release rename replace restrict returning right
rollback row rows savepoint select set table temp temporary then ties to transaction trigger
unbounded union unique update using vacuum values view virtual when where window with
without""".split()  # noqa: SIM905 - the list as the page prints it
KEYWORDS = sorted({*SQLITE_KEYWORDS, *PG_RESERVED, "user", "off", "lateral", "tablesample"})


@pytest.fixture(params=URL_PARAMS)
def engine(request) -> sa.Engine:
    engine = make_engine(request.getfixturevalue(request.param))
    yield engine
    engine.dispose()


def stored(engine: sa.Engine, table: str, *columns: str) -> list[tuple]:
    prep = engine.dialect.identifier_preparer
    names = ", ".join(prep.quote_identifier(c) for c in ("_id", *columns))
    sql = f"SELECT {names} FROM {prep.quote_identifier(table)} ORDER BY 1"  # noqa: S608
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql)]


def test_sql_keywords_are_ordinary_table_and_column_names(engine) -> None:
    store = Store(engine, Schema())
    wide = Record("wide", "results", {word: n for n, word in enumerate(KEYWORDS)})
    tables = [Record(f"t-{word}", word, {word: 1.5, "tag": "x"}) for word in KEYWORDS]
    assert store.write([wide, *tables]) == []
    assert stored(engine, "results", *KEYWORDS) == [("wide", *range(len(KEYWORDS)))]
    for word in KEYWORDS:
        assert stored(engine, word, word, "tag") == [(f"t-{word}", 1.5, "x")]


def test_names_the_database_itself_refuses_are_dead_lettered_with_the_rule(engine) -> None:
    store = Store(engine, Schema())
    batch = [
        Record("a", "results", {"x": 1}),
        Record("b", "sqlite_stat9", {"x": 1}),
        Record("c", "results", {"xmin": 1}),
        Record("d", "results", {"X": 2}),
        Record("e", "Results", {"x": 3}),
    ]
    refused = dict(store.write(batch))
    if engine.dialect.name == "sqlite":
        assert refused.pop(1).startswith("table name 'sqlite_stat9': SQLite reserves names")
    elif engine.dialect.name == "postgresql":
        assert refused.pop(2) == "column name 'xmin': a PostgreSQL system column"
    assert refused == {
        3: "column name 'X' clashes with column 'x' (names ignore case in SQL)",
        4: "table name 'Results' clashes with existing table 'results'",
    }


def test_ddl_the_database_refuses_is_bisected_to_its_record(engine) -> None:
    store = Store(engine, Schema())
    assert store.write([Record("first", "data", {"x": 1})]) == []
    with engine.begin() as conn:
        if engine.dialect.name == "mysql":  # indexes are named per table there: a view
            conn.exec_driver_sql("CREATE VIEW data_pkey2 AS SELECT 1 AS x")
        else:
            conn.exec_driver_sql('CREATE INDEX "data_pkey2" ON "data" ("x")')
    batch = [Record(f"n{i}", "data", {"x": i, "new": "v"}) for i in range(6)]
    batch.insert(3, Record("clash", "data_pkey2", {"y": 1}))  # a table named like an index
    ((index, reason),) = store.write(batch)
    assert index == 3 and reason.startswith("database refused the table change: ")
    assert "data_pkey2" in reason
    assert [r[0] for r in stored(engine, "data", "new")] == ["first", *(f"n{i}" for i in range(6))]


@pytest.mark.postgres
def test_a_record_too_wide_for_a_postgresql_row_is_dead_lettered_alone(pg_url) -> None:
    engine = make_engine(pg_url)
    store = Store(engine, Schema())
    wide = Record("wide", "results", {f"v{i}": i for i in range(1200)})
    refused = store.write([Record("a", "results", {"v1": 1}), wide, Record("b", "t2", {"z": 1})])
    assert [(i, "row is too big" in reason) for i, reason in refused] == [(1, True)]
    assert stored(engine, "results", "v1") == [("a", 1)]
    assert stored(engine, "t2", "z") == [("b", 1)]
    with engine.connect() as conn:  # the wide record's 1,200 columns were rolled back with it
        assert len(sa.inspect(conn).get_columns("results")) == 9
    engine.dispose()


def test_an_unknown_error_is_retried_then_its_record_dead_lettered(sqlite_url) -> None:
    class Unlucky(sa.types.TypeDecorator):
        impl = sa.BigInteger
        cache_ok = True

        def process_bind_param(self, value, dialect):
            if value == 13:
                raise RuntimeError("driver crashed on 13")
            return value

    declared = sa.MetaData()
    sa.Table(
        "t", declared, sa.Column("_id", sa.String(255), primary_key=True), sa.Column("x", Unlucky)
    )
    engine = make_engine(sqlite_url)
    declared.create_all(engine)
    store = Store(engine, Schema(declared))
    batch = [Record(f"k{x}", "t", {"x": x}) for x in (11, 12, 13, 14)]
    for attempt in (1, 2, 3):
        with pytest.raises(DatabaseUnavailable, match=f"RuntimeError.*attempt {attempt}"):
            store.write(batch)
    assert store.write(batch) == [(2, "cannot store the row: driver crashed on 13")]
    assert stored(engine, "t", "x") == [("k11", 11), ("k12", 12), ("k14", 14)]
    engine.dispose()


def limited(url: str, pragmas: dict[str, str]) -> sa.Engine:
    """An engine that runs ``pragmas`` (mutable: read at each new connection) on connect."""
    engine = make_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _apply(dbapi_conn, _record) -> None:
        for name, value in pragmas.items():
            dbapi_conn.execute(f"PRAGMA {name}={value}")

    return engine


def test_a_read_only_database_is_retried_and_written_once_writable(sqlite_url) -> None:
    pragmas = {"query_only": "ON"}
    engine = limited(sqlite_url, pragmas)
    store = Store(engine, Schema())
    with pytest.raises(DatabaseUnavailable, match="readonly"):
        store.write([Record("a", "results", {"x": 1})])
    pragmas["query_only"] = "OFF"  # the file is writable again: no restart needed
    assert store.write([Record("a", "results", {"x": 1})]) == []
    assert stored(engine, "results", "x") == [("a", 1)]
    engine.dispose()


def test_a_full_disk_during_a_widening_leaves_no_trace(sqlite_url) -> None:
    pragmas: dict[str, str] = {}
    engine = limited(sqlite_url, pragmas)
    store = Store(engine, Schema())
    assert (
        store.write([Record(f"k{i:04}", "results", {"v": i, "s": "x" * 200}) for i in range(2000)])
        == []
    )
    with engine.connect() as conn:
        pragmas["max_page_count"] = str(conn.exec_driver_sql("PRAGMA page_count").scalar() + 2)
    engine.dispose()
    with pytest.raises(DatabaseUnavailable, match="full"):
        store.write([Record("float", "results", {"v": 2.5})])
    with engine.connect() as conn:
        assert sorted(sa.inspect(conn).get_table_names()) == ["results"]
        (v,) = [c for c in sa.inspect(conn).get_columns("results") if c["name"] == "v"]
        assert isinstance(v["type"], sa.BigInteger)
    del pragmas["max_page_count"]
    engine.dispose()  # the inspection above pooled a limited connection
    assert store.write([Record("float", "results", {"v": 2.5})]) == []
    values = stored(engine, "results", "v")
    assert len(values) == 2001 and values[-1] == ("k1999", 1999.0)
    assert ("float", 2.5) in values
    engine.dispose()


def test_an_empty_widen_copy_of_an_older_version_is_dropped_at_start(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        for name in ("t", "t__widen", "u", "u__widen"):
            conn.exec_driver_sql(f'CREATE TABLE "{name}" ("_id" TEXT PRIMARY KEY, "x" BIGINT)')
        conn.exec_driver_sql("INSERT INTO \"u__widen\" VALUES ('kept', 1)")  # not empty: kept
    assert Store(engine, Schema()).write([Record("a", "t", {"x": 1})]) == []
    with engine.connect() as conn:
        assert sorted(sa.inspect(conn).get_table_names()) == ["t", "u", "u__widen"]
    engine.dispose()


def refusing_13(engine: sa.Engine) -> None:
    """Table ``results`` (``_id``, ``x``) with a trigger that refuses a row whose x is 13: a
    record only the database refuses, as its row goes in."""
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE "results" ("_id" VARCHAR(255) PRIMARY KEY, "x" BIGINT)')
        if engine.dialect.name == "mysql":
            conn.exec_driver_sql(
                "CREATE TRIGGER no13 BEFORE INSERT ON results FOR EACH ROW BEGIN IF NEW.x = 13 "
                "THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'thirteen'; END IF; END"
            )
        elif engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                'CREATE TRIGGER "no13" BEFORE INSERT ON "results" WHEN NEW."x" = 13 '
                "BEGIN SELECT RAISE(ABORT, 'thirteen'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION no13() RETURNS trigger AS $$ BEGIN IF NEW.x = 13 THEN "
                "RAISE EXCEPTION 'thirteen'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                'CREATE TRIGGER "no13" BEFORE INSERT ON "results" '
                "FOR EACH ROW EXECUTE FUNCTION no13()"
            )


def outcome(engine: sa.Engine, batches: list[list[Record]]) -> tuple[list, list[str]]:
    store = Store(engine, Schema())
    refusing_13(engine)
    refused = [
        f"{batch[i].id}: {reason.split(':')[0]}"
        for batch in batches
        for i, reason in store.write(batch)
    ]
    with engine.connect() as conn:
        columns = [c["name"] for c in sa.inspect(conn).get_columns("results")]
    return [columns, stored(engine, "results", *columns[1:])], refused


SCENARIOS = {
    "same key, first refused by the database": [
        Record("k", "results", {"x": 13}), Record("k", "results", {"x": 14})],
    "same key, first refused by the plan": [
        Record("k", "results", {"x": "text"}), Record("k", "results", {"x": 2})],
    "a refused record's new column, then another type for it": [
        Record("a", "results", {"x": 13, "y": 1}), Record("b", "results", {"y": "s"})],
    "names that differ only in case": [
        Record("a", "results", {"x": 1, "K": 1}), Record("b", "results", {"k": 2}),
        Record("c", "results", {"K": 3.5})],
    "a failure, then its rerun's success": [
        Record("k", "results", {"x": 1, "_error": "boom"}), Record("k", "results", {"x": 2})],
}  # fmt: skip


def through_a_batch_entry(records: list[Record]) -> list[Record]:
    """``records`` as the collector decodes them from one batch entry (wire version 2)."""
    (raw,) = encode_entries([packed(rec) for rec in records])
    decoded = decode_records(raw)
    assert decoded == records
    return decoded


@pytest.mark.parametrize("wire", ["v1", "v2"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_batch_ends_as_its_records_sent_one_by_one(request, engine, scenario, wire) -> None:
    records = SCENARIOS[scenario]
    together = outcome(engine, [records if wire == "v1" else through_a_batch_entry(records)])
    other = make_engine(request.getfixturevalue(request.node.callspec.params["engine"]) + "")
    engine.dispose()
    with other.begin() as conn:  # a second, empty database of the same kind
        for table in reversed(sa.inspect(conn).get_table_names()):
            conn.exec_driver_sql(f"DROP TABLE {conn.dialect.identifier_preparer.quote(table)}")
        if other.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP FUNCTION no13")
    one_by_one = outcome(other, [[rec] for rec in records])
    other.dispose()
    assert together == one_by_one


@pytest.mark.postgres
def test_a_stale_schema_never_coerces_a_type(pg_url) -> None:
    first, second = make_engine(pg_url), make_engine(pg_url)
    one, two = Store(first, Schema()), Store(second, Schema())
    assert one.write([Record("a", "results", {"x": 1})]) == []
    assert two.write([Record("b", "results", {"x": 2})]) == []  # two now caches the table
    assert one.write([Record("c", "results", {"y": "text"})]) == []
    assert two.write([Record("d", "results", {"y": 5})]) == [
        (0, "column 'y' holds str values, this record has int")
    ]
    assert stored(first, "results", "y") == [("a", None), ("b", None), ("c", "text")]
    first.dispose()
    second.dispose()


@pytest.mark.postgres
def test_a_read_only_postgresql_is_retried_and_written_once_writable(pg_url) -> None:
    name = sa.engine.make_url(pg_url).database
    admin = sa.create_engine(REAL_PG_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def read_only(on: bool) -> None:
        with admin.connect() as conn:
            value = "on" if on else "off"
            conn.exec_driver_sql(
                f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}'
            )

    read_only(True)  # sessions opened from now on cannot write
    engine = make_engine(pg_url)
    store = Store(engine, Schema())
    with pytest.raises(DatabaseUnavailable, match="read-only transaction"):
        store.write([Record("a", "results", {"x": 1})])
    read_only(False)
    assert store.write([Record("a", "results", {"x": 1})]) == []  # fresh connections, no restart
    assert stored(engine, "results", "x") == [("a", 1)]
    engine.dispose()
    admin.dispose()


class CountingSchema(Schema):
    """A Schema that counts how often the store reflects the database into it."""

    loads = 0

    def load(self, conn: sa.Connection) -> None:
        self.loads += 1
        super().load(conn)


def test_a_bisected_batch_reflects_the_schema_once_not_at_each_step(engine) -> None:
    refusing_13(engine)
    assert Store(engine, Schema()).write([Record("first", "results", {"x": 1})]) == []
    schema = CountingSchema()  # a collector started on the table as the first one left it
    store = Store(engine, schema)
    batch = [
        Record(f"r{i:03}", "results", {"x": 13 if i % 16 == 5 else 1000 + i}) for i in range(128)
    ]
    refused = store.write(batch)
    assert [(i, "thirteen" in reason) for i, reason in refused] == [
        (i, True) for i in range(5, 128, 16)
    ]
    assert schema.loads == 1  # before the first attempt; every step trusts what it read
    again = [
        Record(f"s{i:03}", "results", {"x": 13 if i in (3, 60) else 1000 + i}) for i in range(64)
    ]
    assert [i for i, _reason in store.write(again)] == [3, 60]
    assert schema.loads == 2  # the cached schema failed once: read again, then trusted
    assert len(stored(engine, "results", "x")) == 1 + 128 - 8 + 64 - 2


def test_a_schema_that_cannot_be_read_ends_the_batch_instead_of_retrying_forever(
    sqlite_url,
) -> None:
    class Unreadable(CountingSchema):
        def load(self, conn: sa.Connection) -> None:
            super().load(conn)
            raise ValueError("a column type nothing converts")

    engine = make_engine(sqlite_url)
    schema = Unreadable()
    refused = Store(engine, schema).write([Record("a", "t", {"x": 1}), Record("b", "t", {"x": 2})])
    assert refused == [(i, "cannot store the row: a column type nothing converts") for i in (0, 1)]
    assert schema.loads == 3  # the batch, then each half: each attempt read the schema itself
    engine.dispose()
