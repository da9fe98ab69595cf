"""A peer collector's DDL racing ours is retried, not blamed on a record (two collectors on
one PostgreSQL database creating the same table at once)."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from collector.store.classify import Fault, classify


class PgError(Exception):
    def __init__(self, sqlstate: str, text: str) -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


def error(sqlstate: str, text: str) -> sa_exc.DBAPIError:
    return sa_exc.IntegrityError("CREATE TABLE t (...)", {}, PgError(sqlstate, text))


@pytest.mark.parametrize(
    ("sqlstate", "text", "fault"),
    [
        ("23505", 'duplicate key value violates unique constraint "pg_type_typname_nsp_index"',
         Fault.UNKNOWN),
        ("42P07", 'relation "t" already exists', Fault.RECORDS),  # e.g. an index's name
        ("23505", 'duplicate key value violates unique constraint "t__id_key"', Fault.RECORDS),
    ],
)  # fmt: skip
def test_concurrent_ddl_is_retried_other_violations_stay_records(sqlstate, text, fault) -> None:
    assert classify(error(sqlstate, text)) is fault
