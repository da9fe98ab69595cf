"""``--models``: the user's own SQLAlchemy tables, loaded from a declarative module.

The module is imported as it is (a tutorial-style ``define_data.py`` may create its own engine
and tables at import); every MetaData it holds, directly or through a declarative base, a mapped
class or a Table, is merged into one. Records for those tables are then checked strictly against
the declared columns (collector.store.schema); metadata columns a model declares (``_id``, ``_ts``,
``_host``, ``_pid``, ``_job``, ``_error``) are filled like in auto-created tables.

A model table without an ``_id`` column cannot deduplicate: a redelivered record (after a crash
between commit and acknowledgement) becomes a second row. Declare ``_id`` as the primary key or
as a unique column to get exactly-once rows.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from collector import dialects
from collector.db import make_engine
from collector.errors import ConfigError


def import_models(spec: str) -> ModuleType:
    """Import ``spec``: a path to a ``.py`` file, or a dotted module name (found from the cwd)."""
    is_file = spec.endswith(".py") or os.sep in spec
    path = os.path.abspath(spec)
    if is_file and not os.path.isfile(path):
        raise ConfigError(f"models file not found: {spec}")
    folder = os.path.dirname(path) if is_file else os.getcwd()
    sys.path.insert(0, folder)  # the module's own imports of its neighbours must work
    try:
        if not is_file:
            return importlib.import_module(spec)
        name = os.path.splitext(os.path.basename(path))[0]
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"cannot load models file {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules.setdefault(name, module)
        module_spec.loader.exec_module(module)
        return module
    except ConfigError:
        raise
    except ModuleNotFoundError as exc:
        raise ConfigError(f"cannot import models {spec!r}: {exc}") from None
    except Exception as exc:  # the user's module may fail in any way at import
        reason = f"{type(exc).__name__}: {exc}"
        raise ConfigError(f"models {spec!r} failed at import: {reason}") from None
    finally:
        sys.path.remove(folder)


def metadata_in(module: ModuleType) -> list[sa.MetaData]:
    """Every distinct MetaData the module holds: itself, or behind a declarative base, a mapped
    class, a registry or a Table."""
    found: dict[int, sa.MetaData] = {}
    for value in vars(module).values():
        candidate: Any = value
        if isinstance(value, type | sa.Table | orm.registry):
            candidate = getattr(value, "metadata", None)
        if isinstance(candidate, sa.MetaData):
            found.setdefault(id(candidate), candidate)
    return list(found.values())


def _merge(parts: list[sa.MetaData]) -> sa.MetaData:
    if len(parts) == 1:
        return parts[0]
    merged = sa.MetaData()
    for part in parts:
        for name, table in part.tables.items():
            if name in merged.tables:
                raise ConfigError(f"table {name!r} is declared twice in the models")
            table.to_metadata(merged)
    return merged


def _check(table: sa.Table) -> None:
    """Refuse what the collector cannot write to: schema-qualified tables, a non-unique _id."""
    if table.schema is not None:
        raise ConfigError(f"model table {table.fullname!r}: tables in a schema are not supported")
    column = table.c.get("_id")
    if column is None:
        return
    alone = [column]
    unique = (
        (column.primary_key and list(table.primary_key.columns) == alone)
        or bool(column.unique)
        or any(
            isinstance(c, sa.UniqueConstraint) and list(c.columns) == alone
            for c in table.constraints
        )
        or any(index.unique and list(index.columns) == alone for index in table.indexes)
    )
    if not unique:
        raise ConfigError(
            f"model table {table.name!r}: column _id must be the primary key or unique "
            "(the collector skips a record whose _id is already stored)"
        )


def load_models(spec: str) -> sa.MetaData:
    """The tables declared by the models module ``spec``, as one MetaData."""
    parts = metadata_in(import_models(spec))
    declared = _merge(parts) if parts else sa.MetaData()
    if not declared.tables:
        raise ConfigError(f"models {spec!r} declare no tables (no MetaData or declarative base)")
    for table in declared.tables.values():
        _check(table)
    return declared


def prepare_models(spec: str, db_url: str) -> sa.MetaData:
    """Load the models, create their tables where missing (with column types that hold their
    values exactly on this database), check that existing tables have every declared column
    (else every batch would fail: ConfigError at start instead), and make each declared column
    refuse a value its database column would store altered."""
    declared = load_models(spec)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            rules = dialects.get(conn.dialect.name)
            existing = set(sa.inspect(conn).get_table_names())
            for table in declared.tables.values():
                if table.name not in existing:
                    rules.create_exact(conn, table)
            declared.create_all(conn)
            inspector = sa.inspect(conn)
            for table in declared.tables.values():
                present = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
                missing = [c.name for c in table.columns if c.name not in present]
                if missing:
                    raise ConfigError(
                        f"model table {table.name!r} declares column(s) {', '.join(missing)} "
                        "that the database table lacks: add them to the table or rename it"
                    )
                rules.guard_model(conn, table, present)
    finally:
        engine.dispose()
    return declared
