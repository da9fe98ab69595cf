"""``collector sweep``: declare a sweep, submit it to RQ, follow it, rerun what is missing, plot.

One file per subcommand, each a thin layer over its module in ``collector.sweeps`` (which makes
the decisions: which points, what to retire, what to enqueue): here the text is parsed,
connections opened and results printed.
"""

from __future__ import annotations

import click

from collector.cli.sweep.declare import declare
from collector.cli.sweep.missing import missing
from collector.cli.sweep.plot import plot
from collector.cli.sweep.status import sweep_status
from collector.cli.sweep.submit import submit


@click.group()
def sweep() -> None:
    """Parameter sweeps: declare, submit to RQ, follow, resubmit what is missing, plot.

    \b
    Example:
      collector sweep submit mymodule.op --sweep demo --table data --grid I=0:1:0.1 --grid J=1,2
      collector sweep status demo --watch
    """


sweep.add_command(declare)
sweep.add_command(submit)
sweep.add_command(sweep_status)
sweep.add_command(missing)
sweep.add_command(plot)
