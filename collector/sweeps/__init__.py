"""Parameter sweeps: functions that decide and return data; ``collector sweep`` (cli/sweep/)
parses the text, opens the connections and prints.

ledger.py    the sweep and its points in ``_sweeps`` / ``_sweep_points``, stored with the results
progress.py  each point done, failed, queued, running (asked from RQ) or missing
daskjobs.py  one Dask task per point, and which are queued or running on the scheduler
jobs.py      the progress asked where the sweep runs (RQ or Dask): sweep status and the page
submit.py    one RQ job per point, and the submission noted in the ledger
missing.py   what a rerun covers: missing and failed points, failed rows retired when resubmitted
accounting.py  Slurm's sacct fields (state, elapsed, peak memory) joined to each point by _job
plot.py      a heat map or a line of one output over the inputs
"""
