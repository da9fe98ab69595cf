"""Numpy arrays into one HDF5 file (``--arrays``): layout, the sink, status-flag repair."""
