"""Every error on the store path, sorted once: *transient* (the database cannot take anything
now: retry the same batch later, with fresh connections), tied to *records* (the DDL or row some
record needs is refused: find that record by bisection and dead-letter it), *stale* (a table or
column we were about to create exists: a peer collector's DDL committed after we read the
schema; read it again and retry at once, then as tied to records), or *unknown* (retried a few
times, then treated as tied to records, so nothing loops forever).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import exc as sa_exc

from collector import dialects
from collector.store.fault import Fault

if TYPE_CHECKING:
    from collector.dialects.base import Dialect


class SchemaRaced(Exception):
    """A peer's change the plan did not know: an int no float holds in a column about to widen,
    or a column a peer made first with another type. Stale: the batch is planned again."""


def classify(exc: BaseException, dialect: Dialect | None = None) -> Fault:
    """Which kind of fault ``exc`` is; a driver's error codes are read by ``dialect`` (by every
    supported one when None)."""
    if isinstance(exc, SchemaRaced):
        return Fault.STALE
    if isinstance(exc, TypeError | ValueError | OverflowError | UnicodeError):
        return Fault.RECORDS  # a value no converter or JSON encoder takes
    if not isinstance(exc, sa_exc.SQLAlchemyError):
        return Fault.UNKNOWN
    if isinstance(exc, sa_exc.DBAPIError):
        return _classify_dbapi(exc, dialect)
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return Fault.TRANSIENT  # the pool had no connection to give
    if isinstance(exc, sa_exc.StatementError):
        return Fault.RECORDS  # a value the driver or a type processor could not bind
    return Fault.UNKNOWN


def _classify_dbapi(exc: sa_exc.DBAPIError, dialect: Dialect | None) -> Fault:
    if exc.connection_invalidated:
        return Fault.TRANSIENT
    candidates = [dialect] if dialect is not None else map(dialects.get, dialects.MODULES)
    for each in candidates:
        fault = each.classify(exc.orig) if exc.orig is not None else None
        if fault is not None:
            return fault
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return Fault.TRANSIENT  # no code: a connection that failed or broke
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError):
        return Fault.RECORDS
    return Fault.UNKNOWN
