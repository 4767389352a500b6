"""The run-directory contract (hw2cli/common/rundir.py) as `gpt train` and `rotate-eval
--save-models` use it: no earlier run lost, one writer at a time, checkpoints committed as a
set (a write failing at any point, or SIGKILL at any moment, resumes to the weights of an
uninterrupted run), and a loss that becomes non-finite stops with exit 3."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import REPO, TEXT, TINY, tiny, train_argv
from safetensors.torch import load_file
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common import rundir
from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import MARKER
from hw2cli.common.progress import Reporter
from hw2cli.gpt import checkpoint as ckpt
from hw2cli.gpt import saved
from hw2cli.gpt import train as train_module
from hw2cli.gpt.options import TrainOptions
from hw2cli.gpt.train import train

runner = CliRunner()


def cli_args(corpus, out, *extra) -> list[str]:
    return [*train_argv(corpus, out, **TINY, quiet=True), *extra]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def model_file(run: Path) -> Path:
    """The weights of the run's last complete checkpoint, wherever a cut left them."""
    return rundir.read_checkpoint(run, saved.MANIFEST, saved.State, "fix").path("model.safetensors")


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(model_file(a))), load_file(str(model_file(b)))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def one_error_line(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, to compare the weights of every cut-and-resumed run with."""
    root = tmp_path_factory.mktemp("reference")
    corpus = root / "tiny.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    train(tiny(corpus, root / "run"))
    return root / "run"


# ----------------------------------------------------------------------------- a new run


def test_the_folder_is_named_by_its_flag_and_a_path_keeps_its_braces(corpus, tmp_path):
    """rundir names the field (``{out}``), the command its flag; the path goes in as a value."""
    taken = tmp_path / "run{resume}"
    taken.write_text("a file")
    line = one_error_line(runner.invoke(app, cli_args(corpus, taken)))
    assert line == f"error: --out run directory {taken} exists and is not a folder; choose another path"


def test_non_empty_out_is_refused_and_left_byte_identical(corpus, tmp_path):
    train(tiny(corpus, tmp_path / "old", max_steps=6))
    before = snapshot(tmp_path / "old")
    line = one_error_line(runner.invoke(app, cli_args(corpus, tmp_path / "old")))
    assert str(tmp_path / "old") in line and "--force" in line and "--resume" in line
    assert line.startswith(f"error: --out run directory {tmp_path / 'old'} already holds an earlier run")
    assert snapshot(tmp_path / "old") == before
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("two years of work")
    assert "thesis.tex" in one_error_line(runner.invoke(app, cli_args(corpus, foreign)))
    assert (foreign / "thesis.tex").read_text() == "two years of work"
    other = tmp_path / "project"  # a file that merely shares a run file's name is not replaced
    other.mkdir()
    (other / "config.json").write_text('{"mine": true}')
    assert "config.json" in one_error_line(runner.invoke(app, cli_args(corpus, other)))
    assert (other / "config.json").read_text() == '{"mine": true}'


def test_force_keeps_the_old_run_until_the_new_one_has_a_checkpoint(corpus, tmp_path, monkeypatch, reference):
    old = tmp_path / "old"
    train(tiny(corpus, old, max_steps=6, seed=5))
    before = snapshot(old)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:  # the new run's first checkpoint cannot be written
        m.setattr(os, "replace", disk_full)
        with pytest.raises(Hw2Error, match="nothing was saved"):
            train(tiny(corpus, old, force=True))
    assert snapshot(old) == before  # not one byte of the old run lost
    assert saved.open_run(old).state.step == 6
    result = train(tiny(corpus, old, force=True))
    assert result.steps == 12 and not result.interrupted
    assert sorted(p.name for p in old.iterdir()) == sorted([*saved.RUN_FILES, MARKER])
    assert json.loads((old / "config.json").read_text())["train"]["seed"] == 0
    assert_same_weights(old, reference)


def test_a_second_writer_is_refused_with_the_pid(corpus, tmp_path):
    run = tmp_path / "run"
    train(tiny(corpus, run, max_steps=6))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom hw2cli.common import rundir\n"
            "with rundir.lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(60)\n",
            str(run),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(run)
        line = one_error_line(
            runner.invoke(
                app, ["gpt", "train", "--resume", str(run), "--max-steps", "12", "--device", "cpu", "--quiet"]
            )
        )
        assert f"in use by process {holder.pid}" in line and str(run) in line
        assert snapshot(run) == before
        empty = tmp_path / "empty"
        empty.mkdir()
        with rundir.lock(empty):
            with pytest.raises(Hw2Error, match=f"in use by process {os.getpid()}"):
                train(tiny(corpus, empty))
    finally:
        holder.kill()
        holder.wait()
    assert rundir.lock_holder(run) is None  # the kernel dropped the dead holder's lock: stale
    result = train(TrainOptions(device="cpu", max_steps=12, resume=str(run)))  # taken over
    assert result.steps == 12 and not (run / rundir.LOCK_NAME).exists()


# ----------------------------------------------------------------------------- faults


def _count_replaces(monkeypatch, fn) -> int:
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda *a, **k: (calls.append(a), real(*a, **k))[1])
    fn()
    monkeypatch.setattr(os, "replace", real)
    return len(calls)


def test_a_write_failing_at_any_point_resumes_to_the_uninterrupted_weights(
    corpus, tmp_path, monkeypatch, reference
):
    """Disk full at the 1st, 2nd, ... rename of a run (every file of both checkpoints and the
    figure): the run stops with one error, the last complete checkpoint survives, and a resume
    (or, before any checkpoint, a new run) ends with the weights of the uninterrupted run."""
    n = _count_replaces(monkeypatch, lambda: train(tiny(corpus, tmp_path / "count")))
    assert n >= 20  # 2 checkpoints of several files each, staged then moved, and loss.png
    real = os.replace
    outcomes = set()
    for k in range(1, n + 1):
        out = tmp_path / f"cut{k}"
        calls = [0]

        def failing(src, dst, calls=calls, k=k):
            calls[0] += 1
            if calls[0] == k:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(src, dst)

        with monkeypatch.context() as m:
            m.setattr(os, "replace", failing)
            try:
                train(tiny(corpus, out))
                outcomes.add("finished")  # only the figure was lost
            except Hw2Error as exc:
                assert "No space left on device" in str(exc) and str(out) in str(exc)
        manifest = rundir.read_checkpoint(out, saved.MANIFEST, saved.State, "fix").manifest
        outcomes.add(None if manifest is None else manifest.step)
        if manifest is None:
            train(tiny(corpus, out))  # nothing was committed: start again (no --force needed)
        elif not manifest.finished:
            train(TrainOptions(device="cpu", resume=str(out)))
        assert_same_weights(out, reference)
    assert {None, 6, 12, "finished"} <= outcomes


def test_a_tensor_write_failing_keeps_the_last_checkpoint(corpus, tmp_path, monkeypatch, reference):
    """safetensors reports a full disk as SafetensorError, not OSError: the same one line."""
    from safetensors import SafetensorError

    real = ckpt.save_file
    calls = [0]

    def full_at_second_checkpoint(tensors, filename, metadata=None):
        calls[0] += 1
        if calls[0] == 2:
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")
        return real(tensors, filename, metadata=metadata)

    run = tmp_path / "run"
    monkeypatch.setattr(ckpt, "save_file", full_at_second_checkpoint)
    with pytest.raises(Hw2Error, match="StorageFull.*the checkpoint of step 6 stays"):
        train(tiny(corpus, run))
    monkeypatch.setattr(ckpt, "save_file", real)
    assert saved.open_run(run).state.step == 6
    train(TrainOptions(device="cpu", resume=str(run)))
    assert_same_weights(run, reference)


def test_sigkill_at_random_moments_then_resume(corpus, tmp_path):
    """`gpt train` killed with SIGKILL at random moments (before its first checkpoint, and
    while it commits one every 2 steps): resume always works and ends at the weights of the
    uninterrupted run; meanwhile a second writer is refused."""
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = cli_args(corpus, "OUT", "--eval-interval", "2", "--max-steps", "30")
    train(tiny(corpus, tmp_path / "reference", max_steps=30, eval_interval=2))
    steps_seen = []
    for attempt in range(3):
        out = tmp_path / f"killed{attempt}"
        argv = [sys.executable, "-m", "hw2cli", *[str(out) if a == "OUT" else a for a in args]]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started = out / (rundir.LOCK_NAME if attempt == 0 else saved.MANIFEST)
        deadline = time.monotonic() + 120
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if attempt == 1 and proc.poll() is None:  # a second writer while the first one runs
            second = runner.invoke(app, ["gpt", "train", "--resume", str(out), "--device", "cpu"])
            line = one_error_line(second)
            assert "in use by process" in line
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        manifest = rundir.read_checkpoint(out, saved.MANIFEST, saved.State, "fix").manifest
        steps_seen.append(None if manifest is None else manifest.step)
        if manifest is None:
            train(tiny(corpus, out, max_steps=30, eval_interval=2))
        elif not manifest.finished:
            train(TrainOptions(device="cpu", resume=str(out)))
        assert_same_weights(out, tmp_path / "reference")
    assert any(step for step in steps_seen), steps_seen  # at least one kill came after a checkpoint


def test_half_written_checkpoint_is_ignored_with_a_warning(corpus, tmp_path):
    run = tmp_path / "run"
    train(tiny(corpus, run, max_steps=6))
    (run / ".model.safetensors.next").write_bytes(b"half a tensor")
    before = snapshot(run)
    result = runner.invoke(
        app,
        [
            "gpt",
            "generate",
            str(run),
            "--prompt",
            "The ",
            "--greedy",
            "--max-new-tokens",
            "3",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: ") and "half-written" in result.stderr
    assert snapshot(run) == before  # reading changes nothing
    (run / ".tmpnotes").write_text("mine")  # hidden files of the user's are not hw2's to delete
    resumed = train(TrainOptions(device="cpu", max_steps=12, resume=str(run)))  # the writer cleans up
    assert resumed.start_step == 6 and not (run / ".model.safetensors.next").exists()
    assert (run / ".tmpnotes").read_text() == "mine"


def test_committed_but_unmoved_checkpoint_is_used_and_finished(corpus, tmp_path, monkeypatch, reference):
    """Cut after the manifest was committed but before every file was moved into place:
    readers use the staged set, and the next writer finishes the move."""
    run = tmp_path / "run"
    real = os.replace

    def stop_after_manifest(src, dst):
        real(src, dst)
        if Path(dst).name == ".state.json.next" and saved.open_run(run).state is not None:
            raise KeyboardInterrupt  # a second Ctrl-C, right after the commit point of step 12

    train(tiny(corpus, run, max_steps=6))
    with monkeypatch.context() as m:
        m.setattr(os, "replace", stop_after_manifest)
        result = train(TrainOptions(device="cpu", max_steps=12, resume=str(run)))
    assert result.interrupted
    assert (run / ".state.json.next").exists()
    assert saved.open_run(run).state.step == 12  # the committed set, read where it is
    train(TrainOptions(device="cpu", max_steps=12, resume=str(run)))
    assert not (run / ".state.json.next").exists()
    assert_same_weights(run, reference)


# ----------------------------------------------------------------------------- targets, NaN


def test_interrupted_extended_run_resumes_to_its_new_target(corpus, tmp_path, reference):
    run = tmp_path / "run"
    train(tiny(corpus, run, max_steps=6))

    class CtrlC(Reporter):
        def update(self, key, advance=0, **fields):
            if fields.get("loss") is not None and advance:
                os.kill(os.getpid(), signal.SIGINT)

    cut = train(TrainOptions(device="cpu", max_steps=12, resume=str(run)), reporter=CtrlC())
    assert cut.interrupted and cut.steps == 9 and cut.total_steps == 12
    # the printed hint is `hw2 gpt train --resume RUN`, without --max-steps: it must reach 12
    result = runner.invoke(app, ["gpt", "train", "--resume", str(run), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "12 of 12" in result.stdout
    assert_same_weights(run, reference)


def test_non_finite_loss_stops_keeping_the_last_checkpoint(corpus, tmp_path, monkeypatch, reference):
    real_step = train_module.train_step
    steps = [0]

    def poisoned(net, *args):  # weights become NaN after step 7: the loss of step 8 is NaN
        loss = real_step(net, *args)
        steps[0] += 1
        if steps[0] == 7:
            with torch.no_grad():
                next(net.parameters()).fill_(float("nan"))
        return loss

    run = tmp_path / "run"
    monkeypatch.setattr(train_module, "train_step", poisoned)
    result = train(tiny(corpus, run))
    assert result.diverged_at == 8 and result.checkpoint_step == 6 and not result.interrupted
    assert saved.open_run(run).state.step == 6
    assert [r["step"] for r in saved.read_metrics(run)] == [3, 6]
    monkeypatch.setattr(train_module, "train_step", real_step)
    train(TrainOptions(device="cpu", resume=str(run)))  # the kept checkpoint resumes exactly
    assert_same_weights(run, reference)


def test_cli_exits_3_with_one_line_and_json_without_nan(corpus, tmp_path, monkeypatch):
    real_step = train_module.train_step
    steps = [0]

    def diverging(*args):  # the loss itself goes to infinity from step 8 on
        loss = real_step(*args)
        steps[0] += 1
        return loss * float("inf") if steps[0] >= 8 else loss

    monkeypatch.setattr(train_module, "train_step", diverging)
    out, summary = tmp_path / "run", tmp_path / "train.json"
    line = one_error_line(runner.invoke(app, cli_args(corpus, out, "--json", str(summary))), code=3)
    assert "NaN or infinite at step 8" in line and "checkpoint of step 6" in line and str(out) in line

    def no_constants(name):
        raise AssertionError(f"{name} in JSON")

    data = json.loads(summary.read_text(), parse_constant=no_constants)
    assert data["diverged_at"] == 8 and data["checkpoint_step"] == 6 and data["steps"] == 9
    assert [row["step"] for row in data["metrics"]] == [3, 6]
    assert saved.open_run(out).state.step == 6


# ----------------------------------------------------------------------------- rotate-eval


def rotate(*args):
    return runner.invoke(
        app,
        [
            "rotate-eval",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--angles",
            "0",
            "--device",
            "cpu",
            "--quiet",
            *args,
        ],
    )


def test_save_models_refuses_earlier_models_and_force_replaces_them_only_on_commit(tmp_path, monkeypatch):
    models = tmp_path / "models"
    assert rotate("--save-models", str(models)).exit_code == 0
    before = snapshot(models)
    meta = json.loads((models / "config.json").read_text())
    assert set(meta["models"]) == {"plain", "augmented"} and set(meta["files"]) == {
        "plain.safetensors",
        "augmented.safetensors",
    }
    line = one_error_line(rotate("--mode", "plain", "--seed", "1", "--save-models", str(models)))
    assert str(models) in line and "--force" in line
    assert snapshot(models) == before

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", disk_full)
        with pytest.raises(Hw2Error, match="No space left on device"):
            from hw2cli.rotation.experiment import run_rotation_experiment
            from hw2cli.rotation.options import RotationOptions

            opts = RotationOptions(
                dataset="digits",
                epochs=1,
                angles="0",
                mode="plain",
                seed=1,
                device="cpu",
                save_models=str(models),
                force=True,
            )
            run_rotation_experiment(opts)
    assert snapshot(models) == before
    assert rotate("--mode", "plain", "--seed", "1", "--save-models", str(models), "--force").exit_code == 0
    meta = json.loads((models / "config.json").read_text())
    assert list(meta["models"]) == ["plain"] and meta["models"]["plain"]["seed"] == 1
    assert sorted(p.name for p in models.iterdir()) == [MARKER, "config.json", "plain.safetensors"]
    reload = rotate("--mode", "augmented", "--load-models", str(models))
    assert "has no augmented model" in one_error_line(reload)
