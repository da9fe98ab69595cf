"""How a URL names a Redis Cluster, and that such a URL is accepted and masked like any other."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from collector.settings import Settings, check_redis_url
from workers.cluster import client_from_url, is_cluster_client, is_cluster_url, server_url
from workers.urls import masked


@pytest.mark.parametrize(
    ("url", "cluster", "plain"),
    [
        ("redis://h:6379/0", False, "redis://h:6379/0"),
        ("redis+cluster://h:7000/0", True, "redis://h:7000/0"),
        ("rediss+cluster://u:pw@h:7000", True, "rediss://u:pw@h:7000"),
        ("redis://h:7000/0?cluster=true", True, "redis://h:7000/0"),
        ("redis://h:7000/0?cluster=false&socket_timeout=2", False,
         "redis://h:7000/0?socket_timeout=2"),
    ],
)  # fmt: skip
def test_a_url_names_a_cluster_by_scheme_or_query(url: str, cluster: bool, plain: str) -> None:
    assert is_cluster_url(url) is cluster
    assert server_url(url) == plain


def test_cluster_urls_pass_the_checks_and_are_masked() -> None:
    url = "redis+cluster://alice:s3cret@h:7000/0"
    assert check_redis_url(url) == url
    assert masked(url) == "redis+cluster://alice:***@h:7000/0"
    assert "s3cret" not in repr(Settings(redis_url=url, shards=6))


def test_the_client_follows_the_url() -> None:
    plain = client_from_url("redis://127.0.0.1:1/0")
    assert isinstance(plain, redis.Redis) and not is_cluster_client(plain)
    plain.close()
    with pytest.raises(redis.exceptions.RedisClusterException):  # no node answers: no client
        RedisCluster.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(redis.ConnectionError, match=r"redis\+cluster://u:\*\*\*@127.0.0.1:1/0"):
        client_from_url("redis+cluster://u:s3cret@127.0.0.1:1/0")
