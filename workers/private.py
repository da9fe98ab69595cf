"""The check of a directory only this user may write: the SQLite lock directory and the
spool, where another user who could remove, replace or link our files would lose or forge
what they keep."""

from __future__ import annotations

import os
import stat

from workers.errors import ConfigError


def check_private(directory: str | os.PathLike[str], *, follow: bool) -> None:
    """ConfigError in one line unless ``directory`` is a directory this user owns that nobody
    else may write to; a symbolic link to one is taken only when ``follow``."""
    found = os.stat(directory) if follow else os.lstat(directory)
    if not stat.S_ISDIR(found.st_mode):
        raise ConfigError(f"{directory} is not a directory")
    if found.st_uid != os.getuid() or found.st_mode & 0o022:
        raise ConfigError(
            f"{directory} is owned by uid {found.st_uid} with mode "
            f"{stat.S_IMODE(found.st_mode):04o}: it must be this user's (uid {os.getuid()}) and "
            "writable by nobody else"
        )
