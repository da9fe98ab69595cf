"""Emitting from Dask tasks on a real cluster (LocalCluster, 2 worker processes x 4 threads):
``@collect`` under ``client.map``, the task key in ``_job``, buffered emitters flushed when
workers close, the plugin's part in that, and ``_job`` outside Dask."""

from __future__ import annotations

import logging
import os

import pytest
from distributed import Client, LocalCluster

from tests import dask_jobs
from tests.daskcluster import THREADS, WORKERS, collect_until, local_cluster
from tests.helpers import typed_rows
from workers.daskworker import FlushEmitters
from workers.jobinfo import current_job_id
from workers.keys import point_key

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(240)]


def test_collect_through_client_map_stores_each_point_once_with_its_task_key(redis_env) -> None:
    points = [(i % 40 / 8, i // 40) for i in range(1000)]  # I in 0..4.875, J in 0..24
    with local_cluster() as cluster, Client(cluster, set_as_default=False) as client:
        assert len(client.nthreads()) == WORKERS
        assert set(client.nthreads().values()) == {THREADS}
        futures = client.map(dask_jobs.op, [i for i, _ in points], [j for _, j in points])
        results = client.gather(futures)
        pairs = zip(points, futures, strict=True)
        keys = {point_key("ij", {"I": i, "J": j}): f.key for (i, j), f in pairs}
        pids = set(client.run(os.getpid).values())
    assert results == [{"K": i * j} for i, j in points]
    assert collect_until(redis_env, "ij", 1000) == 1000
    stored = typed_rows(redis_env.db_url, "ij")
    assert len(stored) == 1000
    assert {row["_id"] for row in stored} == set(keys)
    for row in stored:
        assert row["_job"] == keys[row["_id"]]  # the Dask task key, e.g. op-5f0c...
        assert row["K"] == row["I"] * row["J"]
        assert row["replicate"] == 0 and row["_error"] is None
    assert {row["_pid"] for row in stored} == pids  # both worker processes did work
    assert all(key.startswith("op-") for key in keys.values())


def test_buffered_emitters_are_flushed_when_the_cluster_shuts_down(redis_env, real_redis, queue):
    # leaving the block closes the client first, then the cluster
    with local_cluster() as cluster, Client(cluster, set_as_default=False) as client:
        client.register_plugin(FlushEmitters())
        assert client.gather(client.map(dask_jobs.buffered, range(400))) == list(range(400))
        assert real_redis.xlen(queue) == 0  # all 400 still in the workers' buffers
    assert collect_until(redis_env, "buffered", 400) == 400
    stored = typed_rows(redis_env.db_url, "buffered")
    assert sorted(row["i"] for row in stored) == list(range(400))
    assert len({row["worker_pid"] for row in stored}) == WORKERS


@pytest.mark.parametrize("plugin", [True, False])
def test_the_plugin_flushes_when_a_worker_closes_in_a_process_that_goes_on(
    redis_env, real_redis, queue, plugin: bool
) -> None:
    # Worker threads in this process: closing them does not end the process, so only the
    # plugin can flush the buffer then (without it, the records would wait for our exit).
    cluster = LocalCluster(
        n_workers=1, threads_per_worker=THREADS, processes=False, dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )  # fmt: skip
    try:
        with Client(cluster, set_as_default=False) as client:
            if plugin:
                client.register_plugin(FlushEmitters())
            client.gather(client.map(dask_jobs.buffered, range(50)))
    finally:
        cluster.close(timeout=30)
    try:
        assert real_redis.xlen(queue) == (50 if plugin else 0)
    finally:
        if dask_jobs._buffered is not None:  # this process's emitter: do not leave it behind
            dask_jobs._buffered.close()
            dask_jobs._buffered = None


def test_job_id_outside_a_dask_task_is_the_scheduler_s(monkeypatch) -> None:
    import distributed  # noqa: F401 - imported, as in a Dask client process, yet not in a task

    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    assert current_job_id() == "77"
