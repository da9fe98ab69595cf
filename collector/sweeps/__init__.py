"""Parameter sweeps: functions that decide and return data; ``collector sweep`` (cli/sweep/)
parses the text, opens the connections and prints.

ledger.py    the sweep and its points in ``_sweeps`` / ``_sweep_points``, stored with the results
progress.py  each point done, failed, running (asked from RQ) or missing
submit.py    one RQ job per point, and the submission noted in the ledger
missing.py   what a rerun covers: missing and failed points, failed rows retired when resubmitted
accounting.py  Slurm's sacct fields (state, elapsed, peak memory) joined to each point by _job
plot.py      a heat map or a line of one output over the inputs
"""
