"""Parameter sweeps: points from grids or CSV, a ledger in the database, status, reruns, plots."""
