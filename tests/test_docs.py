"""The documentation: the docs site builds with warnings as errors (a broken link or anchor, a
page left out of the navigation), and every link of README points at a file of the repository.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_docs_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "from-the-tutorial" / "index.html").is_file()
    assert (tmp_path / "site" / "database-io-tutorial" / "index.html").is_file()


def test_every_readme_link_points_at_a_file_that_exists() -> None:
    links = [link for link in LINK.findall((ROOT / "README.md").read_text())]
    local = [link.split("#")[0] for link in links if not link.startswith(("http", "#"))]
    assert local, "README links no docs page"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []


def test_readme_is_a_short_users_page() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 260


def test_readme_guarantees_link_to_the_soak_s_long_runs_and_their_summary_lines() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## What it guarantees")[1].split("\n## ")[0]
    assert "](docs/guarantees.md#long-runs)" in section
    page = (ROOT / "docs" / "guarantees.md").read_text()
    runs = page.split("\n### Long runs\n")[1].split("\n### ")[0]
    for db in ("sqlite", "postgresql", "mysql"):
        assert re.search(rf"python -m scripts\.soak --seed \d+ --minutes \d+ --db {db}\n", runs)
    lines = re.findall(r"^ +SOAK seed=\d+ .*$", runs, re.MULTILINE)
    assert len(lines) >= 3 and all(line.endswith(" findings=0 PASS") for line in lines)
