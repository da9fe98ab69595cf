"""``collector sweep status --format sacct``: each point joined, through its row's ``_job``, with
Slurm's accounting of the task that stored it; one line where sacct is not installed."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from collector.cli import main
from collector.daemon import Collector
from collector.errors import RET_FAILED
from collector.sweeps.accounting import FIELDS, sacct_fields, size_of
from tests.helpers import drain
from workers import Emitter
from workers.keys import point_key

# What sacct --parsable2 --noheader prints for array 200 (tasks 0-3, 5-9 still pending) and
# job 300; MaxRSS is per step, the job's own line has none.
SACCT_OUT = """\
200_0|COMPLETED|0:0|00:00:05|
200_0.batch|COMPLETED|0:0|00:00:05|10240K
200_0.extern|COMPLETED|0:0|00:00:05|1024K
200_1|FAILED|1:0|00:01:00|
200_1.batch|FAILED|1:0|00:01:00|2.5G
200_1.extern|COMPLETED|0:0|00:01:00|512K
200_2|TIMEOUT|0:0|00:10:00|
200_2.batch|CANCELLED|0:15|00:10:01|900M
200_[5-9]|PENDING|0:0|00:00:00|
300|COMPLETED|0:0|00:00:02|
300.batch|COMPLETED|0:0|00:00:02|4M
"""
FAKE_SACCT = """#!/bin/sh
echo "$@" >> "$SACCT_LOG"
cat "$SACCT_OUT"
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def on_path(tmp_path: Path, monkeypatch, script: str | None) -> Path:
    """A PATH that holds only a directory with ``script`` as sacct (None: no sacct at all)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if script is not None:
        (bin_dir / "sacct").write_text(script)
        (bin_dir / "sacct").chmod(0o755)
        (tmp_path / "sacct.out").write_text(SACCT_OUT)
        monkeypatch.setenv("SACCT_OUT", str(tmp_path / "sacct.out"))
        monkeypatch.setenv("SACCT_LOG", str(tmp_path / "sacct.log"))
    monkeypatch.setenv("PATH", f"{bin_dir}:/bin:/usr/bin" if script else str(bin_dir))
    return tmp_path / "sacct.log"


@pytest.fixture
def sweep_rows(fake_redis, settings, sqlite_url, monkeypatch) -> None:
    """Sweep ij of 8 points: 0-2 ran as tasks of array 200 (job ids 201-203), 3 as job 300,
    4 as an RQ-like job, 5 as a job named by a hostile environment; 6 and 7 never ran."""
    monkeypatch.setattr("redis.Redis.from_url", classmethod(lambda cls, url, **kw: fake_redis))
    code, _, err = invoke("sweep", "declare", "ij", "--table", "ij", "--grid", "I=0:7:1",
                          "--db-url", sqlite_url)  # fmt: skip
    assert code == 0, err
    daemon = Collector(settings, client=fake_redis)
    daemon.start()
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    scheduler = {
        0: {"SLURM_JOB_ID": "201", "SLURM_ARRAY_JOB_ID": "200", "SLURM_ARRAY_TASK_ID": "0"},
        1: {"SLURM_JOB_ID": "202", "SLURM_ARRAY_JOB_ID": "200", "SLURM_ARRAY_TASK_ID": "1"},
        2: {"SLURM_JOB_ID": "203", "SLURM_ARRAY_JOB_ID": "200", "SLURM_ARRAY_TASK_ID": "2"},
        3: {"SLURM_JOB_ID": "300"},
        4: {"PBS_JOBID": "41.pbs01"},
        5: {"SLURM_JOB_ID": "--starttime=now,200"},  # must never reach sacct's command line
    }
    for name in list(os.environ):
        if name.startswith(("SLURM_", "PBS_", "LSB_")):
            monkeypatch.delenv(name)
    for i, env in scheduler.items():
        with monkeypatch.context() as local:
            for key, value in env.items():
                local.setenv(key, value)
            data = {"I": i, "K": i * 2} if i != 1 else {"I": i, "_error": "RuntimeError: x"}
            emitter.emit(data, table="ij", key=point_key("ij", {"I": i}))
    drain(daemon)
    daemon.close()


def test_each_point_gets_the_accounting_of_the_task_that_stored_it(
    sweep_rows, sqlite_url, tmp_path, monkeypatch
) -> None:
    log = on_path(tmp_path, monkeypatch, FAKE_SACCT)
    code, out, err = invoke("sweep", "status", "ij", "--format", "sacct", "--db-url", sqlite_url)
    assert code == 0, err
    assert list(csv.reader(io.StringIO(out))) == [
        ["index", "replicate", "I", "_job", *FIELDS],
        ["0", "0", "0", "200_0", "COMPLETED", "0:0", "00:00:05", "10240K"],
        ["1", "0", "1", "200_1", "FAILED", "1:0", "00:01:00", "2.5G"],
        ["2", "0", "2", "200_2", "TIMEOUT", "0:0", "00:10:00", "900M"],
        ["3", "0", "3", "300", "COMPLETED", "0:0", "00:00:02", "4M"],
        ["4", "0", "4", "41.pbs01", "", "", "", ""],  # not a Slurm name: not asked
        ["5", "0", "5", "--starttime=now,200", "", "", "", ""],
        ["6", "0", "6", "", "", "", "", ""],  # no row yet
        ["7", "0", "7", "", "", "", "", ""],
    ]
    assert log.read_text() == (
        "--jobs=200,300 --format=JobID,State,ExitCode,Elapsed,MaxRSS --parsable2 --noheader\n"
    )


def test_without_sacct_one_line_says_so(sweep_rows, sqlite_url, tmp_path, monkeypatch) -> None:
    on_path(tmp_path, monkeypatch, None)
    code, out, err = invoke("sweep", "status", "ij", "--format", "sacct", "--db-url", sqlite_url)
    assert (code, out) == (RET_FAILED, "")
    assert err == "Error: sacct is not on PATH: no Slurm accounting on this machine\n"


def test_a_failing_sacct_is_one_line(sweep_rows, sqlite_url, tmp_path, monkeypatch) -> None:
    on_path(tmp_path, monkeypatch, "#!/bin/sh\necho 'sacct: error: Slurm accounting storage is "
            "disabled' >&2\necho 'second line' >&2\nexit 1\n")  # fmt: skip
    code, out, err = invoke("sweep", "status", "ij", "--format", "sacct", "--db-url", sqlite_url)
    assert (code, out) == (RET_FAILED, "")
    assert err == "Error: sacct failed: sacct: error: Slurm accounting storage is disabled\n"


def test_json_and_sacct_together_are_refused(sqlite_url) -> None:
    code, _, err = invoke("sweep", "status", "ij", "--json", "--format", "sacct",
                          "--db-url", sqlite_url)  # fmt: skip
    assert code == 2 and err.startswith("Error: --json and --format sacct")


steps = st.lists(
    st.tuples(st.sampled_from(["batch", "extern", "0", "1"]), st.integers(0, 10**7)),
    min_size=1,
    max_size=4,
    unique_by=lambda step: step[0],
)


@given(jobs=st.dictionaries(st.integers(1, 10**6).map(lambda n: f"{n}_3"), steps, max_size=5))
def test_a_task_gets_its_own_line_and_its_largest_step(jobs) -> None:
    lines = []
    for job, job_steps in jobs.items():
        lines.append(f"{job}|COMPLETED|0:0|00:00:01|")
        lines += [f"{job}.{name}|COMPLETED|0:0|00:00:01|{kib}K" for name, kib in job_steps]
    asked: list[list[str]] = []

    def run(args: list[str]) -> str:
        asked.append(args)
        return "\n".join(lines) + "\n"

    found = sacct_fields([*jobs, None, "x_1"], run)
    assert set(found) == set(jobs)
    for job, job_steps in jobs.items():
        assert size_of(found[job]["MaxRSS"]) == max(kib for _, kib in job_steps) * 1024
        assert found[job]["State"] == "COMPLETED"
    assert len(asked) == (1 if jobs else 0)


@given(number=st.integers(0, 10**6), unit=st.sampled_from("KMGT"))
def test_sizes_are_read_in_bytes(number, unit) -> None:
    assert size_of(f"{number}{unit}") == number * 1024 ** ("KMGT".index(unit) + 1)
    assert size_of(str(number)) == number


def test_the_documented_pandas_join(sweep_rows, sqlite_url, tmp_path, monkeypatch) -> None:
    """The snippet of docs/sweeps.md, run as written against a sacct that prints its header."""
    pytest.importorskip("pandas")
    docs = (Path(__file__).parents[1] / "docs" / "sweeps.md").read_text()
    snippet = docs.split("The same join by hand")[1].split("```python\n")[1].split("```")[0]
    on_path(tmp_path, monkeypatch, FAKE_SACCT)
    (tmp_path / "sacct.out").write_text("JobID|MaxRSS|Elapsed\n" + "".join(
        f"{line.split('|')[0]}|{line.split('|')[4]}|{line.split('|')[3]}\n"
        for line in SACCT_OUT.splitlines()
    ))  # fmt: skip
    monkeypatch.setenv("COLLECTOR_DB_URL", sqlite_url)
    space: dict = {}
    exec(snippet, space)  # our own documentation
    asked = (tmp_path / "sacct.log").read_text()
    assert asked == "--jobs=200,300 --format=JobID,MaxRSS,Elapsed --parsable2\n"
    per_point = space["per_point"].sort_values("I")
    assert list(per_point["_job"].fillna("")) == ["200_0", "200_1", "200_2", "300", "41.pbs01",
                                                  "--starttime=now,200"]  # fmt: skip
    assert list(per_point["MaxRSS"].fillna("")) == ["10240K", "2.5G", "900M", "4M", "", ""]
    assert list(per_point["Elapsed"].fillna("")) == ["00:00:05", "00:01:00", "00:10:00",
                                                     "00:00:02", "", ""]  # fmt: skip


@given(text=st.text(max_size=12))
def test_any_size_text_is_read_or_refused_never_raises(text) -> None:
    size = size_of(text)
    assert size == -1 or size >= 0
    assert size_of("1.2.3K") == size_of("K") == size_of("12Q") == -1


def test_a_sacct_speaking_latin1_is_one_line(sweep_rows, sqlite_url, tmp_path, monkeypatch) -> None:
    on_path(tmp_path, monkeypatch, "#!/bin/sh\nprintf 'sacct: erreur: d\\351sactiv\\351\\n' >&2\n"
            "exit 1\n")  # fmt: skip
    code, out, err = invoke("sweep", "status", "ij", "--format", "sacct", "--db-url", sqlite_url)
    assert (code, out) == (RET_FAILED, "")
    assert err == "Error: sacct failed: sacct: erreur: d\ufffdsactiv\ufffd\n"


def test_a_heterogeneous_job_gets_its_leaders_line_and_its_largest_step() -> None:
    """A het job's ``_job`` is SLURM_JOB_ID, the leader's id (``400``); sacct names its
    components ``400+0``, ``400+1``: the leader's line (it runs the batch script) and the
    largest step of any component."""
    out = (
        "400+0|COMPLETED|0:0|00:00:07|\n"
        "400+0.batch|COMPLETED|0:0|00:00:07|20M\n"
        "400+1|FAILED|2:0|00:00:06|\n"
        "400+1.0|FAILED|2:0|00:00:06|3G\n"
    )
    found = sacct_fields(["400"], lambda args: out)
    assert found == {
        "400": {"State": "COMPLETED", "ExitCode": "0:0", "Elapsed": "00:00:07", "MaxRSS": "3G"}
    }


@given(
    jobs=st.lists(st.sampled_from(["200_0", "200_1", "300", "400", "x", None]), max_size=6),
    out=st.text(alphabet=st.sampled_from("0123456789_+.|[]-KMG \nCOMPLETED:"), max_size=400),
)
def test_whatever_sacct_prints_only_the_jobs_asked_for_come_back(jobs, out) -> None:
    found = sacct_fields(jobs, lambda args: out)
    assert set(found) <= {job for job in jobs if job is not None and job != "x"}
    assert all(set(fields) == set(FIELDS) for fields in found.values())


def test_a_sacct_printing_garbage_leaves_the_fields_empty_and_says_so(
    sweep_rows, sqlite_url, tmp_path, monkeypatch
) -> None:
    on_path(tmp_path, monkeypatch, "#!/bin/sh\nprintf 'garbage|\\n\\377\\376 200_0|x\\n'\n")
    code, out, err = invoke("sweep", "status", "ij", "--format", "sacct", "--db-url", sqlite_url)
    assert code == 0, err
    lines = list(csv.reader(io.StringIO(out)))
    assert [line[3:] for line in lines[1:5]] == [
        [job, "", "", "", ""] for job in ("200_0", "200_1", "200_2", "300")
    ]
    assert err == "note: sacct has no accounting of 4 of the 4 Slurm jobs the rows name\n"


def test_a_sacct_that_knows_some_jobs_notes_the_others(
    sweep_rows, sqlite_url, tmp_path, monkeypatch
) -> None:
    on_path(tmp_path, monkeypatch, FAKE_SACCT)
    (tmp_path / "sacct.out").write_text(
        "".join(line + "\n" for line in SACCT_OUT.splitlines() if not line.startswith("300"))
    )  # fmt: skip; job 300's records purged
    code, out, err = invoke("sweep", "status", "ij", "--format", "sacct", "--db-url", sqlite_url)
    assert code == 0, err
    assert out.splitlines()[4] == "3,0,3,300,,,,"
    assert err == "note: sacct has no accounting of 1 of the 4 Slurm jobs the rows name\n"
