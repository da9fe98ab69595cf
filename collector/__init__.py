"""Collector side of result-collector: the daemon that drains the queue into one database, and
``read`` to get a table back as a pandas DataFrame."""

from collector.daemon import Collector
from collector.errors import NoSuchTable
from collector.models import load_models
from collector.read import read
from collector.settings import Settings

__all__ = ["Collector", "NoSuchTable", "Settings", "load_models", "read"]
