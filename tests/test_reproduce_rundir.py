"""scripts/reproduce.sh's part folders under the run-directory contract: a redone part keeps
the complete one until it is complete itself, a cut redo is put back, one script per folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "reproduce.sh"


def _run(out: Path, *args: str, hw2: str = f"{sys.executable} -m hw2cli") -> subprocess.CompletedProcess:
    env = {**os.environ, "HW2": hw2, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        ["bash", str(SCRIPT), "--out", str(out), "--parts", "graph", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    proc = _run(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_a_failing_redo_puts_the_complete_part_back(done, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(done, out)
    before = snapshot(out / "graph")
    proc = _run(out, "--force", hw2="false")  # every hw2 call of the redo fails
    assert proc.returncode == 1
    assert f"part 'graph' failed with exit code 1 (log: {out / 'graph.failed' / 'log.txt'})" in proc.stderr
    assert snapshot(out / "graph") == before
    assert not (out / ".graph.old").exists() and not (out / ".hw2.lock").exists()


def test_a_cut_redo_is_put_back_and_skipped(done, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(done, out)
    before = snapshot(out / "graph")
    (out / "graph").rename(out / ".graph.old")  # as a SIGKILL during a --force redo leaves it
    (out / "graph").mkdir()
    (out / "graph" / "log.txt").write_text("half a redo")
    proc = _run(out)
    assert proc.returncode == 0, proc.stderr
    assert "== graph: complete, skipped" in proc.stdout
    assert snapshot(out / "graph") == before


@pytest.mark.skipif(shutil.which("flock") is None, reason="the script locks with util-linux flock")
def test_a_second_script_into_the_same_folder_is_refused(tmp_path):
    hold = (
        "import sys, time\nfrom hw2cli.common import rundir\n"
        "with rundir.lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = _run(tmp_path)
        assert proc.returncode == 2
        assert f"is in use by process {holder.pid}" in proc.stderr
        assert not (tmp_path / "graph").exists()
    finally:
        holder.kill()
        holder.wait()
