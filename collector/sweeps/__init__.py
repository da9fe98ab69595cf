"""Parameter sweeps: grids of points, enqueued as RQ jobs."""
