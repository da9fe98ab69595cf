"""``@collect``: a job function whose arguments and return value become one row of a table.

The bound arguments are the input columns; a dict return adds output columns, anything else the
column ``result``. An exception stores the inputs with ``_error`` and is re-raised.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal, ParamSpec, TypeVar

from workers.api import default_emitter
from workers.emitter import Emitter, as_data
from workers.errors import EncodeError
from workers.keys import point_key

P = ParamSpec("P")
R = TypeVar("R")
KeyMode = Literal["params"] | None


def collect(
    table: str = "results", *, key: KeyMode = None, emitter: Emitter | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Emit one row per call of the decorated function to ``table``; returns what it returns.

    The row's key (its ``_id``): the RQ job id when the call is the RQ job itself, so a retried
    or re-enqueued job stays one row; with ``key="params"`` a hash of (table, the arguments other
    than ``replicate``, the ``replicate`` argument or 0), so the same point is one row whoever
    runs it (``workers.keys.point_key``, as a sweep's ledger expects); otherwise a fresh id. A
    failed call's row (inputs and ``_error``) has the same key. ``emitter`` defaults to the
    process's default Emitter.
    """
    if key not in (None, "params"):
        raise ValueError(f'key must be None or "params", not {key!r}')

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            inputs = _inputs(signature, args, kwargs)
            record_key = _record_key(table, key, inputs, wrapper)
            target = emitter or default_emitter()
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                _emit_error(target, inputs, exc, table, record_key)
                raise
            try:
                target.emit(_row(inputs, result), table=table, key=record_key)
            except EncodeError as exc:  # a result we cannot store: keep the inputs and why
                _emit_error(target, inputs, exc, table, record_key)
                raise
            return result

        return wrapper

    return decorate


def _inputs(signature: inspect.Signature, args: Any, kwargs: Any) -> dict[str, Any]:
    """Argument name -> value, defaults applied; ``**kwargs`` spread out into their own columns."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    inputs: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            inputs.update(value)
        else:
            inputs[name] = value
    return inputs


def _row(inputs: dict[str, Any], result: Any) -> dict[str, Any]:
    """Inputs plus outputs; an output named like an argument is an error, not an overwrite."""
    outputs = as_data(result)
    clash = sorted(set(inputs) & set(outputs))
    if clash:
        raise EncodeError(f"returned key(s) {', '.join(clash)} repeat argument names; rename them")
    return {**inputs, **outputs}


def _record_key(table: str, mode: KeyMode, inputs: Mapping[str, Any], func: Any) -> str | None:
    """The record id for this call, or None for a fresh one (see ``collect``)."""
    if mode == "params":
        return point_key(table, inputs)
    return _rq_job_id(func)


def _rq_job_id(func: Any) -> str | None:
    """The current RQ job's id when ``func`` is that job's function, else None.

    A collect function called several times from inside some other job gets fresh keys, so its
    rows do not collapse into one. RQ is looked at only when the process has imported it.
    """
    if "rq" not in sys.modules:
        return None
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        return None
    try:
        job_func = job.func
    except (AttributeError, ImportError, ValueError):
        return None
    return str(job.id) if job_func is func else None


def _emit_error(
    target: Emitter, inputs: dict[str, Any], exc: Exception, table: str, key: str | None
) -> None:
    """Store the inputs with ``_error``; if even that fails, say so in a note on ``exc``."""
    try:
        target.emit({**inputs, "_error": f"{type(exc).__name__}: {exc}"}, table=table, key=key)
    except Exception as emit_exc:
        exc.add_note(f"collect: the error row could not be sent: {emit_exc!r}")
