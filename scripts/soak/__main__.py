"""``python -m scripts.soak --seed S --minutes M --db sqlite|postgresql|mysql [--shards N]``."""

from __future__ import annotations

import argparse
import shlex
import sys

import sqlalchemy as sa

from scripts.soak.databases import mysql_supported
from scripts.soak.run import Options, soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.soak", description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "mysql"], required=True)
    parser.add_argument("--shards", type=int, default=None, help="start with N shards (>= 2)")
    parser.add_argument("--producers", type=int, default=None, help="default: 4-8 from the seed")
    parser.add_argument(
        "--collector-command",
        default=None,
        help="run this instead of `collector run` (the defect test's wrapper); it reads "
        "--redis-url and --db-url on stdin, as scripts/soak/child.py does",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.db == "mysql" and not mysql_supported():
        print("soak: mysql not supported yet")
        return 2
    if args.shards is not None and args.shards < 2:
        parser.error("--shards must be at least 2")
    command = shlex.split(args.collector_command) if args.collector_command else None
    opts = Options(args.seed, args.minutes, args.db, args.shards, args.producers, command,
                   args.keep)  # fmt: skip
    try:
        return soak(opts)
    except (OSError, RuntimeError, sa.exc.OperationalError) as exc:
        print(f"soak: cannot run: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
