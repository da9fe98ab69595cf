"""The status page in a real browser (the system's Chromium through playwright) against real
processes: ``collector run``, producers, ``collector web``."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import sqlalchemy as sa

from collector.sweeps import daskjobs, ledger
from tests.helpers import (
    REAL_REDIS_URL,
    collector,
    start_collector,
    start_producers,
    stop,
    wait_ready,
    wait_until,
)
from tests.webtools import dead_letters, http_get, not_blank, start_web, stop_web
from workers import Emitter
from workers.keys import param_key

pytestmark = [pytest.mark.redis, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api").expect
UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
POINTS = [{"a": a, "b": b} for a in (1, 2, 3) for b in (10, 20)]  # 6 points


def emit_sweep_results(queue: str) -> None:
    """Points 0-2 done, point 3 failed, points 4-5 missing."""
    emitter = Emitter(redis_url=REAL_REDIS_URL, queue=queue)
    for i, point in enumerate(POINTS[:4]):
        out = {"_error": "boom"} if i == 3 else {"y": point["a"] * point["b"]}
        emitter.emit({**point, **out}, table="sq", key=param_key("sq", point, 0))
    emitter.close()


def status_json(queue: str, db_url: str) -> dict:
    args = ("status", "--redis-url", REAL_REDIS_URL, "--db-url", db_url, "--queue", queue)
    return json.loads(collector(*args, "--json").stdout)


def test_the_page_reaches_what_status_says(browser, real_redis, queue, sqlite_url, tmp_path):
    engine = sa.create_engine(sqlite_url)
    ledger.declare(engine, "grid", "sq", POINTS)
    engine.dispose()
    run = start_collector(REAL_REDIS_URL, sqlite_url, queue)
    web, base = start_web(REAL_REDIS_URL, sqlite_url, queue)
    try:
        wait_ready(run)
        # A browser far from UTC: the page still shows UTC, as its header says.
        context = browser.new_context(
            viewport={"width": 1280, "height": 1400}, timezone_id="Asia/Kolkata"
        )
        page = context.new_page()
        page.goto(base + "/")
        producers = start_producers(2, 400, REAL_REDIS_URL, queue)
        real_redis.xadd(queue, {"m": b"\xc1 poisoned"})
        emit_sweep_results(queue)
        for p in producers:
            assert p.wait(60) == 0
        wait_until(lambda: status_json(queue, sqlite_url)["tables"].get("data") == 800)
        wait_until(lambda: status_json(queue, sqlite_url)["queue"] == 0)
        told = status_json(queue, sqlite_url)
        for element, key in (("#backlog", "queue"), ("#pending", "pending"), ("#dead", "dead")):
            expect(page.locator(element)).to_have_text(str(told[key]), timeout=20_000)
        assert (told["queue"], told["pending"], told["dead"]) == (0, 0, 1)
        expect(page.locator("#consumer-count")).to_have_text(str(len(told["consumers"])))
        expect(page.locator("#consumers tbody td").first).to_have_text("it")
        for name, count in told["tables"].items():
            where = "#own-tables" if name.startswith("_") else "#tables"  # the ledger apart
            row = page.locator(f"{where} tbody tr", has_text=name).first
            expect(row.locator("td").nth(1)).to_have_text(str(count))
        own = page.locator("#own-tables tbody td:first-child")
        ledger_tables = sorted(name for name in told["tables"] if name.startswith("_"))
        assert {"_sweeps", "_sweep_points"} <= set(ledger_tables)
        expect(own).to_have_text(ledger_tables)
        assert "_sweeps" not in page.locator("#tables tbody").inner_text()
        expect(page.locator("header")).to_contain_text("All times are UTC.")
        expect(page.locator("#updated")).to_have_text(re.compile(r"^\d\d:\d\d:\d\dZ$"))
        shown = dt.datetime.strptime(page.locator("#updated").inner_text(), "%H:%M:%SZ")
        now = dt.datetime.now(dt.UTC)
        off = (now.hour * 3600 + now.minute * 60 + now.second) - (
            shown.hour * 3600 + shown.minute * 60 + shown.second
        )
        assert min(off % 86400, -off % 86400) < 120  # UTC, not Kolkata's +05:30
        data_row = page.locator("#tables tbody tr", has_text="data").first
        expect(data_row.locator("td").nth(2)).to_have_text(UTC_TIME)
        sweep = page.locator('[data-sweep="grid"]')
        expect(sweep.locator("h3")).to_have_text("grid → sq: 6 points x 1 replicates = 6 results")
        counts = (("done", 3), ("failed", 1), ("running", 0), ("queued", 0), ("missing", 2))
        for state, count in counts:
            expect(sweep.locator(f'b[data-state="{state}"]')).to_have_text(str(count))
        width = sweep.locator(".bar .done").evaluate("e => e.style.width")
        assert width == "50%"
        heatmap = sweep.locator("img")
        expect(heatmap).to_have_attribute("alt", "heat map of y")
        page.wait_for_function("() => document.querySelector('.sweep img').naturalWidth > 0")
        expect(page.locator("#dead-letters tbody tr")).to_have_count(1)
        assert page.locator("#rate-chart canvas").count() == 1
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert not_blank(shot)
    finally:
        stop_web(web)
        assert stop(run) == 0


def test_page_2_of_the_dead_letters_and_the_token(browser, real_redis, queue, sqlite_url):
    dead_letters(real_redis, queue, 25)
    web, base = start_web(REAL_REDIS_URL, sqlite_url, queue, "--token", "t0ken")
    try:
        assert http_get(base + "/api/status")[0] == 401
        assert http_get(base + "/api/status", {"Authorization": "Bearer t0ken"})[0] == 200
        page = browser.new_page()
        refused = page.goto(base + "/")
        assert refused is not None and refused.status == 401
        page.goto(base + "/?token=t0ken")
        expect(page.locator("#dead-page")).to_have_text("page 1 of 3 (25 dead letters)")
        page.click("#dead-older")
        expect(page.locator("#dead-page")).to_have_text("page 2 of 3 (25 dead letters)")
        reasons = page.locator("#dead-letters tbody tr td:nth-child(2)")
        expect(reasons).to_have_text([f"reason {i:02d}" for i in range(14, 4, -1)])
        tables = page.locator("#dead-letters tbody tr td:nth-child(3)")
        expect(tables).to_have_text([f"t{i:02d}" for i in range(14, 4, -1)])
        page.wait_for_timeout(1200)  # two refreshes later the page stays on page 2
        expect(page.locator("#dead-page")).to_have_text("page 2 of 3 (25 dead letters)")
        expect(page.locator("#error")).to_have_text("")
    finally:
        stop_web(web)


def test_a_consumer_named_constructor_is_healthy_and_the_page_works_by_any_loopback_name(
    browser, real_redis, queue, sqlite_url
):
    run = start_collector(REAL_REDIS_URL, sqlite_url, queue, "--consumer", "constructor")
    web, base = start_web(REAL_REDIS_URL, sqlite_url, queue)
    try:
        wait_ready(run)
        emitter = Emitter(redis_url=REAL_REDIS_URL, queue=queue)
        emitter.emit({"x": 1}, table="constructor")
        emitter.close()
        wait_until(lambda: status_json(queue, sqlite_url)["tables"].get("constructor") == 1)
        page = browser.new_page()
        page.goto(base.replace("127.0.0.1", "localhost") + "/")
        row = page.locator("#consumers tbody tr", has_text="constructor").first
        expect(row.locator("td").nth(3)).to_have_text("ok", timeout=20_000)
        table = page.locator("#tables tbody tr", has_text="constructor").first
        expect(table.locator("td").nth(2)).to_have_text(UTC_TIME)
        expect(page.locator("#error")).to_have_text("")
    finally:
        stop_web(web)
        assert stop(run) == 0


def test_a_dask_sweep_whose_scheduler_is_gone_shows_unknown(browser, real_redis, queue, sqlite_url):
    engine = sa.create_engine(sqlite_url)
    ledger.declare(engine, "gone", "sq", POINTS)
    ledger.note_submission(engine, "gone", "m.f", None)  # submitted to Dask
    engine.dispose()
    real_redis.set(daskjobs.scheduler_key(queue, "gone"), "tcp://127.0.0.1:9")  # nobody there
    web, base = start_web(REAL_REDIS_URL, sqlite_url, queue)
    try:
        page = browser.new_page()
        page.goto(base + "/")
        sweep = page.locator('[data-sweep="gone"]')
        expect(sweep.locator("p.muted")).to_contain_text(
            "queued and running unknown (Dask: cannot reach Dask at tcp://127.0.0.1:9",
            timeout=20_000,
        )
        for state, count in (("queued", 0), ("running", 0), ("missing", 6)):
            expect(sweep.locator(f'b[data-state="{state}"]')).to_have_text(str(count))
    finally:
        stop_web(web)
