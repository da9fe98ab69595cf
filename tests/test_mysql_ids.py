"""Ids that MySQL's usual collations hold equal ('x', 'X', 'x '): in a ``--models`` table the
collector creates, or one that exists already, they are never one row holding two records
acknowledged as stored (one of them lost under exactly-once by ``_id``)."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from collector.db import make_engine
from collector.errors import ConfigError
from collector.models import prepare_models
from collector.store import Schema, Store
from tests.helpers import typed_rows
from workers.record import Record

pytestmark = pytest.mark.mysql
MODELS = """\
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Result(Base):
    __tablename__ = "results"
    _id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    _ts = mapped_column(sa.DateTime)
    _error = mapped_column(sa.Text)
    x = mapped_column(sa.Integer)
"""
IDS = ["x", "X", "x ", "á", "a"]


@pytest.fixture
def models(tmp_path, monkeypatch) -> Iterator[str]:
    name = f"models_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODELS))
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def test_a_model_table_keeps_ids_differing_in_case_or_trailing_spaces_apart(
    models, mysql_url
) -> None:
    declared = prepare_models(models, mysql_url)
    engine = make_engine(mysql_url)
    store = Store(engine, Schema(declared))
    try:
        assert store.write([Record(i, "results", {"x": n}) for n, i in enumerate(IDS[:3])]) == []
        assert store.write([Record(i, "results", {"x": n}) for n, i in enumerate(IDS)]) == []
        assert store.added == 2
    finally:
        engine.dispose()
    assert sorted((r["_id"], r["x"]) for r in typed_rows(mysql_url, "results")) == sorted(
        (i, n) for n, i in enumerate(IDS)
    )


def test_an_existing_model_table_whose_ids_ignore_case_is_refused_at_start(
    models, mysql_url
) -> None:
    engine = sa.create_engine(mysql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE results ("_id" VARCHAR(64) COLLATE utf8mb4_general_ci PRIMARY KEY, '
            '"_ts" DATETIME(6), "_error" TEXT, "x" INT) CHARACTER SET utf8mb4'
        )
    engine.dispose()
    with pytest.raises(ConfigError) as caught:
        prepare_models(models, mysql_url)
    message = str(caught.value)
    with engine.begin() as conn:  # the ALTER it names makes the table usable
        conn.exec_driver_sql(message.partition(": ALTER")[2].join(["ALTER", ""]))
    engine.dispose()
    test_a_model_table_keeps_ids_differing_in_case_or_trailing_spaces_apart(models, mysql_url)
    assert message == (
        "model table 'results': column _id compares in collation utf8mb4_general_ci, "
        "which holds ids differing in case or trailing spaces equal (one record of such a "
        "pair would be lost): ALTER TABLE `results` MODIFY `_id` VARCHAR(64) CHARACTER SET "
        "utf8mb4 COLLATE utf8mb4_nopad_bin"
    )
