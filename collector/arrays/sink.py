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
mode at any time. A batch waits until the disk has room for it; an HDF5 write error all the
same stops the collector (HDF5 cannot go on with the file in the same process).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

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
from collector.arrays.rows import committed_pointers
from collector.arrays.superblock import clear_status_flags
from collector.errors import (
    AlreadyRunning,
    CommandFailed,
    ConfigError,
    DatabaseUnavailable,
    first_line,
)
from collector.lock import WriterLock
from collector.store import Store
from workers.arrays import Array, header, to_numpy
from workers.record import Record

log = logging.getLogger(__name__)
Refused = list[tuple[int, str]]
Wanted = dict[str, tuple[list[str], list[str]]]  # table -> (columns, ids) whose pointers to name
_SCAN = 1 << 16  # _id values read at a time when looking for unnamed slots
H5_ERRORS = (OSError, RuntimeError)  # what h5py raises for a failed write (ENOSPC on a flush)
_SPARE = 16 << 20  # bytes of room kept beyond a batch's arrays, for HDF5's chunks and metadata


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
        self._failed: str | None = None

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
        slots: dict[str, list[tuple[int, str, Array]]] = defaultdict(list)
        for index, rec in enumerate(records):
            for key, value in rec.data.items():
                if isinstance(value, Array) and 0 not in value.shape:  # empty: kept in the row
                    if len(rec.id.encode()) > ID_BYTES:
                        continue  # the row keeps it: the file's index cannot name this id
                    slots[group_name(rec.table, key, value.dtype, value.shape)].append(
                        (index, key, value)
                    )
        if self._failed is not None:
            raise CommandFailed(self._failed)
        if slots:
            self._room(slots)
        try:  # an HDF5 write error (the disk filled meanwhile, EIO) stops the collector
            if not self._repaired:
                self._repair()
            wanted: Wanted = {}
            if not slots and not any(rec.table in self.file for rec in records):
                moved = records
            else:
                moved, wanted = self._place(records, slots)
        except H5_ERRORS as exc:
            raise self._broken(exc) from exc
        self._same_file()
        refused = self.store.write(moved)
        self.added = self.store.added
        if wanted:
            try:
                self._mark(wanted)
            except H5_ERRORS as exc:  # committed, not acknowledged: delivered again, deduped
                raise self._broken(exc) from exc
        return refused

    def _room(self, slots: dict[str, list[tuple[int, str, Array]]]) -> None:
        """DatabaseUnavailable (the batch waits, retried) unless the file system has room for
        the batch's arrays: HDF5 must never meet a full disk (it cannot recover in-process)."""
        need = sum(len(value) for items in slots.values() for _, _, value in items) + _SPARE
        found = os.statvfs(self.path.parent if self.path.parent != Path() else ".")
        free = found.f_bavail * found.f_frsize
        if free < need:
            raise DatabaseUnavailable(
                f"arrays file {self.path}: {free} bytes free on its file system, "
                f"the batch needs about {need}"
            )

    def _place(
        self, records: list[Record], slots: dict[str, list[tuple[int, str, Array]]]
    ) -> tuple[list[Record], Wanted]:
        """Step (1): the records with pointers in place of their arrays, appended and flushed,
        and the slots of their stored rows unnamed; the tables, columns and ids to name."""
        datas = [dict(rec.data) for rec in records]
        if slots:
            self._ensure_groups(slots)
        for name, items in slots.items():
            first = self._append(name, [value for _, _, value in items])
            for offset, (index, key, _) in enumerate(items):
                datas[index][key] = pointer(self.id, name, first + offset)
        self.file.flush()  # every array on disk before any row that points at it commits
        moved = [rec._replace(data=data) for rec, data in zip(records, datas, strict=True)]
        wanted = self._wanted(moved)
        for _rid, ref in self._pointed(wanted):  # rows the batch may replace: unnamed until (3)
            self._set_id(ref, "")
        self.file.flush()
        return moved, wanted

    def _broken(self, exc: Exception) -> CommandFailed:
        """After an HDF5 write error the library's state of the file is not trusted (reopening
        it in this process can crash it): stop; the next start clears the flags and repairs,
        and the records not acknowledged are delivered again."""
        self._failed = (
            f"arrays file {self.path}: {first_line(exc)}; the collector stops (the records wait "
            "in Redis): fix the cause, then start it again"
        )
        return CommandFailed(self._failed)

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

    def _wanted(self, records: list[Record]) -> Wanted:
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

    def _pointed(self, wanted: Wanted) -> list[tuple[str, Any]]:
        """(id, ref) of each stored row of ``wanted`` whose pointer names a slot of this file."""
        found = []
        for table, (names, ids) in wanted.items():
            for rid, value in self._committed(table, names, ids):
                ref = parse_pointer(value)
                group = self.file.get(ref.group) if ref.file == self.id else None
                if group is not None and ref.slot < group["_id"].shape[0]:
                    found.append((rid, ref))
        return found

    def _mark(self, wanted: Wanted) -> None:
        """Write the ``_id`` of each slot a committed row of the batch points at, as the
        database says."""
        try:
            for rid, ref in self._pointed(wanted):
                self._set_id(ref, rid)
        except DatabaseUnavailable as exc:  # the rows are committed: the next write repairs
            log.warning("could not read back the committed rows (%s); repairing later", exc)
            self._repaired = False
        self.file.flush()

    def _committed(self, table: str, names: list[str], ids: list[str]) -> list[tuple[str, bytes]]:
        return committed_pointers(self.store.engine, table, names, ids)

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
        try:
            self.file.close()
        except H5_ERRORS as exc:  # a full disk: nothing a committed row points at is lost
            log.warning("closing %s: %s", self.path, first_line(exc))
        self._lock.release()
        self.store.close()


def _inode(found: os.stat_result) -> tuple[int, int]:
    return found.st_dev, found.st_ino
