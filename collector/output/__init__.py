"""Results back out of the database: a table opened by name (tables.py), read into pandas
(read.py, ``collector.read``), or written as CSV, JSON lines or Parquet (formats.py, for
``collector export``)."""
