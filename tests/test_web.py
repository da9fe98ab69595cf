"""``collector web`` without a browser: /api/status is ``status --json``, the rate and the dead
letter pages are exact, a token is required when set, passwords never appear, bad flags are
one line."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import RET_CONFIG
from collector.web import data
from tests.helpers import REAL_REDIS_URL, collector
from tests.webtools import dead_letters, http_get, start_web, stop_web
from workers.record import Record

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from collector.web.app import create_app
from collector.web.hosts import allowed_hosts, host_of, is_loopback


def local(app, host: str = "127.0.0.1:8765") -> TestClient:
    """A client of ``app`` as a browser on this machine reaches it (the page answers to
    loopback names only, unless told otherwise)."""
    return TestClient(app, base_url=f"http://{host}")


@pytest.mark.redis
def test_api_status_is_what_status_json_prints(real_redis, queue, sqlite_url) -> None:
    for i in range(7):
        real_redis.xadd(queue, {"m": Record(f"r{i}", "t", {"x": i}, 1.0).encode()})
    dead_letters(real_redis, queue, 2)
    with local(create_app(REAL_REDIS_URL, sqlite_url, queue)) as web:
        reply = web.get("/api/status")
    args = ("status", "--redis-url", REAL_REDIS_URL, "--db-url", sqlite_url, "--queue", queue)
    printed = collector(*args, "--json")
    assert reply.status_code == 200
    assert reply.json() == json.loads(printed.stdout)
    assert (reply.json()["queue"], reply.json()["dead"]) == (7, 2)


@pytest.mark.redis
def test_dead_letters_are_paged_newest_first_on_the_server(real_redis, queue, sqlite_url) -> None:
    dead_letters(real_redis, queue, 25)
    with local(create_app(REAL_REDIS_URL, sqlite_url, queue)) as web:
        page2 = web.get("/api/dead", params={"page": 2, "size": 10}).json()
        page3 = web.get("/api/dead", params={"page": 3, "size": 10}).json()
    assert (page2["total"], page2["pages"], page2["page"]) == (25, 3, 2)
    assert [d["reason"] for d in page2["items"]] == [f"reason {i:02d}" for i in range(14, 4, -1)]
    assert [d["table"] for d in page3["items"]] == [f"t{i:02d}" for i in range(4, -1, -1)]
    assert page3["items"][0]["preview"] == '{"x": 4}'
    assert page3["items"][0]["ts"] == "1970-01-01 00:16:40Z"


def test_a_token_is_required_when_set(sqlite_url, queue) -> None:
    app = create_app("redis://127.0.0.1:1/0", sqlite_url, queue, token="s3cret")
    with local(app) as web:
        assert web.get("/api/dead").status_code == 401
        assert web.get("/").status_code == 401
        assert web.get("/api/dead", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert web.get("/static/page.js").status_code == 200  # no secrets in static files
        page = web.get("/", params={"token": "s3cret"})
        assert page.status_code == 200
        assert "s3cret" not in page.text
        assert web.get("/api/tables").status_code == 200  # the cookie the page set
    with local(app) as fresh:
        reply = fresh.get("/api/tables", headers={"Authorization": "Bearer s3cret"})
        assert (reply.status_code, reply.json()) == (200, {})


@pytest.mark.postgres
@pytest.mark.redis
def test_the_page_never_shows_a_password(pg_url, queue) -> None:
    secret_url = sa.engine.make_url(pg_url).set(password="hunter2").render_as_string(False)
    with local(create_app(REAL_REDIS_URL, secret_url, queue)) as web:
        shown = [web.get(path).text for path in ("/", "/api/status", "/api/tables", "/api/dead")]
    assert json.loads(shown[1])["db_url"].endswith(":***@127.0.0.1:5432/" + pg_url.split("/")[-1])
    assert not [text for text in shown if "hunter2" in text]


def test_redis_down_is_a_503_with_one_line(sqlite_url, queue) -> None:
    with local(create_app("redis://127.0.0.1:1/0", sqlite_url, queue)) as web:
        reply = web.get("/api/status")
    assert reply.status_code == 503
    assert reply.json()["error"].startswith("redis")


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_stored_rate_counts_rows_per_step_by_emit_time(db, request, sqlite_url) -> None:
    url = sqlite_url if db == "sqlite" else request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    now = 1_800_000_005.0  # 10 s steps: ... 1_799_999_990, 1_800_000_000 (the current one)
    at = [now - 3, now - 4, now - 12, now - 30, now - 400]  # the last one is out of the window
    with engine.begin() as conn:
        conn.execute(sa.text('CREATE TABLE "r" ("_id" TEXT, "_ts" TIMESTAMP)'))
        for i, t in enumerate(at):
            ts = dt.datetime.fromtimestamp(t, dt.UTC).replace(tzinfo=None)
            conn.execute(sa.text('INSERT INTO "r" VALUES (:i, :t)'), {"i": str(i), "t": ts})
    rate = data.stored_rate(engine, minutes=1, bucket=10, now=now)
    assert data.newest_rows(engine) == {"r": "2027-01-15 08:00:02Z"}
    engine.dispose()
    assert rate["t"] == [1_799_999_950 + 10 * k for k in range(6)]
    assert rate["rate"] == [0, 0, 0.1, 0, 0.1, 0.2]


def test_bad_web_flags_are_one_line_and_exit_2() -> None:
    no_token = collector("web", "--bind", "0.0.0.0")
    assert (no_token.returncode, no_token.stderr) == (
        RET_CONFIG,
        "Error: --bind 0.0.0.0 is reachable from other machines: set a token with --token or "
        "COLLECTOR_WEB_TOKEN\n",
    )
    bad_port = collector("web", "--port", "http")
    assert (bad_port.returncode, bad_port.stderr) == (
        RET_CONFIG,
        "Error: --port must be a port number from 0 to 65535, got 'http'\n",
    )


@pytest.mark.parametrize(
    "host",
    ["localhost:8765", "127.0.0.1:8765", "[::1]:8765", "127.0.0.2", "LOCALHOST.", "a.localhost"],
)
def test_loopback_names_are_served(sqlite_url, queue, host) -> None:
    with local(create_app("redis://127.0.0.1:1/0", sqlite_url, queue), host) as web:
        assert web.get("/api/tables").status_code == 200
        page = web.get("/")
    assert page.status_code == 200
    assert host.lower().rstrip(".") not in page.text.lower()  # every URL in it is relative
    assert 'src="static/page.js"' in page.text


@pytest.mark.parametrize(
    "path", ["/", "/api/status", "/api/dead", "/api/tables", "/static/page.js"]
)
def test_another_host_is_refused_before_anything_is_read(sqlite_url, queue, path) -> None:
    app = create_app("redis://127.0.0.1:1/0", sqlite_url, queue, allow_hosts=("results.lab",))
    with local(app, "evil.example:8765") as web:
        reply = web.get(path)
    assert reply.status_code == 400
    assert reply.json() == {
        "error": "this page does not answer to the host 'evil.example:8765': open it by a "
        "loopback name, or start it with --allow-host for that name"
    }
    with local(app, "results.lab:8765") as web:
        assert web.get("/api/tables").status_code == 200


def test_the_bound_address_is_served_and_a_token_still_asked(sqlite_url, queue) -> None:
    app = create_app("redis://127.0.0.1:1/0", sqlite_url, queue, token="t", bind="10.1.2.3")
    with local(app, "10.1.2.3:8765") as web:
        assert web.get("/api/tables").status_code == 401
        assert web.get("/api/tables", headers={"Authorization": "Bearer t"}).status_code == 200
    with local(app, "10.1.2.4:8765") as web:
        assert web.get("/api/tables", headers={"Authorization": "Bearer t"}).status_code == 400


@pytest.mark.redis
def test_a_dead_letter_whose_ts_is_no_time_is_listed_with_it_raw(real_redis, queue, sqlite_url):
    raw = Record("id0", "t", {"x": 0}, 1.0).encode()
    for ts in ("1000", "nan", "1e300", "-inf", "yesterday", None):
        real_redis.xadd(
            f"{queue}:dead", {"m": raw, "reason": f"ts {ts}", **({"ts": ts} if ts else {})}
        )
    with local(create_app(REAL_REDIS_URL, sqlite_url, queue)) as web:
        reply = web.get("/api/dead", params={"size": 10})
    assert reply.status_code == 200
    assert [(d["reason"], d["ts"]) for d in reply.json()["items"]] == [
        ("ts None", None), ("ts yesterday", "yesterday"), ("ts -inf", "-inf"),
        ("ts 1e300", "1e300"), ("ts nan", "nan"), ("ts 1000", "1970-01-01 00:16:40Z"),
    ]  # fmt: skip


@pytest.mark.redis
def test_a_huge_dead_letter_reason_is_cut_on_the_page(real_redis, queue, sqlite_url):
    raw = Record("id0", "t", {"x": 0}, 1.0).encode()
    real_redis.xadd(f"{queue}:dead", {"m": raw, "reason": "why " * 50_000})  # 200 kB, by hand
    with local(create_app(REAL_REDIS_URL, sqlite_url, queue)) as web:
        reply = web.get("/api/dead", params={"size": 10})
    (letter,) = reply.json()["items"]
    assert letter["reason"] == ("why " * 75)[:299] + "…"


def test_allow_host_of_collector_web(real_redis, queue, sqlite_url) -> None:
    web, base = start_web(REAL_REDIS_URL, sqlite_url, queue, "--allow-host", "results.lab")
    try:
        port = base.rsplit(":", 1)[1]
        assert http_get(base + "/api/tables", {"Host": f"evil.example:{port}"})[0] == 400
        assert http_get(base + "/api/tables", {"Host": f"results.lab:{port}"})[0] == 200
        assert http_get(base + "/api/tables", {"Host": f"localhost:{port}"})[0] == 200
    finally:
        stop_web(web)


@pytest.mark.redis
def test_refreshes_reuse_the_pages_own_client_and_engine(
    real_redis, queue, sqlite_url, monkeypatch
):
    import collector.status
    import collector.web.app

    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE r (_id TEXT)"))
    engine.dispose()
    with local(create_app(REAL_REDIS_URL, sqlite_url, queue)) as web:
        first = web.get("/api/status").json()

        def refused(*_args, **_kwargs):
            raise AssertionError("a refresh built a new client or engine")

        for name in ("client_from_url", "make_engine"):
            monkeypatch.setattr(collector.status, name, refused)
        monkeypatch.setattr(collector.web.app, "make_engine", refused)
        again = [web.get("/api/status") for _ in range(3)]
    assert [r.status_code for r in again] == [200] * 3
    assert again[-1].json() == first
    assert first["tables"] == {"r": 0}


def loopback_address(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
NAMES = st.lists(LABEL, min_size=1, max_size=4).map(".".join)


@settings(max_examples=200, deadline=None)
@given(name=NAMES, port=st.one_of(st.none(), st.integers(1, 65535)), upper=st.booleans())
def test_a_host_is_served_exactly_when_loopback_or_allowed(name, port, upper) -> None:
    header = (name.upper() if upper else name) + ("" if port is None else f":{port}")
    assert host_of(header) == name
    allowed = allowed_hosts("127.0.0.1", ("results.lab",))
    served = is_loopback(name) or name in allowed
    expected = name in ("localhost", "results.lab") or name.endswith(".localhost")
    assert served == (expected or loopback_address(name))
    for address in ("::1", "fe80::1", "127.0.0.9", "10.0.0.1"):
        shown = f"[{address}]" + ("" if port is None else f":{port}")
        assert host_of(shown) == address
        assert is_loopback(address) == (address in ("::1", "127.0.0.9"))


def test_a_sweep_is_counted_as_the_cli_counts_it_and_queued_is_not_running(
    fake_redis, sqlite_url
) -> None:
    from collector.sweeps import ledger
    from collector.sweeps.submit import enqueue_points
    from tests.test_sweep_status import start

    engine = sa.create_engine(sqlite_url)
    points = [{"I": i} for i in range(4)]
    ledger.declare(engine, "s", "t", points, 3)  # 4 points x 3 replicates
    ledger.note_submission(engine, "s", "m.f", "q")
    rows = ledger.point_rows(engine, "s")
    jobs = [row.job_kwargs(3) for row in rows[:5]]
    ids = enqueue_points("m.f", jobs, connection=fake_redis, queue="q")
    for job_id in ids[:2]:
        start(fake_redis, job_id, "q", expires_in=100)  # a worker took these two
    found = data.sweep_state(engine, ledger.load(engine, "s"), fake_redis, "collector:results")
    engine.dispose()
    shown = {k: found[k] for k in ("points", "replicates", "total", "running", "queued")}
    assert shown == {"points": 4, "replicates": 3, "total": 12, "running": 2, "queued": 3}
    assert (found["done"], found["failed"], found["missing"]) == (0, 0, 7)


PAGE_WITHOUT_DASK = """
import json, sys
from starlette.testclient import TestClient
from collector.web.app import create_app
app = create_app(sys.argv[1], sys.argv[2], sys.argv[3])
with TestClient(app, base_url="http://127.0.0.1") as web:
    sweeps = web.get("/api/sweeps").json()
