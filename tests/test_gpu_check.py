"""scripts/gpu-check.sh --smoke: every GPU check of the project, at toy sizes on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"


def _run(*args: str, hw2: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HW2": hw2 or f"{sys.executable} -m hw2cli",
        "PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_smoke_runs_every_check_and_summarises(tmp_path):
    out = tmp_path / "gc"
    proc = _run("--smoke", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["smoke"] is True and summary["device"] == "cpu" and summary["ok"] is True
    checks = {c["name"]: c for c in summary["checks"]}
    assert {"table1", "gpt_train", "gpt_generate", "rotation"} <= set(checks)
    assert all(c["rc"] == 0 and c["seconds"] > 0 for c in checks.values())
    # The numbers come from each command's own --json: 5 samples of 16 new characters.
    assert checks["gpt_generate"]["numbers"]["new_characters"] == 5 * 16
    assert 0.0 <= checks["table1"]["numbers"]["test_mean"]["valid"] <= 100.0
    assert checks["gpt_train"]["numbers"]["device"] == "cpu"
    assert 0.0 <= checks["rotation"]["numbers"]["plain"]["mean_accuracy"] <= 1.0


def test_failing_checks_still_summarised_with_exit_1(tmp_path):
    out = tmp_path / "gc"
    proc = _run("--smoke", "--out", str(out), hw2="false")
    assert proc.returncode == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is False
    assert [c["name"] for c in summary["checks"]] == ["table1", "gpt_train", "gpt_generate", "rotation"]
    assert all(c["rc"] != 0 for c in summary["checks"])


def test_existing_summary_is_kept_and_bad_arguments_exit_2(tmp_path):
    out = tmp_path / "gc"
    out.mkdir()
    (out / "summary.json").write_text("earlier results")
    proc = _run("--smoke", "--out", str(out))
    assert proc.returncode == 2 and "summary.json exists" in proc.stderr
    assert (out / "summary.json").read_text() == "earlier results"
    assert _run("--bogus").returncode == 2
    assert _run("--smoke", "--device", "tpu", "--out", str(tmp_path / "x")).returncode == 2
    assert (
        _run("--smoke", "--txt", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "y")).returncode == 2
    )
