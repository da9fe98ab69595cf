"""Node side of result-collector: hand results to Redis in well under a millisecond.

Imports only redis and msgpack, never SQLAlchemy or the collector.
"""

from workers.api import default_emitter, emit, emit_many, reset
from workers.decorators import collect
from workers.emitter import Emitter
from workers.errors import CollectorError, DecodeError, EmitError, EncodeError
from workers.record import Limits, Record

__all__ = [
    "CollectorError",
    "DecodeError",
    "EmitError",
    "Emitter",
    "EncodeError",
    "Limits",
    "Record",
    "collect",
    "default_emitter",
    "emit",
    "emit_many",
    "reset",
]
