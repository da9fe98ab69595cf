"""Attacks on the pipelined collector's writer process: whose code it runs, and what its frames
carry at the edges of what the single-process collector stores."""

from __future__ import annotations

from dataclasses import replace

from collector.pipeline import PipelinedCollector
from collector.settings import Settings

HOSTILE = "open({marker!r}, 'w').write('hostile')\n"


def test_the_writer_runs_our_code_not_a_collector_package_in_the_working_directory(
    settings: Settings, fake_redis, tmp_path, monkeypatch
) -> None:
    """``python -m`` puts the working directory first on sys.path: another user's
    collector/pipeline_writer.py there must not run (with or without an __init__.py)."""
    marker = tmp_path / "ran"
    for with_init in (False, True):
        folder = tmp_path / f"cwd{with_init}"
        (folder / "collector").mkdir(parents=True)
        (folder / "collector" / "pipeline_writer.py").write_text(HOSTILE.format(marker=str(marker)))
        if with_init:
            (folder / "collector" / "__init__.py").write_text(HOSTILE.format(marker=str(marker)))
        monkeypatch.chdir(folder)
        collector = PipelinedCollector(replace(settings, pipeline=True), client=fake_redis)
        collector.start()
        try:
            assert collector.writer.alive
        finally:
            collector.close()
        assert collector.writer.proc is not None and collector.writer.proc.returncode == 0
        assert not marker.exists()
