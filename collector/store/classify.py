"""Every error on the store path, sorted once: *transient* (the database cannot take anything
now: retry the same batch later, with fresh connections), tied to *records* (the DDL or row some
record needs is refused: find that record by bisection and dead-letter it), *stale* (a table or
column we were about to create exists: a peer collector's DDL committed after we read the
schema; read it again and retry at once, then as tied to records), or *unknown* (retried a few
times, then treated as tied to records, so nothing loops forever).
"""

from __future__ import annotations

import enum

from sqlalchemy import exc as sa_exc


class Fault(enum.Enum):
    TRANSIENT = "transient"
    RECORDS = "records"
    STALE = "stale"
    UNKNOWN = "unknown"


# SQLite primary result codes (the low byte of ``sqlite_errorcode``).
_SQLITE = {
    5: Fault.TRANSIENT,  # BUSY: another connection writes
    6: Fault.TRANSIENT,  # LOCKED
    7: Fault.TRANSIENT,  # NOMEM
    8: Fault.TRANSIENT,  # READONLY: the file or its directory is not writable (yet)
    9: Fault.TRANSIENT,  # INTERRUPT
    10: Fault.TRANSIENT,  # IOERR
    13: Fault.TRANSIENT,  # FULL: disk full, or max_page_count reached
    14: Fault.TRANSIENT,  # CANTOPEN
    15: Fault.TRANSIENT,  # PROTOCOL
    1: Fault.RECORDS,  # ERROR: the SQL a record's names or shape made was refused
    18: Fault.RECORDS,  # TOOBIG
    19: Fault.RECORDS,  # CONSTRAINT
    20: Fault.RECORDS,  # MISMATCH
    25: Fault.RECORDS,  # RANGE
}
# PostgreSQL SQLSTATE: whole classes (two characters), then the exceptions inside them.
_PG_CLASS = {
    "08": Fault.TRANSIENT,  # connection exception
    "40": Fault.TRANSIENT,  # transaction rollback: serialization failure, deadlock
    "53": Fault.TRANSIENT,  # insufficient resources: disk full, out of memory, connections
    "57": Fault.TRANSIENT,  # operator intervention: shutdown, cannot connect now
    "58": Fault.TRANSIENT,  # system error: I/O
    "21": Fault.RECORDS,  # cardinality violation
    "22": Fault.RECORDS,  # data exception: bad value, out of range, NUL byte
    "23": Fault.RECORDS,  # integrity constraint violation
    "42": Fault.RECORDS,  # syntax error or access rule violation: refused names, DDL
    "44": Fault.RECORDS,  # WITH CHECK OPTION violation
    "54": Fault.RECORDS,  # program limit exceeded: too many columns, row too big
    "0A": Fault.RECORDS,  # feature not supported
    "P0": Fault.RECORDS,  # raised by a trigger or function
}
_PG_STATE = {
    "25006": Fault.TRANSIENT,  # read-only transaction (a standby, default_transaction_read_only)
    "42501": Fault.TRANSIENT,  # insufficient privilege: a grant to fix, not a record to drop
    "55P03": Fault.TRANSIENT,  # lock not available
    "55006": Fault.TRANSIENT,  # object in use
    "42P07": Fault.STALE,  # duplicate table (or a table named like an index: records, if again)
    "42701": Fault.STALE,  # duplicate column
    "42710": Fault.STALE,  # duplicate object
}
# Two collectors' CREATE TABLEs of one name at once: the loser trips over the unique index of
# the row types. Unknown, so the batch is retried whole after a pause (by then the peer has
# committed and the schema, read again, has the table); bisecting it at once would dead-letter
# records while the peer's transaction is still open. Never retried forever: UNKNOWN_RETRIES.
_PG_RACE = "pg_type_typname_nsp_index"


def classify(exc: BaseException) -> Fault:
    """Which kind of fault ``exc`` is."""
    if isinstance(exc, TypeError | ValueError | OverflowError | UnicodeError):
        return Fault.RECORDS  # a value no converter or JSON encoder takes
    if not isinstance(exc, sa_exc.SQLAlchemyError):
        return Fault.UNKNOWN
    if isinstance(exc, sa_exc.DBAPIError):
        return _classify_dbapi(exc)
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return Fault.TRANSIENT  # the pool had no connection to give
    if isinstance(exc, sa_exc.StatementError):
        return Fault.RECORDS  # a value the driver or a type processor could not bind
    return Fault.UNKNOWN


def _classify_dbapi(exc: sa_exc.DBAPIError) -> Fault:
    if exc.connection_invalidated:
        return Fault.TRANSIENT
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _SQLITE:
        return _SQLITE[code & 0xFF]
    state = getattr(orig, "sqlstate", None)
    if state == "23505" and _PG_RACE in str(orig):
        return Fault.UNKNOWN
    if isinstance(state, str) and len(state) == 5:
        return _PG_STATE.get(state) or _PG_CLASS.get(state[:2], Fault.UNKNOWN)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return Fault.TRANSIENT  # no code: a connection that failed or broke
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError):
        return Fault.RECORDS
    return Fault.UNKNOWN
