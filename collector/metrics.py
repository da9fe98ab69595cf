"""Prometheus metrics of one collector, served at ``/metrics`` (``collector run --metrics-port``).

Counters and the batch histogram are fed by the daemon through the Observer hooks; the backlog
gauges are read from Redis at each scrape, so they are true even while the loop waits on a
failing database. Each collector serves its own registry: with several collectors, sum the
counters, and read the backlog gauges from any one of them (they describe the shared stream).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import redis

from collector.errors import ConfigError
from collector.lag import total_lag
from collector.shards import known_streams
from workers.cluster import REDIS_ERRORS

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector as _Collector
except ImportError:  # pragma: no cover - the metrics extra is not installed
    _Collector = object  # type: ignore[assignment,misc]
    HAVE_CLIENT = False
else:
    HAVE_CLIENT = True

log = logging.getLogger(__name__)
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STREAM_GAUGES = {  # lag() key -> (metric name, help)
    "backlog": ("collector_backlog_records", "Records in the queue stream, pending included."),
    "pending": ("collector_pending_records", "Records read but not yet acknowledged."),
    "oldest_pending_age": (
        "collector_oldest_pending_age_seconds",
        "Age of the oldest pending record (0 when none), by the Redis clock.",
    ),
    "oldest_age": (
        "collector_oldest_record_age_seconds",
        "Age of the oldest record in the queue stream (0 when empty): the lag in time.",
    ),
    "dead": ("collector_dead_letters", "Entries in the dead-letter stream."),
}


class _StreamCollector(_Collector):  # type: ignore[misc]
    """The stream gauges, read from Redis when Prometheus scrapes; none when Redis is down
    (``collector_up`` says why the numbers are missing)."""

    def __init__(self, client: redis.Redis, queue: str, shards: int) -> None:
        self.client, self.queue, self.shards = client, queue, shards

    def collect(self) -> Iterator[Any]:
        try:  # the streams now: a shard another count left records on is counted too
            found = total_lag(self.client, known_streams(self.client, self.queue, self.shards))
        except REDIS_ERRORS as exc:
            log.debug("metrics: redis unavailable: %s", exc)
            return
        for key, (name, text) in STREAM_GAUGES.items():
            yield GaugeMetricFamily(name, text, value=found[key])

    def describe(self) -> Iterable[Any]:
        return []  # values only at scrape time: no Redis call at registration


class Metrics:
    """The collector's metrics in their own registry; an Observer for ``Collector``."""

    def __init__(self, client: redis.Redis, queue: str, shards: int = 1) -> None:
        if not HAVE_CLIENT:
            raise ConfigError(
                "--metrics-port needs prometheus-client: pip install 'result-collector[metrics]'"
            )
        self.registry = CollectorRegistry()
        reg = self.registry
        self.records = Counter(
            "collector_records", "Records handled, by outcome.", ["outcome"], registry=reg
        )
        self.batches = Counter("collector_batches", "Batches committed.", registry=reg)
        self.batch_seconds = Histogram(
            "collector_batch_seconds",
            "Seconds from reading a batch to committing it.",
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.errors = Counter(
            "collector_store_errors",
            "Failed attempts at a batch, by kind (database, redis).",
            ["kind"],
            registry=reg,
        )
        self.up = Gauge(
            "collector_up", "1 while batches succeed, 0 while one keeps failing.", registry=reg
        )
        for outcome in ("stored", "dead"):
            self.records.labels(outcome)  # present at 0 before the first batch
        for kind in ("database", "redis"):
            self.errors.labels(kind)
        self.up.set(1)
        reg.register(_StreamCollector(client, queue, shards))
        self._server: Any = None

    def batch_done(self, seconds: float, stored: int, dead: int) -> None:
        self.records.labels("stored").inc(stored)
        self.records.labels("dead").inc(dead)
        self.batches.inc()
        self.batch_seconds.observe(seconds)
        self.up.set(1)

    def batch_failed(self, kind: str) -> None:
        self.errors.labels(kind).inc()
        self.up.set(0)

    def serve(self, port: int, bind: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` from a daemon thread; returns the port (``port`` 0: a free one)."""
        try:
            self._server, _thread = start_http_server(port, addr=bind, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {bind}:{port}: {exc}") from None
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop serving (a stopped collector's numbers would mislead a scraper)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
