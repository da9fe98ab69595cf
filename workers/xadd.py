"""XADD round trips with little client-side work: the commands' bytes are built directly and the
replies read straight off one pooled connection, with the connection's own retry policy.

redis-py spends more time per command in Python (argument encoding, hooks, reply callbacks)
than building a record costs; for a one-line ``emit`` that overhead decides the price.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from workers.cluster import is_cluster_client


def pack(queue: str, field: str, payloads: Sequence[bytes]) -> bytes:
    """The RESP bytes of ``XADD <queue> * <field> <payload>`` for each payload."""
    key, name = queue.encode(), field.encode()
    names = (len(key), key, len(name), name)
    head = b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$%d\r\n%s\r\n" % names
    return b"".join(b"%s$%d\r\n%s\r\n" % (head, len(p), p) for p in payloads)


def send(client: redis.Redis, queue: str, field: str, payloads: Sequence[bytes]) -> None:
    """XADD every payload in one round trip and read every reply; the first error reply is
    raised after all replies are read (the connection stays in step). Connection errors are
    retried as the client's retry policy says, then raised. On a Redis Cluster (no one pool to
    borrow from) a non-transactional pipeline, which the cluster client sends to the node of
    ``queue``'s slot."""
    if is_cluster_client(client):
        pipe = client.pipeline(transaction=False)
        for payload in payloads:
            pipe.xadd(queue, {field: payload})
        pipe.execute()
        return
    data, count = pack(queue, field, payloads), len(payloads)
    pool = client.connection_pool
    conn = pool.get_connection()
    with replies_on(pool, conn):
        conn.retry.call_with_retry(
            lambda: round_trip(conn, data, count), lambda _error: conn.disconnect()
        )


class replies_on:
    """Read replies on ``conn`` (taken from ``pool``) inside the block; afterwards it goes back
    to the pool, disconnected first after any error but an error reply (that one was read
    whole): a reply may still be on its way, and the socket must never be reused. (A class, not
    a generator: it wraps every emit.)"""

    __slots__ = ("conn", "pool")

    def __init__(self, pool: redis.ConnectionPool, conn: Any) -> None:
        self.pool, self.conn = pool, conn

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_exc: object) -> None:
        if kind is not None and not issubclass(kind, redis.ResponseError):
            self.conn.disconnect()
        self.pool.release(self.conn)


def round_trip(conn: redis.Connection, data: bytes, count: int) -> None:
    """Send ``data`` (``count`` commands) and read every reply; the first error reply is raised
    once all are read, so the connection stays in step."""
    conn.send_packed_command([data])
    error: redis.ResponseError | None = None
    for _ in range(count):
        try:
            conn.read_response()
        except redis.ResponseError as exc:
            error = error or exc
    if error is not None:
        raise error
