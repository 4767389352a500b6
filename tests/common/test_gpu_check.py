"""scripts/gpu-check.sh --smoke: every GPU check of the project, at toy sizes on the CPU, and
the side-by-side baselines (nanoGPT, the course's code) run from stand-in checkouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"

# A stand-in for karpathy/nanoGPT's train.py: it reads what nanoGPT's would (its config, the
# data set prepared under data/<dataset>, the --key=value overrides) and logs as nanoGPT logs.
FAKE_NANOGPT = """
import pickle, sys
from pathlib import Path
assert Path(sys.argv[1]).name == "train_shakespeare_char.py" and Path("configurator.py").is_file()
opts = dict(a[2:].split("=", 1) for a in sys.argv[2:])
data = Path("data") / opts["dataset"]
vocab = pickle.loads((data / "meta.pkl").read_bytes())["vocab_size"]
print(f"vocab {vocab}, {(data / 'train.bin').stat().st_size // 2} training ids, device {opts['device']}")
val = {0: 9.5, 5: 9.2, 10: 9.0}
for it in range(int(opts["max_iters"]) + 1):
    if it in val:
        print(f"step {it}: train loss {val[it] + 0.1:.4f}, val loss {val[it]:.4f}")
    print(f"iter {it}: loss 9.0000, time {500.0 if it == 0 else 20.0 + it % 2:.2f}ms, mfu -100.00%")
"""


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


@pytest.fixture
def checkouts(tmp_path):
    """Stand-in checkouts of nanoGPT and of the course's code (net.py leaves a file behind)."""
    nanogpt = tmp_path / "nanoGPT"
    (nanogpt / "config").mkdir(parents=True)
    (nanogpt / "train.py").write_text(FAKE_NANOGPT)
    (nanogpt / "configurator.py").write_text("# nanoGPT's reads --key=value overrides\n")
    (nanogpt / "config" / "train_shakespeare_char.py").write_text("batch_size = 64\n")
    course = tmp_path / "course"
    course.mkdir()
    (course / "net.py").write_text("import sys\nopen('trained.txt', 'w').write(' '.join(sys.argv[1:]))\n")
    return nanogpt, course


def test_smoke_runs_every_check_and_summarises(tmp_path, checkouts):
    nanogpt, course = checkouts
    out, txt = tmp_path / "gc", tmp_path / "corpus.txt"
    text = "Once upon a time there was a king and a queen.\n" * 40  # what hw2 trains on
    txt.write_text(f"The Project Gutenberg eBook\n*** START OF IT ***\n{text}*** END OF IT ***\nlicence\n")
    proc = _run(
        "--smoke", "--out", str(out), "--txt", str(txt), "--nanogpt", str(nanogpt), "--course", str(course),
        "--course-args", "--rounds 2", "--course-networks", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["smoke"] is True and summary["device"] == "cpu" and summary["ok"] is True
    checks = {c["name"]: c for c in summary["checks"]}
    assert {"table1", "gpt_train", "gpt_generate", "rotation", "nanogpt", "course"} <= set(checks)
    assert all(c["rc"] == 0 and c["seconds"] > 0 for c in checks.values())
    # The numbers come from each command's own --json: 5 samples of 16 new characters.
    assert checks["gpt_generate"]["numbers"]["new_characters"] == 5 * 16
    assert 0.0 <= checks["table1"]["numbers"]["test_mean"]["valid"] <= 100.0
    assert checks["gpt_train"]["numbers"]["device"] == "cpu"
    assert 0.0 <= checks["rotation"]["numbers"]["plain"]["mean_accuracy"] <= 1.0

    # nanoGPT's data as its prepare.py writes it: sorted characters as uint16, 90% to train
    data = out / "nanogpt" / "nanogpt-work" / "data" / "hw2check"
    chars = sorted(set(text))
    ids = np.fromfile(data / "train.bin", dtype=np.uint16)
    assert "".join(chars[i] for i in ids) == text[: int(len(text) * 0.9)]
    nano = checks["nanogpt"]["numbers"]
    assert (nano["best_val_loss"], nano["ms_per_iter"], nano["iters"]) == (9.0, 20.5, 10)
    assert (nano["batch_size"], nano["block_size"], nano["device"]) == (4, 32, "cpu")

    # The goals, recomputed here from the checks' own numbers
    goals, hw2 = summary["goals"], checks["gpt_train"]["numbers"]
    assert hw2["steady_tokens_per_s"] == goals["gpt_speed"]["hw2_tokens_per_s"]
    nano_tps = 4 * 32 * 1000 / 20.5
    run = json.loads((out / "gpt_train" / "train.json").read_text())
    # hw2's speed: its rows after the first (compilation), here the one row of steps 6-10
    assert [r["step"] for r in run["metrics"]] == [5, 10]
    assert goals["gpt_speed"]["ratio"] == pytest.approx(run["metrics"][1]["tokens_per_s"] / nano_tps)
    first = next(r["step"] for r in run["metrics"] if r.get("val_loss") is not None and r["val_loss"] <= 9.0)
    to_best = goals["gpt_time_to_nanogpt_best"]
    assert to_best["hw2_step"] == first == 5
    # at most the command's wall time less the 5 timed steps after step 5 (4 windows of 32 each)
    later = 5 * 4 * 32 / run["metrics"][1]["tokens_per_s"]
    assert to_best["share_of_nanogpt_wall"] == pytest.approx(
        (checks["gpt_train"]["seconds"] - later) / nano["wall_s"]
    )
    table = goals["table1"]
    assert table["wall_s"] == checks["table1"]["seconds"] and 0 < table["peak_fraction"] < 1.5
    # the course's net.py ran with its arguments in a copy of the checkout
    assert (out / "course" / "course-work" / "trained.txt").read_text() == "--rounds 2"
    assert not (course / "trained.txt").exists()
    assert goals["course"]["ratio"] == pytest.approx(
        (checks["course"]["numbers"]["wall_s"] / 2) / checks["table1"]["seconds"]
    )
    assert "goals (issue 24):" in proc.stdout and "GPT speed: hw2" in proc.stdout
    assert "Table 1 against the course's net.py:" in proc.stdout


def test_failing_checks_still_summarised_with_exit_1(tmp_path):
    out = tmp_path / "gc"
    proc = _run("--smoke", "--out", str(out), hw2="false")
    assert proc.returncode == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is False
    assert [c["name"] for c in summary["checks"]] == ["table1", "gpt_train", "gpt_generate", "rotation"]
    assert all(c["rc"] != 0 for c in summary["checks"])
    # no baselines given: none ran, and the goals that need them say so
    assert set(summary["goals"]) == {"gpu_check_seconds"}
    assert "skipped (give --nanogpt DIR)" in proc.stdout and "skipped (give --course DIR)" in proc.stdout


def test_existing_summary_is_kept_and_bad_arguments_exit_2(tmp_path, checkouts):
    nanogpt, course = checkouts
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
    (nanogpt / "train.py").unlink()
    proc = _run("--smoke", "--nanogpt", str(nanogpt), "--out", str(tmp_path / "z"))
    assert proc.returncode == 2 and "has no train.py" in proc.stderr
    proc = _run("--smoke", "--course", str(tmp_path), "--out", str(tmp_path / "z"))
    assert proc.returncode == 2 and "has no net.py" in proc.stderr
    proc = _run("--smoke", "--course", str(course), "--course-networks", "0", "--out", str(tmp_path / "z"))
    assert proc.returncode == 2 and "--course-networks 0" in proc.stderr
    assert not (tmp_path / "z").exists()