loaded = sorted(m for m in ("dask", "distributed") if m in sys.modules)
print(json.dumps({"sweeps": [(s["sweep"], s["jobs_from"]) for s in sweeps], "loaded": loaded}))
"""


@pytest.mark.redis
def test_the_page_never_imports_dask_when_no_sweep_runs_on_it(real_redis, queue, sqlite_url):
    import subprocess
    import sys

    from collector.sweeps import ledger

    engine = sa.create_engine(sqlite_url)
    ledger.declare(engine, "on_rq", "t", [{"I": 1}])
    ledger.note_submission(engine, "on_rq", "m.f", "q")
    ledger.declare(engine, "fresh", "t", [{"I": 2}])  # declared, never submitted
    engine.dispose()
    args = [sys.executable, "-c", PAGE_WITHOUT_DASK, REAL_REDIS_URL, sqlite_url, queue]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found == {"sweeps": [["fresh", None], ["on_rq", "rq"]], "loaded": []}


def test_a_scheduler_that_does_not_answer_is_asked_once_a_refresh(
    fake_redis, sqlite_url, monkeypatch
) -> None:
    from collector.errors import SchedulerUnavailable
    from collector.sweeps import daskjobs, ledger

    asked: list[str] = []

    def silent(address: str, keys: list[str], timeout: float) -> dict:
        asked.append(address)
        raise SchedulerUnavailable(f"cannot reach Dask at {address}: no answer within 1 s")

    monkeypatch.setattr(daskjobs, "task_states", silent)
    engine = sa.create_engine(sqlite_url)
    for name, address in (("a", "tcp://gone:1"), ("b", "tcp://gone:1"), ("c", "tcp://other:2")):
        ledger.declare(engine, name, "t", [{"I": 1}, {"I": 2}])
        ledger.note_submission(engine, name, "m.f", None)
        fake_redis.set(daskjobs.scheduler_key("q", name), address)
    ledger.declare(engine, "d", "t", [{"I": 1}, {"I": 2}])
    ledger.note_submission(engine, "d", "m.f", None)  # on Dask, but no scheduler noted
    found = data.sweeps(engine, fake_redis, "q")
    engine.dispose()
    assert asked == ["tcp://gone:1", "tcp://other:2"]  # b's scheduler is a's: not asked again
    shown = [(s["sweep"], s["running_known"], s["missing"], s["jobs_error"]) for s in found]
    assert shown == [
        ("a", False, 2, "cannot reach Dask at tcp://gone:1: no answer within 1 s"),
        ("b", False, 2, "cannot reach Dask at tcp://gone:1: no answer within 1 s"),
        ("c", False, 2, "cannot reach Dask at tcp://other:2: no answer within 1 s"),
        ("d", False, 2, "no Dask scheduler noted for the sweep: collector sweep status --dask "
                        "ADDRESS"),
    ]  # fmt: skip


def test_proc_net_tcp_forms_of_an_address() -> None:
    from collector.web.peers import forms

    assert forms("127.0.0.1", 8080) == ["0100007F:1F90", "0000000000000000FFFF00000100007F:1F90"]
    assert forms("::ffff:127.0.0.1", 80) == forms("127.0.0.1", 80)
    assert forms("::1", 443) == ["00000000000000000000000001000000:01BB"]


def test_the_owner_of_a_connected_socket_on_this_machine_is_found() -> None:
    import os
    import socket

    from collector.web.peers import can_tell, peer_uid

    if not can_tell():
        pytest.skip("no /proc/net/tcp here")
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as client:
        accepted, _ = server.accept()
        with accepted:
            assert peer_uid(client.getsockname(), server.getsockname()) == os.geteuid()
            assert peer_uid(server.getsockname(), client.getsockname()) == os.geteuid()
            assert peer_uid(("127.0.0.1", 1), server.getsockname()) is None


@pytest.mark.parametrize("owner", ["me", "another user", "nobody here"])
def test_without_a_token_only_this_users_own_sockets_are_served(
    sqlite_url, queue, monkeypatch, owner
) -> None:
    import os

    from collector.web import peers

    uid = {"me": os.geteuid(), "another user": os.geteuid() + 1, "nobody here": None}[owner]
    monkeypatch.setattr(peers, "peer_uid", lambda client, server: uid)
    monkeypatch.setattr(peers, "can_tell", lambda: True)
    app = create_app("redis://127.0.0.1:1/0", sqlite_url, queue)
    with TestClient(app, base_url="http://127.0.0.1:8765", client=("127.0.0.1", 50000)) as web:
        reply = web.get("/api/tables")
    if owner == "me":
        assert (reply.status_code, reply.json()) == (200, {})
    else:
        assert (reply.status_code, reply.json()) == (403, {"error": peers.REFUSAL})
    with TestClient(app, base_url="http://127.0.0.1:8765") as web:  # in process: no peer
        assert web.get("/api/tables").status_code == 200
