"""The collector as ``collector run`` and ``collector serve`` run it: connect (waiting for a
Redis Cluster's slot map), load ``--models``, drain the queue until told to stop, optionally
with Prometheus metrics beside it. The commands only turn their flags into these calls."""

from __future__ import annotations

import logging
import threading

import redis

from collector.daemon import Backoff, Collector, Counters
from collector.models import prepare_models
from collector.observer import Observer
from collector.settings import Settings
from collector.stream import reader_client

log = logging.getLogger(__name__)


def connect(redis_url: str, stop: threading.Event) -> redis.Redis | None:
    """A client for ``redis_url``. A Redis Cluster client asks a node for the slot map as it is
    built: until one answers, wait and retry as the daemon does for one server (None: stopped
    first)."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            return reader_client(redis_url)
        except redis.ConnectionError as exc:
            delay = backoff.next()
            log.warning("%s; retrying in %.1f s", exc, delay)
            stop.wait(delay)
    return None


def run_collector(
    settings: Settings, stop: threading.Event, observer: Observer | None = None
) -> Counters:
    """Load ``--models`` if given, then drain the queue until ``stop`` is set; returns what the
    collector did. With ``--pipeline`` the writer process loads the models and writes."""
    models = settings.models if not settings.pipeline else None
    declared = prepare_models(models, settings.db_url) if models else None
    client = connect(settings.redis_url, stop)
    if client is None:
        return Counters()
    collector: Collector
    if settings.pipeline:
        from collector.pipeline import PipelinedCollector

        collector = PipelinedCollector(settings, client=client, observer=observer)
    else:
        collector = Collector(settings, client=client, declared=declared, observer=observer)
    collector.run(stop)
    return collector.counters


def run_with_metrics(settings: Settings, stop: threading.Event, port: int, bind: str) -> Counters:
    """``run_collector`` with Prometheus metrics served at http://BIND:PORT/metrics (0: a free
    port, logged); scrapes read Redis through a client of their own thread."""
    from collector.metrics import Metrics  # prometheus-client only when metrics are asked for

    client = connect(settings.redis_url, stop)
    if client is None:
        return Counters()
    metrics = Metrics(client, settings.queue, settings.shards)
    chosen = metrics.serve(port, bind)
    log.info("metrics at http://%s:%d/metrics", bind, chosen)
    try:
        return run_collector(settings, stop, observer=metrics)
    finally:
        metrics.close()
        client.close()
