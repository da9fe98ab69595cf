"""The store stage: records in, rows committed, refusals out.

columns.py     the rules once: metadata columns, value kinds
schema.py      tables in memory; a batch planned against them (fits, new columns, widen)
ddl.py         create, add, widen, inside the batch's transaction (each database's DDL
               from collector.dialects)
conflict.py    the conflict rule: the first emitted row stays, a success replaces a failure
writers.py     rows as tuples; the generic insert (the fast ones are the dialects')
timestamps.py  datetimes as stored (naive UTC)
classify.py    every error: transient, tied to records, or unknown (fault.py: the kinds)
store.py       Store.write: one transaction per batch, bisection down to the bad records
"""

from collector.store.columns import META_COLUMNS, kind_of_sql
from collector.store.schema import Schema, TableInfo
from collector.store.store import Store

__all__ = ["META_COLUMNS", "Schema", "Store", "TableInfo", "kind_of_sql"]
