"""A ``collector`` subcommand as a child of the soak, its URLs read from stdin: a URL may hold a
password, and the project puts none in argv or a child's environment (scripts/bench/child.py
does the same). The first line on stdin is a JSON map of option -> value, appended to argv.

    python -m scripts.soak.child run --queue Q ...     <<< '{"--redis-url": ..., "--db-url": ...}'
"""

from __future__ import annotations

import json
import sys
from typing import IO

BAD_LINE = "soak child: the first line on stdin must be a JSON map of options"


def options_line(options: dict[str, str]) -> str:
    """The line a child reads: ``options`` (``{"--redis-url": url, ...}``) as one JSON line."""
    return json.dumps(options) + "\n"


def read_options(stream: IO[str]) -> list[str]:
    """The options of the first line of ``stream`` as arguments; one line and exit 2 if bad."""
    try:
        options = json.loads(stream.readline())
    except ValueError:
        options = None
    if not isinstance(options, dict) or not all(
        isinstance(k, str) and k.startswith("--") and isinstance(v, str) for k, v in options.items()
    ):
        print(BAD_LINE, file=sys.stderr)
        raise SystemExit(2)
    return [part for item in options.items() for part in item]


def main(argv: list[str]) -> None:
    """Run ``collector ARGV...`` with the options read from stdin after ARGV."""
    options = read_options(sys.stdin)
    from collector.cli import main as collector  # after the check: a bad line costs no import

    collector([*argv, *options], prog_name="collector")


if __name__ == "__main__":
    main(sys.argv[1:])
