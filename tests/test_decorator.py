"""``@collect`` on fakeredis: which columns, which key, what happens on an exception."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from rq import Queue, SimpleWorker

from workers import Emitter, EncodeError, collect
from workers.entry import decode_records
from workers.keys import param_key
from workers.record import Record

QUEUE = "test:decorator:results"
_SERVER = fakeredis.FakeServer()
_EMITTER = Emitter(queue=QUEUE, client=fakeredis.FakeRedis(server=_SERVER))
_attempts: dict[str, int] = {}


def records(client: fakeredis.FakeRedis, queue: str = QUEUE) -> list[Record]:
    """Every record on the queue stream, oldest first."""
    return [r for _, fields in client.xrange(queue) for r in decode_records(fields[b"m"])]


@pytest.fixture
def emitter(fake_redis: fakeredis.FakeRedis) -> Emitter:
    return Emitter(queue=QUEUE, client=fake_redis)


def test_arguments_become_inputs_and_a_dict_becomes_outputs(emitter, fake_redis):
    @collect(table="tutorial", emitter=emitter)
    def op(I: float, J: int = 2) -> dict[str, float]:  # noqa: E741 - the tutorial's names
        return {"K": I * J, "L": I - J}

    assert op(3.0) == {"K": 6.0, "L": 1.0}
    (rec,) = records(fake_redis)
    assert rec.table == "tutorial"
    assert rec.data == {"I": 3.0, "J": 2, "K": 6.0, "L": 1.0}
    assert rec.job is None


def test_other_return_values_go_to_the_result_column(emitter, fake_redis):
    @collect(table="t", emitter=emitter)
    def square(x: int) -> int:
        return x * x

    @collect(table="t", emitter=emitter)
    def nothing(x: int) -> None:
        return None

    assert square(4) == 16
    assert nothing(5) is None
    assert [r.data for r in records(fake_redis)] == [
        {"x": 4, "result": 16},
        {"x": 5, "result": None},
    ]


def test_star_args_make_a_list_column_and_star_kwargs_spread_out(emitter, fake_redis):
    @collect(table="t", emitter=emitter)
    def f(a: int, *rest: int, scale: float = 1.0, **extra: Any) -> float:
        return scale * (a + sum(rest))

    assert f(1, 2, 3, seed=7) == 6.0
    assert records(fake_redis)[0].data == {
        "a": 1,
        "rest": [2, 3],
        "scale": 1.0,
        "seed": 7,
        "result": 6.0,
    }


def test_an_exception_stores_the_inputs_with_error_and_is_reraised(emitter, fake_redis):
    @collect(table="t", emitter=emitter)
    def fails(x: int, y: int = 3) -> int:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        fails(1)
    (rec,) = records(fake_redis)
    assert rec.data == {"x": 1, "y": 3, "_error": "ValueError: bad input"}


def test_a_result_that_cannot_be_stored_leaves_an_error_row_and_raises(emitter, fake_redis):
    @collect(table="t", emitter=emitter)
    def returns_object(x: int) -> object:
        return object()

    with pytest.raises(EncodeError, match="cannot store a value of type object"):
        returns_object(2)
    (rec,) = records(fake_redis)
    assert rec.data["x"] == 2
    assert rec.data["_error"].startswith("EncodeError: record for table 't': cannot store")


def test_an_output_named_like_an_argument_is_an_error_not_an_overwrite(emitter, fake_redis):
    @collect(table="t", emitter=emitter)
    def clash(x: int) -> dict[str, int]:
        return {"x": 2 * x}

    with pytest.raises(EncodeError, match="returned key\\(s\\) x repeat argument names"):
        clash(5)
    assert records(fake_redis)[0].data["x"] == 5


def test_when_even_the_error_row_fails_the_original_exception_says_so(tmp_path):
    server = fakeredis.FakeServer()
    server.connected = False
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")  # the spool cannot be made here either: the row is truly lost
    emitter = Emitter(
        queue=QUEUE, client=fakeredis.FakeRedis(server=server), emit_timeout=0,
        spool_dir=not_a_dir,
    )  # fmt: skip

    @collect(table="t", emitter=emitter)
    def fails(x: int) -> int:
        raise KeyError("k")

    with pytest.raises(KeyError) as info:
        fails(1)
    assert len(info.value.__notes__) == 1
    assert info.value.__notes__[0].startswith("collect: the error row could not be sent:")


def test_outside_rq_every_call_gets_a_fresh_key(emitter, fake_redis):
    @collect(table="t", emitter=emitter)
    def f(x: int) -> int:
        return x

    f(1)
    f(1)
    first, second = records(fake_redis)
    assert first.id != second.id
    assert len(first.id) == 32


def test_params_key_is_stable_across_calls_and_counts_the_replicate(emitter, fake_redis):
    @collect(table="sweep", key="params", emitter=emitter)
    def f(I: float, J: int, replicate: int = 0) -> float:  # noqa: E741
        return I * J

    f(0.1, 2)
    f(J=2, I=0.1)
    f(0.1, 2, replicate=1)
    a, b, c = records(fake_redis)
    assert a.id == b.id == param_key("sweep", {"I": 0.1, "J": 2}, 0)
    assert c.id == param_key("sweep", {"I": 0.1, "J": 2}, 1)
    assert c.data == {"I": 0.1, "J": 2, "replicate": 1, "result": pytest.approx(0.2)}


def test_params_key_without_a_replicate_argument_uses_replicate_zero(emitter, fake_redis):
    @collect(table="sweep", key="params", emitter=emitter)
    def f(I: float) -> float:  # noqa: E741
        if I < 0:
            raise ArithmeticError("negative")
        return I

    f(0.5)
    with pytest.raises(ArithmeticError):
        f(-1.0)
    ok, failed = records(fake_redis)
    assert ok.id == param_key("sweep", {"I": 0.5}, 0)
    assert failed.id == param_key("sweep", {"I": -1.0}, 0)
    assert failed.data == {"I": -1.0, "_error": "ArithmeticError: negative"}


def test_an_unknown_key_mode_is_refused_at_decoration():
    with pytest.raises(ValueError, match='key must be None or "params"'):
        collect(table="t", key="job")  # type: ignore[arg-type]


def test_the_wrapper_keeps_name_doc_and_signature(emitter):
    @collect(table="t", emitter=emitter)
    def documented(a: int, b: int = 1) -> int:
        """Adds."""
        return a + b

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Adds."
    assert list(inspect.signature(documented).parameters) == ["a", "b"]
    assert inspect.signature(documented).parameters["b"].default == 1


# --- inside RQ (SimpleWorker on fakeredis, in this process) -----------------------------------


@collect(table="rq_t", emitter=_EMITTER)
def rq_square(x: int) -> dict[str, int]:
    return {"y": x * x}


@collect(table="rq_t", emitter=_EMITTER)
def rq_flaky(x: int) -> int:
    """Fails on its first attempt for each x, succeeds on the next."""
    _attempts[str(x)] = _attempts.get(str(x), 0) + 1
    if _attempts[str(x)] == 1:
        raise RuntimeError("first attempt")
    return x


def rq_loop(n: int) -> None:
    """A job that calls a collect function several times: one row per call, not one per job."""
    for i in range(n):
        rq_square(i)


@pytest.fixture
def rq_env() -> Iterator[tuple[fakeredis.FakeRedis, Queue]]:
    client = fakeredis.FakeRedis(server=_SERVER)
    client.flushall()
    _attempts.clear()
    yield client, Queue("decorator", connection=client)
    client.flushall()
    client.close()


def run_burst(client: fakeredis.FakeRedis, queue: Queue) -> None:
    SimpleWorker([queue], connection=client).work(burst=True)


def test_inside_rq_the_key_and_job_are_the_rq_job_id(rq_env):
    client, queue = rq_env
    job = queue.enqueue(rq_square, 7)
    run_burst(client, queue)
    (rec,) = records(client)
    assert (rec.id, rec.job, rec.data) == (job.id, job.id, {"x": 7, "y": 49})


def test_a_requeued_job_emits_under_the_same_key_each_attempt(rq_env):
    client, queue = rq_env
    job = queue.enqueue(rq_flaky, 3)
    run_burst(client, queue)
    assert job.get_status(refresh=True) == "failed"
    job.requeue()
    run_burst(client, queue)
    assert job.get_status(refresh=True) == "finished"
    failed, ok = records(client)
    assert (failed.id, failed.data) == (job.id, {"x": 3, "_error": "RuntimeError: first attempt"})
    assert (ok.id, ok.job, ok.data) == (job.id, job.id, {"x": 3, "result": 3})


def test_collect_calls_inside_another_job_get_their_own_keys(rq_env):
    client, queue = rq_env
    job = queue.enqueue(rq_loop, 3)
    run_burst(client, queue)
    rows = records(client)
    assert [r.data for r in rows] == [{"x": 0, "y": 0}, {"x": 1, "y": 1}, {"x": 2, "y": 4}]
    assert len({r.id for r in rows}) == 3
    assert job.id not in {r.id for r in rows}
    assert {r.job for r in rows} == {job.id}
