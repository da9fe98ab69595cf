"""``collector web``: the live status page. ``app`` serves the page and its JSON (read-only,
token-gated when asked), ``data`` reads what ``status --json`` does not give: newest rows, the
stored rate, sweeps and their heat maps, pages of dead letters. The chart script (uPlot, MIT,
its licence beside it) ships in ``static/``, so the page needs no internet."""
