"""``--arrays FILE.h5``: the arrays of every record into one HDF5 file, the rows into the store.

A batch goes in three steps, so that a crash anywhere leaves a file that opens and no array a
committed row does not point at: (1) each array is appended to its group's ``data`` and the
file flushed, and the slots that the stored rows of the batch's ids point at lose their
``_id`` (such a row may be replaced: the conflict rule decides in the database); (2) the rows,
holding pointers instead of arrays, commit through the wrapped Store; (3) the ``_id`` of each
slot a committed row points at is written and flushed (SWMR readers see a slot only then). A
crash between (1) and (3) is repaired at the next start from the rows; slots of records refused
or already stored keep an empty ``_id``. Pointers carry the file's identity, so rows written
into another file are never followed here. The layout is in collector.arrays.layout. One
collector writes one file (a lock file next to it), and stops, before a commit, when the file
at its path is no longer the one it opened; HDF5 takes only one writer, and readers in SWMR
mode at any time.
"""

from __future__ import annotations

import logging
import os
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
    new_file_id,
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
_SCAN = 1 << 16  # _id values read at a time when looking for unnamed slots


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
            self._inode = _inode(os.stat(self.path))
        except (OSError, ValueError) as exc:
            self._lock.release()
            raise ConfigError(f"--arrays {path}: {first_line(exc)}") from None
        self._repaired = False

    def _open(self, mode: str = "a") -> Any:
        file = self._h5py.File(self.path, mode, libver="latest", locking=False)
        self.id = new_file_id(file)  # attributes are written only outside SWMR mode
        file.swmr_mode = True
        return file

    def _same_file(self) -> None:
        """ConfigError, before anything commits, when the path no longer names the open file
        (deleted, or replaced by another): rows must not point at arrays no one can read."""
        try:
            same = _inode(os.stat(self.path)) == self._inode
        except FileNotFoundError:
            same = False
        if not same:
            raise ConfigError(
                f"--arrays {self.path} was deleted or replaced while the collector ran; "
                "this batch is not stored: put the file back, or start again"
            )

    def write(self, records: list[Record]) -> Refused:
        """Store ``records``, their arrays in the file; the positions refused, with reasons."""
        self._same_file()
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
        if not slots and not any(rec.table in self.file for rec in records):
            refused = self.store.write(records)
            self.added = self.store.added
            return refused
        datas = [dict(rec.data) for rec in records]
        try:
            if slots:
                self._ensure_groups(slots)
            for name, items in slots.items():
                first = self._append(name, [value for _, _, value in items])
                for offset, (index, key, _) in enumerate(items):
                    datas[index][key] = pointer(self.id, name, first + offset)
            self.file.flush()  # every array on disk before any row that points at it commits
        except OSError as exc:  # h5py's errors (a full disk): the batch is retried whole later
            raise DatabaseUnavailable(f"arrays file {self.path}: {first_line(exc)}") from exc
        moved = [rec._replace(data=data) for rec, data in zip(records, datas, strict=True)]
        wanted = self._wanted(moved)
        for _rid, ref in self._pointed(wanted):  # rows the batch may replace: unnamed until (3)
            self._set_id(ref, "")
        self.file.flush()
        self._same_file()
        refused = self.store.write(moved)
        self.added = self.store.added
        self._mark(wanted)
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

    def _wanted(self, records: list[Record]) -> dict[str, tuple[list[str], list[str]]]:
        """Per table: the columns that may hold pointers into this file (the batch's and the
        file's groups), and the ids of the batch's records that carry pointers or whose rows
        may (a replaced row's arrays lose their ``_id``, whatever replaces them)."""
        columns: dict[str, set[str]] = defaultdict(set)
        ids: dict[str, set[str]] = defaultdict(set)
        for rec in records:
            keys = [key for key, value in rec.data.items() if is_pointer(value)]
            if keys or rec.table in self.file:
                columns[rec.table].update((*keys, *self.file.get(rec.table, ())))
                ids[rec.table].add(rec.id)
        return {t: (sorted(columns[t]), sorted(ids[t])) for t in columns if columns[t]}

    def _pointed(self, wanted: dict[str, tuple[list[str], list[str]]]) -> list[tuple[str, Any]]:
        """(id, ref) of each stored row of ``wanted`` whose pointer names a slot of this file."""
        found = []
        for table, (names, ids) in wanted.items():
            for rid, value in self._committed(table, names, ids):
                ref = parse_pointer(value)
                group = self.file.get(ref.group) if ref.file == self.id else None
                if group is not None and ref.slot < group["_id"].shape[0]:
                    found.append((rid, ref))
        return found

    def _mark(self, wanted: dict[str, tuple[list[str], list[str]]]) -> None:
        """Write the ``_id`` of each slot a committed row of the batch points at, as the
        database says."""
        try:
            for rid, ref in self._pointed(wanted):
                self._set_id(ref, rid)
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

    def _set_id(self, ref: Any, rid: str) -> None:
        self.file[ref.group]["_id"][ref.slot] = rid.encode()

    def _repair(self) -> None:
        """Write the ``_id`` of slots whose row committed just before a crash (step 3 lost)."""
        blank: dict[str, set[str]] = defaultdict(set)
        for table in self.file:
            for column in self.file[table]:
                for name in self.file[table][column]:
                    ids = self.file[table][column][name]["_id"]
                    if any((ids[i : i + _SCAN] == b"").any() for i in range(0, len(ids), _SCAN)):
                        blank[table].add(column)
        for table, columns in blank.items():
            for rid, ref in self._pointed({table: (sorted(columns), [])}):
                if self.file[ref.group]["_id"][ref.slot] == b"":
                    self._set_id(ref, rid)
        self.file.flush()
        self._repaired = True

    def close(self) -> None:
        """Close the file (clearing its status flags), release the lock, then close the store."""
        self.file.close()
        self._lock.release()
        self.store.close()


def _inode(found: os.stat_result) -> tuple[int, int]:
    return found.st_dev, found.st_ino
