"""Which Redis client a URL asks for: a plain ``redis.Redis``, or redis-py's ``RedisCluster``
when the URL says the server is a Redis Cluster.

A URL names a cluster by its scheme, ``redis+cluster://host:port`` (``rediss+cluster://`` with
TLS), or by the query ``?cluster=true`` on an ordinary ``redis://`` / ``rediss://`` URL. The host
is any one node: the client learns the others from it. Everything else in the URL (user,
password, TLS options) means what it means for one server.

The cluster client is returned typed as ``redis.Redis``: it answers the same commands, which is
all the callers use; the two places that need the raw connection of one server
(workers.xadd.send and the collector's read ahead) ask ``is_cluster_client`` first.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from workers.urls import masked

# What a Redis command can raise: redis-py's cluster client raises some errors outside RedisError
# (a slot no known node serves, no node reachable while it reads the slot map again).
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)
SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
TRUE = ("1", "true", "yes", "on")


def is_cluster_url(url: str) -> bool:
    """True when ``url`` names a Redis Cluster (see the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme in SCHEMES:
        return True
    return any(k == "cluster" and v.lower() in TRUE for k, v in parse_qsl(parts.query))


def server_url(url: str) -> str:
    """``url`` as redis-py's ``from_url`` takes it: the plain scheme, no ``cluster`` query."""
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "cluster"])
    return urlunsplit(parts._replace(scheme=SCHEMES.get(parts.scheme, parts.scheme), query=query))


def client_from_url(url: str, **kwargs: Any) -> redis.Redis:
    """A client for ``url``: ``RedisCluster`` for a cluster URL, else ``redis.Redis``. For a
    cluster, ``retry`` is the cluster client's own policy (default: 10 retries, each after
    reading the slot map again).

    A cluster client asks a node for the slot map as it is built, so it cannot be built while
    no node answers: that raises redis.ConnectionError (an outage, as for one server), with the
    password masked."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **kwargs)
    try:
        return cast(redis.Redis, RedisCluster.from_url(server_url(url), **kwargs))
    except redis.exceptions.RedisClusterException as exc:
        message = f"no Redis Cluster node answers at {masked(url)}: {exc}"
        raise redis.ConnectionError(message) from None


def is_cluster_client(client: Any) -> bool:
    """True for a ``RedisCluster`` (it has no single connection pool to borrow from)."""
    return isinstance(client, RedisCluster)
