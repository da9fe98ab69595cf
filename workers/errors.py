"""Errors raised on the node side.

CollectorError                  root of every error this project raises
├── EncodeError                 a result cannot be put on the wire (unsupported value, too big)
├── DecodeError                 bytes from the stream are not a valid record (carries .raw)
├── EmitError                   Redis refused the record and no spool could keep it
├── ConfigError                 a bad setting: a URL, a variable, a flag (the collector's too)
└── SettingsError               a COLLECTOR_* variable or the connection file is malformed
"""

from __future__ import annotations


class CollectorError(Exception):
    """Root of every error raised by result-collector."""


class EncodeError(CollectorError, ValueError):
    """A result cannot be encoded: unsupported value type, bad table name or key, too large."""


class DecodeError(CollectorError, ValueError):
    """Bytes read from the stream are not a valid record; ``raw`` keeps them for the dead letter."""

    def __init__(self, reason: str, raw: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class EmitError(CollectorError):
    """A record could be neither sent to Redis nor kept in the local spool."""


class ConfigError(CollectorError):
    """A setting is invalid (a URL, an environment variable, a flag); the collector's commands
    raise the same class and exit with RET_CONFIG."""

    exit_code = 2  # collector.errors.RET_CONFIG, which the node side cannot import


class SettingsError(CollectorError, ValueError):
    """An emitter's setting from the environment or the connection file is malformed (a
    ValueError too, as it always was); the CLI shows it in one line and exits 2."""

    exit_code = 2
