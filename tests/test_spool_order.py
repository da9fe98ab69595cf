"""An emitter back from an outage re-sends its spool before anything new, so records arrive in
the order they were emitted and, under one key, the row holds the first emitted."""

from __future__ import annotations

import fakeredis
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.daemon import Collector
from collector.settings import Settings
from tests.helpers import drain, rows
from workers import Emitter
from workers.entry import decode_records


def arrived(client: fakeredis.FakeRedis, queue: str) -> list[tuple[str, object]]:
    """(record id, its value of ``v``) in the order the stream holds them."""
    return [
        (r.id, r.data["v"])
        for _, fields in client.xrange(queue)
        for r in decode_records(fields[b"m"])
    ]


def test_a_keys_first_record_spooled_and_its_second_sent_directly_keeps_the_first(
    settings: Settings, tmp_path
) -> None:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    emitter = Emitter(queue=settings.queue, client=client, emit_timeout=0, spool_dir=tmp_path)
    server.connected = False
    emitter.emit({"v": "first"}, key="k")  # Redis away: spooled
    server.connected = True
    emitter.emit({"v": "second"}, key="k")  # Redis back: the spool goes first
    emitter.close()
    assert arrived(client, settings.queue) == [("k", "first"), ("k", "second")]
    collector = Collector(settings, client=client)
    collector.start()
    try:
        drain(collector)
    finally:
        collector.close()
    assert [(r["_id"], r["v"]) for r in rows(settings.db_url, "results")] == [("k", "first")]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=12))
def test_records_arrive_in_emit_order_whatever_the_outages(tmp_path_factory, up) -> None:
    """``up[i]``: whether Redis answers when record i is emitted (unbuffered, one try)."""
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    spool = tmp_path_factory.mktemp("spool")
    emitter = Emitter(queue="q", client=client, emit_timeout=0, spool_dir=spool)
    for i, answers in enumerate(up):
        server.connected = answers
        emitter.emit({"v": i}, key=f"k{i}")
    server.connected = True
    emitter.close()  # re-sends what is still spooled
    assert [v for _, v in arrived(client, "q")] == list(range(len(up)))
