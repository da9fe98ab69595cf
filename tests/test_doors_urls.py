"""Every Redis and database URL is checked once, with one message per problem: a URL the check
accepts is one the client library takes, a URL it refuses is one line with the password
masked, and no URL ends in a traceback (a bad port, a database that is no number)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from collector import errors
from collector.settings import MAX_SECONDS, check_db_url
from tests.helpers import REAL_REDIS_URL, collector
from workers import errors as node_errors
from workers.cluster import client_from_url, is_cluster_url
from workers.urls import check_redis_url, masked

SECRET = "s3cr3t"


def test_the_config_error_is_one_class_on_both_sides() -> None:
    assert errors.ConfigError is node_errors.ConfigError
    assert errors.exit_code_of(node_errors.ConfigError("x")) == errors.RET_CONFIG


@pytest.mark.parametrize(
    ("url", "line"),
    [
        ("redis://h:99999/0", "redis url port 99999 is outside 1-65535: redis://h:99999/0"),
        ("redis://h:abc/0", "redis url port 'abc' is not a number: redis://h:abc/0"),
        (f"redis://u:{SECRET}@h:0/0", "redis url port 0 is outside 1-65535: redis://u:***@h:0/0"),
        ("redis://h:6379/x", "redis url database 'x' is not a number (redis://host:6379/0): "
         "redis://h:6379/x"),
        (f"redis://:{SECRET}@:6379/0", "redis url has no host (redis://HOST:6379/0): "
         "redis://:***@:6379/0"),
        ("redis+cluster://h:7000/3", "redis url database 3 on a Redis Cluster, which has only "
         "database 0: redis+cluster://h:7000/3"),
        ("http://h/0", "redis url must start with redis://, rediss://, unix://, redis+cluster:// "
         "or rediss+cluster://: http://h/0"),
        ("redis://h/0?decode_responses=yes", "redis url sets decode_responses: records travel "
         "as msgpack bytes, which are no text (drop it): redis://h/0?decode_responses=yes"),
        ("unix:///r.sock?decode_responses=1", "redis url sets decode_responses: records travel "
         "as msgpack bytes, which are no text (drop it): unix:///r.sock?decode_responses=1"),
        ("redis://h/0?socket_timeout=abc", "redis url query parameter socket_timeout='abc' is "
         "not what redis-py reads (float): redis://h/0?socket_timeout=abc"),
        ("unix:///r.sock?max_connections=x", "redis url query parameter max_connections='x' is "
         "not what redis-py reads (int): unix:///r.sock?max_connections=x"),
        ("redis://h/0?protocol=4", "redis url protocol '4' is not 2 or 3: redis://h/0?protocol=4"),
        ("redis://h/0?foo=1", "redis url query parameter 'foo' is not one redis-py takes "
         "here: redis://h/0?foo=1"),
        ("redis://h/0?ssl_cert_reqs=none", "redis url query parameter 'ssl_cert_reqs' is not "
         "one redis-py takes here (ssl_ parameters need rediss://): "
         "redis://h/0?ssl_cert_reqs=none"),
        ("unix:///r.sock?socket_keepalive=1", "redis url query parameter 'socket_keepalive' is "
         "not one redis-py takes here: unix:///r.sock?socket_keepalive=1"),
        ("redis://h/0?timeout=5", "redis url query parameter 'timeout' is not one redis-py "
         "takes here: redis://h/0?timeout=5"),
        ("redis://h/0?socket_timeout=-1", "redis url query parameter socket_timeout='-1' is "
         "not a number of seconds above 0: redis://h/0?socket_timeout=-1"),
        ("redis://h/0?socket_connect_timeout=inf", "redis url query parameter "
         "socket_connect_timeout='inf' is not a number of seconds above 0: "
         "redis://h/0?socket_connect_timeout=inf"),
        ("redis://h/0?socket_timeout=1e999", "redis url query parameter socket_timeout='1e999' "
         "is not a number of seconds above 0: redis://h/0?socket_timeout=1e999"),
        ("redis://h/0?socket_timeout=nan", "redis url query parameter socket_timeout='nan' is "
         "not a number of seconds above 0: redis://h/0?socket_timeout=nan"),
        ("redis://h/0?max_connections=0", "redis url query parameter max_connections='0' is "
         "below 1: redis://h/0?max_connections=0"),
        ("redis://h/0?socket_read_size=-1", "redis url query parameter socket_read_size='-1' "
         "is below 1: redis://h/0?socket_read_size=-1"),
        ("redis://h:6379/0\n", "redis url holds a control character: redis://h:6379/0\\n"),
    ],
)  # fmt: skip
def test_each_redis_url_problem_has_its_message(url: str, line: str) -> None:
    with pytest.raises(node_errors.ConfigError) as caught:
        check_redis_url(url)
    assert str(caught.value) == line


@pytest.mark.parametrize(
    ("url", "line"),
    [
        (f"postgresql://u:{SECRET}@h:abc/db", "database url port 'abc' is not a number: "
         "postgresql://u:***@h:abc/db"),
        ("postgresql://h:70000/db", "database url port 70000 is outside 1-65535: "
         "postgresql://h:70000/db"),
        ("postgres://h/db", "database URL scheme postgres:// is spelled postgresql+psycopg://"),
        ("nosuchdb://h/db", "database 'nosuchdb' is not supported; supported: SQLite "
         "(sqlite:///path.db), PostgreSQL (postgresql+psycopg://user@host/db), MySQL/MariaDB "
         "(mysql+pymysql://user@host/db)"),
        ("sqlite://host/x.db", "database url has a host (write sqlite:///relative.db or "
         "sqlite:////absolute/path.db): sqlite://host/x.db"),
        ("not a url", "not a database URL: not a url"),
        ("sqlite:///results.db\n", "database url holds a control character: "
         "sqlite:///results.db\\n"),
        ("postgresql+psycopg://h/te\x00st", "database url holds a control character: "
         "postgresql+psycopg://h/te\\x00st"),
    ],
)  # fmt: skip
def test_each_database_url_problem_has_its_message(url: str, line: str) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        check_db_url(url)
    assert str(caught.value) == line


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:99999/0",
        "redis://127.0.0.1:abc/0",
        "redis://127.0.0.1:6379/0?ssl_cert_reqs=none",
        "redis://127.0.0.1:6379/0?socket_timeout=-1",
        "redis://127.0.0.1:6379/0?max_connections=-1",
    ],
)
@pytest.mark.parametrize("command", [["status"], ["run"], ["emit", "-t", "t", "a=1"]])
def test_bad_ports_and_queries_are_one_line_in_every_command(command: list[str], url: str) -> None:
    done = collector(*command, "--redis-url", url, timeout=30)
    assert done.returncode == errors.RET_CONFIG
    assert done.stderr.splitlines() == [f"Error: {_refusal(url)!s}"]


def test_bad_port_in_workers_emit_is_a_config_error_not_a_value_error() -> None:
    code = (
        "import workers\ntry:\n    workers.emit({'a': 1})\n"
        "except workers.errors.ConfigError as exc:\n    print(exc)\n"
    )
    env = {"COLLECTOR_REDIS_URL": "redis://127.0.0.1:99999/0", "PATH": "/usr/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "redis url port 99999 is outside 1-65535: redis://127.0.0.1:99999/0\n"


def _refusal(url: str) -> Exception:
    try:
        check_redis_url(url)
    except node_errors.ConfigError as exc:
        return exc
    raise AssertionError(f"{url} was accepted")


PORTS = st.one_of(
    st.none(), st.integers(-5, 70_000).map(str), st.text("0123456789abc:", max_size=6),
    st.text(max_size=4),
)  # fmt: skip
HOSTS = st.one_of(
    st.sampled_from(["h", "127.0.0.1", "[::1]", "", "[::1", "a.b-c"]), st.text(max_size=5)
)
DBS = st.one_of(
    st.none(),
    st.integers(0, 20).map(str),
    st.sampled_from(["x", "-1", "1.5", ""]),
    st.text(max_size=3),
)


QUERIES = st.tuples(
    st.sampled_from(
        ["socket_timeout", "socket_connect_timeout", "max_connections", "socket_read_size",
         "socket_keepalive", "ssl_cert_reqs", "ssl_check_hostname", "health_check_interval",
         "retry_on_error", "timeout", "client_name", "protocol", "foo", "port"]
    ),
    st.sampled_from(["1", "0", "-1", "2.5", "inf", "nan", "1e999", "x", "", "none"]),
).map(lambda kv: f"?{kv[0]}={kv[1]}")  # fmt: skip


@st.composite
def urls(draw: st.DrawFn, schemes: list[str]) -> str:
    scheme = draw(st.one_of(st.sampled_from(schemes), st.text(max_size=6)))
    user = draw(st.sampled_from(["", "u@", f"u:{SECRET}@", f":{SECRET}@"]))
    host, port, db = draw(HOSTS), draw(PORTS), draw(DBS)
    query = draw(st.one_of(st.sampled_from(["", "?cluster=true", "?db=2", "?db=x"]), QUERIES))
    return (
        f"{scheme}://{user}{host}{'' if port is None else ':' + port}"
        f"{'' if db is None else '/' + db}{query}"
    )


REDIS = ["redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "REDIS", "http"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(urls(REDIS), st.text(max_size=30)))
def test_random_redis_urls_are_accepted_as_redis_takes_them_or_refused_in_one_line(
    url: str,
) -> None:
    try:
        check_redis_url(url)
    except node_errors.ConfigError as exc:
        assert "\n" not in str(exc)
        assert SECRET not in str(exc)
        return
    if is_cluster_url(url):
        return  # building a cluster client asks a node: the URL was parsed, that is all we need
    client = client_from_url(url)  # redis-py parses the whole URL here: nothing may raise
    kwargs = client.connection_pool.connection_kwargs
    assert 1 <= int(kwargs.get("port", 6379)) <= 65535
    assert isinstance(kwargs.get("db", 0), int)
    for name in ("socket_timeout", "socket_connect_timeout"):
        seconds = kwargs.get(name)
        assert seconds is None or 0 < seconds < 1e9
    client.connection_pool.make_connection().disconnect()  # takes every parameter; no I/O
    client.close()


DATABASES = ["sqlite", "postgresql", "postgresql+psycopg", "mysql", "mariadb", "postgres", "x"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(urls(DATABASES), st.text(max_size=30)))
@example("0://[::1")  # an unclosed IPv6 host: SQLAlchemy raised ValueError, not a refusal
def test_random_database_urls_are_accepted_as_sqlalchemy_takes_them_or_refused_in_one_line(
    url: str,
) -> None:
    try:
        check_db_url(url)
    except errors.ConfigError as exc:
        assert "\n" not in str(exc)
        assert SECRET not in str(exc)
        return
    parsed = make_url(url)  # nothing may raise for an accepted URL
    assert parsed.port is None or 1 <= parsed.port <= 65535
    parsed.get_dialect()


@pytest.mark.parametrize(
    "url",
    [
        "unix:///tmp/redis.sock?db=0&password=s3cretQ",
        "redis://127.0.0.1:6379/0?password=s3cretQ",
        "rediss://u@h:6380/0?ssl_cert_reqs=none&PASSWORD=s3cretQ#x",
    ],
)
def test_a_password_in_the_query_is_masked_too(url: str) -> None:
    shown = masked(url)
    assert "s3cretQ" not in shown
    assert "password=***" in shown.lower()


def test_a_password_in_a_database_urls_query_is_masked_too() -> None:
    from collector.settings import mask_db_url

    shown = mask_db_url("postgresql+psycopg://u@h/db?password=s3cretQ&sslmode=require")
    assert "s3cretQ" not in shown
    assert "password=***" in shown


@pytest.mark.redis
@pytest.mark.parametrize("db_url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_collector_refuses_an_in_memory_database_that_would_lose_every_row(
    real_redis: redis.Redis, queue: str, db_url: str, command: str
) -> None:
    real_redis.xadd(queue, {"m": b"x"})
    where = ["--redis-url", REAL_REDIS_URL, "--queue", queue] if command == "run" else []
    done = collector(command, "--db-url", db_url, *where, timeout=20)
    assert (done.returncode, done.stderr) == (
        errors.RET_CONFIG,
        f"Error: database {db_url} is in memory: every row would be lost when the collector "
        "stops (name a file: sqlite:///results.db)\n",
    )
    assert real_redis.xlen(queue) == 1  # nothing read, nothing acknowledged


@pytest.mark.parametrize(
    "flag", [["--max-wait", "1e308"], ["--claim-idle", "1e300"]]
)  # nan and inf are click's usage errors: tests/test_cli_floats.py
def test_a_duration_that_is_no_finite_number_of_seconds_is_one_line(flag: list[str]) -> None:
    done = collector("run", "--redis-url", REAL_REDIS_URL, "--db-url", "sqlite:///x.db", *flag)
    name = flag[0].removeprefix("--")
    assert (done.returncode, done.stderr) == (
        errors.RET_CONFIG,
        f"Error: {name} must be a number of seconds from 0 to {MAX_SECONDS:g}, "
        f"got {float(flag[1]):g}\n",
    )


@pytest.mark.parametrize("flag", ["--timeout", "--interval"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_wait_takes_only_finite_seconds(flag: str, value: str) -> None:
    args = ["wait", "--redis-url", REAL_REDIS_URL, "--db-url", "sqlite:///x.db", "-t", "t"]
    done = collector(*args, "-n", "1", flag, value, timeout=20)
    assert done.returncode == errors.RET_CONFIG
    assert done.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '{flag}': {value} is not a finite number of seconds"
    )
