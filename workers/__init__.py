"""Node side of result-collector: hand results to Redis in well under a millisecond.

Imports only redis and msgpack, never SQLAlchemy or the collector. ``__all__`` is what code on a
compute node uses: ``emit``/``emit_many`` (over the default Emitter, ``default_emitter`` and
``reset``), ``Emitter``, ``collect``, and the errors they raise. The wire codec is the
collector's business: ``workers.record`` (Record, Limits) and ``workers.errors`` (DecodeError).
"""

from workers.api import default_emitter, emit, emit_many, reset
from workers.decorators import collect
from workers.emitter import Emitter
from workers.errors import CollectorError, EmitError, EncodeError

# Not exported: still importable from here only because tests/test_codec_properties.py,
# tests/test_security.py and tests/faults/test_broker_outage.py (being changed in another issue)
# import them so; once they import from workers.record / workers.errors, delete these lines.
from workers.errors import DecodeError as DecodeError
from workers.record import Limits as Limits
from workers.record import Record as Record

__all__ = [
    "CollectorError",
    "EmitError",
    "Emitter",
    "EncodeError",
    "collect",
    "default_emitter",
    "emit",
    "emit_many",
    "reset",
]
