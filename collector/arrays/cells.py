"""An array cell as text, for ``collector export``: exact and readable without our code.

An array stored in the row becomes ``{"dtype": "<f4", "shape": [3, 4], "base64": "..."}`` (the
C-order elements: ``numpy.frombuffer(base64.b64decode(b), dtype).reshape(shape)``); a pointer
into the ``--arrays`` file becomes ``{"hdf5": "/table/column/group", "slot": 17, "file": id}``
(``id``: the file's root attribute ``collector_file``).
"""

from __future__ import annotations

import base64
from typing import Any

from collector.arrays.layout import is_pointer, parse_pointer
from workers.arrays import header, is_array_payload


def array_cell(value: bytes) -> dict[str, Any] | None:
    """The JSON object of an array (or a pointer to one) stored in a cell; None for others."""
    if is_array_payload(value):
        dtype, shape, start = header(value)
        data = base64.b64encode(memoryview(value)[start:]).decode()
        return {"dtype": dtype, "shape": list(shape), "base64": data}
    if is_pointer(value):
        ref = parse_pointer(value)
        return {"hdf5": ref.group, "slot": ref.slot, "file": ref.file.hex()}
    return None
