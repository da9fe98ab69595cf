"""``--arrays FILE.h5``: the arrays of every record into one HDF5 file, the rows into the store.

A batch goes in three steps, so that a crash anywhere leaves a file that opens and no array a
committed row does not point at: (1) each array is appended to its group's ``data`` and the
file flushed; (2) the rows, holding pointers instead of arrays, commit through the wrapped
Store; (3) the ``_id`` of each slot a committed row points at is written and flushed (SWMR
readers see a slot only then). A crash between (2) and (3) is repaired at the next start from
the rows; slots of records refused or already stored keep an empty ``_id``. The layout is in
collector.arrays.layout. One collector writes one file (a lock file next to it); HDF5 takes
only one writer, and readers in SWMR mode at any time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.arrays.layout import (
    H5PY_MISSING,
    ID_BYTES,
    create_group,
    group_name,
    is_pointer,
    parse_pointer,
    pointer,
    storage_dtype,
)
from collector.arrays.superblock import clear_status_flags
from collector.errors import AlreadyRunning, ConfigError, DatabaseUnavailable, first_line
from collector.lock import WriterLock
from collector.store import Store
from workers.arrays import Array, header, to_numpy
from workers.record import Record

log = logging.getLogger(__name__)
Refused = list[tuple[int, str]]
_ASK = 500  # ids per query when reading back which pointers committed


class ArraySink:
    """Wraps a Store: arrays to the HDF5 file at ``path``, rows (with pointers) to the store."""

    def __init__(self, store: Store, path: str | Path) -> None:
        try:
            import h5py
        except ImportError:
            raise ConfigError(H5PY_MISSING) from None
        self._h5py = h5py
        self.store = store
        self.path = Path(path)
        self.added = 0
        self._lock = WriterLock(str(self.path))
        try:
            self._lock.acquire()
        except AlreadyRunning:
            raise AlreadyRunning(f"another collector already writes arrays to {path}") from None
        except OSError as exc:
            raise ConfigError(f"--arrays {path}: {exc.strerror or exc}") from None
        try:
            fresh = self.path.stat().st_size == 0  # the writer lock made it, empty: a new file
            if not fresh and clear_status_flags(self.path):
                log.warning("%s was left open by a writer that stopped; flags are cleared", path)
            self.file = self._open("w" if fresh else "a")
        except (OSError, ValueError) as exc:
            self._lock.release()
            raise ConfigError(f"--arrays {path}: {first_line(exc)}") from None
        self._repaired = False

    def _open(self, mode: str = "a") -> Any:
        file = self._h5py.File(self.path, mode, libver="latest", locking=False)
        file.swmr_mode = True
        return file

    def write(self, records: list[Record]) -> Refused:
        """Store ``records``, their arrays in the file; the positions refused, with reasons."""
        if not self._repaired:
            self._repair()
        slots: dict[str, list[tuple[int, str, Array]]] = defaultdict(list)
        for index, rec in enumerate(records):
            for key, value in rec.data.items():
                if isinstance(value, Array) and 0 not in value.shape:  # empty: kept in the row
                    if len(rec.id.encode()) > ID_BYTES:
                        continue  # the row keeps it: the file's index cannot name this id
                    slots[group_name(rec.table, key, value.dtype, value.shape)].append(
                        (index, key, value)
                    )
        if not slots:
            refused = self.store.write(records)
            self.added = self.store.added
            return refused
        datas = [dict(rec.data) for rec in records]
        pending: dict[bytes, tuple[str, int]] = {}
        try:
            self._ensure_groups(slots)
            for name, items in slots.items():
                first = self._append(name, [value for _, _, value in items])
                for offset, (index, key, _) in enumerate(items):
                    ref = pointer(name, first + offset)
                    datas[index][key] = ref
                    pending[ref] = (name, first + offset)
            self.file.flush()  # every array on disk before any row that points at it commits
        except OSError as exc:  # h5py's errors (a full disk): the batch is retried whole later
            raise DatabaseUnavailable(f"arrays file {self.path}: {first_line(exc)}") from exc
        moved = [rec._replace(data=data) for rec, data in zip(records, datas, strict=True)]
        refused = self.store.write(moved)
        self.added = self.store.added
        self._mark(moved, pending)
        return refused

    def _ensure_groups(self, slots: dict[str, list[tuple[int, str, Array]]]) -> None:
        """Create the groups this batch needs (HDF5 creates objects only outside SWMR mode)."""
        missing = [name for name in slots if name not in self.file]
        if not missing:
            return
        self.file.close()
        try:
            with self._h5py.File(self.path, "a", libver="latest", locking=False) as file:
                for name in missing:
                    sample = to_numpy(slots[name][0][2])
                    create_group(file, name, sample.dtype, sample.shape)
        finally:
            self.file = self._open()

    def _append(self, name: str, values: list[Array]) -> int:
        """Append ``values`` to a group's ``data`` (``_id`` grows with them, empty); the first
        slot they took."""
        import numpy

        data, ids = self.file[name]["data"], self.file[name]["_id"]
        first = data.shape[0]
        data.resize(first + len(values), axis=0)
        ids.resize(first + len(values), axis=0)
        for slot, value in enumerate(values, first):  # one at a time: no copy of the batch
            dtype, shape, start = header(value)
            kept = numpy.dtype(dtype)
            view = numpy.frombuffer(value, kept, offset=start).reshape(shape)
            data[slot] = view.view(storage_dtype(kept))  # h5py converts the byte order
        data.flush()
        ids.flush()
        return first

    def _mark(self, records: list[Record], pending: dict[bytes, tuple[str, int]]) -> None:
        """Write the ``_id`` of each slot a committed row points at, as the database says."""
        columns: dict[str, set[str]] = defaultdict(set)
        ids: dict[str, set[str]] = defaultdict(set)
        for rec in records:
            for key, value in rec.data.items():
                if is_pointer(value):
                    columns[rec.table].add(key)
                    ids[rec.table].add(rec.id)
        try:
            for table, names in columns.items():
                for rid, ref in self._committed(table, sorted(names), sorted(ids[table])):
                    if ref in pending:
                        self._set_id(*pending[ref], rid)
        except DatabaseUnavailable as exc:  # the rows are committed: the next write repairs
            log.warning("could not read back the committed rows (%s); repairing later", exc)
            self._repaired = False
        self.file.flush()

    def _committed(
        self, table: str, names: list[str], ids: list[str] | None
    ) -> list[tuple[str, bytes]]:
        """(id, pointer) of the rows of ``table`` (those of ``ids``, or all) in ``names``."""
        found: list[tuple[str, bytes]] = []
        try:
            with self.store.engine.connect() as conn:
                tbl = sa.Table(table, sa.MetaData(), autoload_with=conn)
                cols = [tbl.c[n] for n in names if n in tbl.c]
                if not cols:
                    return []
                chunks = [ids[i : i + _ASK] for i in range(0, len(ids), _ASK)] if ids else [None]
                for chunk in chunks:
                    query = sa.select(tbl.c["_id"], *cols)
                    if chunk is not None:
                        query = query.where(tbl.c["_id"].in_(chunk))
                    for row in conn.execute(query):
                        found.extend((row[0], v) for v in row[1:] if is_pointer(v))
        except sa.exc.NoSuchTableError:
            return []
        except sa.exc.SQLAlchemyError as exc:
            raise DatabaseUnavailable(first_line(exc)) from exc
        return found

    def _set_id(self, name: str, slot: int, rid: str) -> None:
        self.file[name]["_id"][slot] = rid.encode()

    def _repair(self) -> None:
        """Write the ``_id`` of slots whose row committed just before a crash (step 3 lost)."""
        blank: dict[str, set[str]] = defaultdict(set)
        for table in self.file:
            for column in self.file[table]:
                for name in self.file[table][column]:
                    ids = self.file[table][column][name]["_id"][:]
                    if (ids == b"").any():
                        blank[table].add(column)
        for table, columns in blank.items():
            for rid, ref in self._committed(table, sorted(columns), None):
                name, slot = parse_pointer(ref)
                known = name in self.file and slot < self.file[name]["_id"].shape[0]
                if known and self.file[name]["_id"][slot] == b"":
                    self._set_id(name, slot, rid)
        self.file.flush()
        self._repaired = True

    def close(self) -> None:
        """Close the file (clearing its status flags), release the lock, then close the store."""
        self.file.close()
        self._lock.release()
        self.store.close()
