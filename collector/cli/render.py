"""Any stored value as one short line of text, for ``collector dead list``: nested values are
shown to a bounded depth and the text cut at a bounded length, so no value (nested a million
deep, a megabyte of text, a type we never made) can make a listing fail or flood a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workers.checks import is_identifier

DEPTH = 4  # containers below this show as [...] / {...}
SCALAR_CHARS = 200  # text and bytes are cut to this before their repr is taken


def render(value: Any, most: int, depth: int = DEPTH) -> str:
    """``value`` as text of at most ``most`` characters (cut with an ellipsis)."""
    out: list[str] = []
    size = 0
    for piece in _pieces(value, depth):
        out.append(piece)
        size += len(piece)
        if size > most:
            break
    return shorten("".join(out), most)


def render_fields(data: dict[Any, Any], most: int, depth: int = DEPTH) -> str:
    """A record's fields as ``k=v, ...`` of at most ``most`` characters."""
    out: list[str] = []
    size = 0
    for i, (key, value) in enumerate(data.items()):
        piece = f"{', ' if i else ''}{key if is_identifier(key) else _scalar(key)}="
        piece += render(value, most - size, depth)
        out.append(piece)
        size += len(piece)
        if size > most:
            break
    return shorten("".join(out), most)


def shorten(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= most else text[: max(most - 1, 0)] + "…"


def _pieces(value: Any, depth: int) -> Iterator[str]:
    """The text of ``value`` a piece at a time, so a caller can stop early; recursion is
    bounded by ``depth``, not by the value."""
    if isinstance(value, list | tuple):
        if depth <= 0:
            yield "[…]" if value else "[]"
            return
        yield "["
        for i, item in enumerate(value):
            yield ", " if i else ""
            yield from _pieces(item, depth - 1)
        yield "]"
    elif isinstance(value, dict):
        if depth <= 0:
            yield "{…}" if value else "{}"
            return
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ", " if i else ""
            yield from _pieces(key, 0)
            yield ": "
            yield from _pieces(item, depth - 1)
        yield "}"
    else:
        yield _scalar(value)


def _scalar(value: Any) -> str:
    """repr of a scalar, long text and bytes cut first; a repr that fails is named by type."""
    if isinstance(value, str | bytes) and len(value) > SCALAR_CHARS:
        return repr(value[:SCALAR_CHARS]) + f"…({len(value)})"
    try:
        return repr(value)
    except Exception:  # a type from the wire whose repr raises: the listing goes on
        return f"<{type(value).__name__}>"
