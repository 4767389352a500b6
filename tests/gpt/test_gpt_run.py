"""What `hw2 gpt train` decides around its loop: the sizes it picks for the device, what
`--resume` may change, the schedule of an extended run, the prompt of its samples, the
progress bar, and what a run reads or replaces (issues 21 and 22)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from helpers import REPO, TEXT, tiny
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common.options import OptionError
from hw2cli.common.progress import Reporter
from hw2cli.gpt import saved
from hw2cli.gpt.options import COURSE_SIZE, CPU_SIZE, TrainOptions, eval_interval, fill_sizes
from hw2cli.gpt.tokens import CharTokenizer
from hw2cli.gpt.train import lr_at, train

runner = CliRunner()


def one_error_line(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# ----------------------------------------------------------------------------- sizes by device


def test_sizes_left_out_are_chosen_for_the_device():
    cpu, why = fill_sizes(TrainOptions(), "cpu")
    assert {k: getattr(cpu, k) for k in CPU_SIZE} == CPU_SIZE
    assert (cpu.model_type, cpu.max_steps, cpu.epochs) == ("gpt-micro", 1000, None)
    assert why.startswith("chose {model_type} gpt-micro {block_size} 64 {batch_size} 16 {max_steps} 1000")
    assert "CPU" in why
    gpu, why = fill_sizes(TrainOptions(), "cuda")
    assert {k: getattr(gpu, k) for k in COURSE_SIZE} == COURSE_SIZE
    assert (gpu.model_type, gpu.block_size, gpu.batch_size, gpu.epochs) == ("gpt-mini", 128, 128, 3)
    assert "{epochs} 3" in why and "course" in why


def test_explicit_sizes_win_and_only_the_missing_ones_are_named():
    opts, why = fill_sizes(TrainOptions(model_type="gpt-nano", max_steps=50), "cpu")
    assert (opts.model_type, opts.block_size, opts.batch_size, opts.max_steps) == ("gpt-nano", 64, 16, 50)
    assert why.startswith("chose {block_size} 64 {batch_size} 16:")
    opts, _ = fill_sizes(TrainOptions(epochs=2), "cuda")  # epochs given: no step count chosen
    assert (opts.epochs, opts.max_steps) == (2, None)
    given = TrainOptions(model_type="gpt-mini", block_size=64, batch_size=8, max_steps=5)
    assert fill_sizes(given, "cpu") == (given, None)
    opts, why = fill_sizes(TrainOptions(init_from="gpt2", block_size=32), "cpu")
    assert opts.model_type is None and "model_type" not in why  # GPT-2's own shape


def test_default_eval_interval_is_a_tenth_of_a_short_run():
    assert eval_interval(TrainOptions(), 1000) == 100
    assert eval_interval(TrainOptions(), 20_000) == 500
    assert eval_interval(TrainOptions(), 5) == 1
    assert eval_interval(TrainOptions(eval_interval=7), 1000) == 7


def test_cli_says_what_it_chose_and_fits_its_bar_in_80_columns(corpus, tmp_path):
    result = runner.invoke(
        app,
        ["gpt", "train", "--txt-file", str(corpus), "--block-size", "16", "--max-steps", "4", "--eval-steps", "1",
         "--model-type", "gpt-nano", "--device", "cpu", "--out", str(tmp_path / "run"), "--sample-interval", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "chose --batch-size 16: a run of minutes on a CPU" in result.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["batch_size"] == 16
    quiet = runner.invoke(
        app,
        ["gpt", "train", "--txt-file", str(corpus), "--block-size", "16", "--max-steps", "2",
         "--model-type", "gpt-nano", "--device", "cpu", "--out", str(tmp_path / "q"), "--quiet", "--eval-steps", "1"],
    )  # fmt: skip
    assert quiet.exit_code == 0 and "chose" not in quiet.stderr


def test_progress_bar_has_no_nan_and_fits_80_columns():
    from rich.console import Console

    from hw2cli.gpt.render import train_reporter

    console = Console(width=80, record=True, force_terminal=True)
    reporter = train_reporter(quiet=False)
    reporter.start("train", "train", total=12_654, completed=0, loss=None, val=None)
    before = reporter._progress.make_tasks_table(reporter._progress.tasks)
    console.print(before)
    reporter.update("train", advance=10_000, loss=1.2345, val=1.5)
    console.print(reporter._progress.make_tasks_table(reporter._progress.tasks))
    lines = [line for line in console.export_text().splitlines() if line.strip()]
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines), lines
    assert "nan" not in lines[0] and "loss -.--- val -.---" in lines[0]
    assert "loss 1.234 val 1.500" in lines[1] and "10000/12654" in lines[1]


# ----------------------------------------------------------------------------- resume


def test_resume_refuses_changed_options_naming_each_and_its_recorded_value(corpus, tmp_path):
    run = tmp_path / "run"
    train(tiny(corpus, run, max_steps=6, lr=3e-3))
    before = (run / "state.json").read_bytes()
    line = one_error_line(
        runner.invoke(
            app, ["gpt", "train", "--resume", str(run), "--lr", "0.1", "--model-type", "gpt-mini", "-q"]
        )
    )
    assert "--lr 0.1 (recorded 0.003)" in line and "--model-type gpt-mini (recorded gpt-nano)" in line
    assert "--batch-size" not in line and (run / "state.json").read_bytes() == before
    for argv, named in [
        (["--dropout", "0.2"], "--dropout 0.2 (recorded 0.1)"),
        (["--pos-emb", "none"], "--pos-emb none (recorded rope)"),
        (["--abs-emb"], "--pos-emb learned (recorded rope)"),
        (["--seed", "1"], "--seed 1 (recorded 0)"),
        (["--lr-schedule", "cosine"], "--lr-schedule cosine (recorded constant)"),
        (["--out", str(tmp_path / "elsewhere")], "--out"),
        (["--txt-file", str(tmp_path / "other.txt")], "--txt-file"),
    ]:
        (tmp_path / "other.txt").write_text(TEXT)
        line = one_error_line(runner.invoke(app, ["gpt", "train", "--resume", str(run), *argv, "-q"]))
        assert named in line, (argv, line)
    # the recorded values themselves, and what may change, are accepted
    same = ["--lr", "0.003", "--model-type", "gpt-nano", "--txt-file", str(corpus), "--block-size", "16"]
    result = runner.invoke(
        app, ["gpt", "train", "--resume", str(run), *same, "--max-steps", "9", "--device", "cpu", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert saved.open_run(run).state.step == 9


def test_resume_refuses_fewer_steps_than_reached_with_the_fix(corpus, tmp_path):
    run = tmp_path / "run"
    train(tiny(corpus, run, max_steps=6))
    line = one_error_line(
        runner.invoke(app, ["gpt", "train", "--resume", str(run), "--max-steps", "4", "-q"])
    )
    assert "--max-steps asks for 4 steps, fewer than the 6 the run reached; give at least 6" in line
    with pytest.raises(OptionError, match="^max_steps asks for 4 steps"):  # Python callers: the field
        train(TrainOptions(resume=str(run), max_steps=4))
    assert saved.open_run(run).state.step == 6


def test_python_resume_compares_the_options_set(corpus, tmp_path):
    run = tmp_path / "run"
    train(tiny(corpus, run, max_steps=3))
    with pytest.raises(OptionError, match=r"weight_decay 0.5 \(recorded 0.1\)"):
        train(TrainOptions(resume=str(run), weight_decay=0.5))
    with pytest.raises(OptionError, match="force"):
        TrainOptions(resume=str(run), force=True)


def test_extending_a_cosine_run_keeps_its_recorded_length(corpus, tmp_path):
    """Documented in docs/gpt.md: the schedule keeps the length the run started with; past it
    the learning rate stays at min_lr."""
    run = tmp_path / "run"
    opts = dict(lr_schedule="cosine", lr=1e-3, min_lr=1e-4, warmup_steps=2, max_steps=6, log_interval=1)
    train(tiny(corpus, run, **opts))
    resumed = train(TrainOptions(resume=str(run), max_steps=12))
    lrs = {r["step"]: r["lr"] for r in resumed.metrics}
    planned = tiny(corpus, run, **opts)
    for step in range(1, 7):
        assert lrs[step] == pytest.approx(lr_at(step - 1, 6, planned))
    assert lrs[6] > 1e-4 and all(lrs[s] == pytest.approx(1e-4) for s in range(8, 13))
    assert [r["step"] for r in resumed.metrics] == list(range(1, 13))
    assert json.loads((run / "state.json").read_text())["total_steps"] == 12


# ----------------------------------------------------------------------------- samples


def test_sample_prompt_is_taken_from_the_validation_text():
    from hw2cli.gpt.sample import sample_prompt

    tok = CharTokenizer.from_text(TEXT)
    val = TEXT[len(TEXT) // 2 + 7 :]  # starts in the middle of a line
    prompt = sample_prompt(tok, tok.encode(val))
    first_line = val.split("\n")[1]
    assert first_line.startswith(prompt) and 8 <= len(prompt) <= 24
    assert first_line[len(prompt)] == " "  # ends at a word
    words = "no newline here at all, just words"
    tok = CharTokenizer.from_text(words)
    assert sample_prompt(tok, tok.encode(words)) == "no newline here at all,"  # no line: the start
    tok = CharTokenizer.from_text(" \n")
    assert sample_prompt(tok, tok.encode("\n \n  \n")) == "\n \n  \n"  # only blanks: taken as they are


def test_training_samples_continue_the_text_itself(corpus, tmp_path):
    result = train(tiny(corpus, tmp_path / "run", sample_interval=6, sample_tokens=5))
    assert result.sample is not None and not result.sample.startswith("Once upon a time")
    prompt = result.sample[:-5]
    assert prompt and prompt in TEXT


# ----------------------------------------------------------------------------- what a run reads and replaces


def test_outputs_may_not_replace_the_recorded_text_of_a_resumed_run(corpus, tmp_path):
    run = tmp_path / "run"
    train(tiny(corpus, run, max_steps=3))
    before = corpus.read_bytes()
    line = one_error_line(runner.invoke(app, ["gpt", "train", "--resume", str(run), "--json", str(corpus)]))
    assert "would overwrite the input recorded --txt-file" in line
    link = tmp_path / "link.json"
    link.symlink_to(corpus)
    line = one_error_line(runner.invoke(app, ["gpt", "train", "--resume", str(run), "--json", str(link)]))
    assert "would overwrite the input" in line
    assert corpus.read_bytes() == before and saved.open_run(run).state.step == 3


def test_tensorboard_may_not_go_into_the_run_or_onto_an_input(corpus, tmp_path):
    run = tmp_path / "run"
    base = ["gpt", "train", "--txt-file", str(corpus), "--model-type", "gpt-nano", "--max-steps", "1", "-q"]
    line = one_error_line(runner.invoke(app, [*base, "--out", str(run), "--tensorboard", str(run / "tb")]))
    assert "--tensorboard" in line and "run directory" in line
    line = one_error_line(runner.invoke(app, [*base, "--out", str(run), "--tensorboard", str(corpus)]))
    assert "--tensorboard" in line and "is a file" in line
    assert not (run / "tb").exists()


def test_out_holding_files_hw2_did_not_write_is_refused_without_force(corpus, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.csv").write_text("my own measurements\n")
    base = ["gpt", "train", "--txt-file", str(corpus), "--model-type", "gpt-nano", "--block-size", "16"]
    line = one_error_line(runner.invoke(app, [*base, "--max-steps", "2", "--out", str(out), "-q"]))
    assert "metrics.csv" in line and "--force" in line
    assert (out / "metrics.csv").read_text() == "my own measurements\n"


def test_force_run_diverging_before_its_first_checkpoint_leaves_the_old_run_whole(
    corpus, tmp_path, monkeypatch
):
    from hw2cli.gpt import train as train_module

    old = tmp_path / "old"
    train(tiny(corpus, old, max_steps=6))

    def run_files():  # hw2's own bookkeeping (the lock, a marker of what it wrote) aside
        return {p.name: p.read_bytes() for p in old.iterdir() if not p.name.startswith(".")}

    before = run_files()
    assert "loss.png" in before
    real_step = train_module.train_step
    monkeypatch.setattr(train_module, "train_step", lambda *a: real_step(*a) * math.inf)
    result = train(tiny(corpus, old, force=True, seed=3))
    assert result.diverged_at == 1 and result.checkpoint_step is None
    assert run_files() == before  # loss.png included


# ----------------------------------------------------------------------------- optimizer state


def _edit_group(change):
    def edit(state):
        change(state["param_groups"][0])

    return edit


@pytest.mark.parametrize(
    "edit, named",
    [
        (_edit_group(lambda g: g["params"].reverse()), "numbered"),  # once a segfault
        (_edit_group(lambda g: g.update(eps="abc")), "param_groups.0.eps"),
        (_edit_group(lambda g: g.update(eps=-1.0)), "param_groups.0.eps"),
        (_edit_group(lambda g: g.update(betas=[0.9])), "param_groups.0.betas"),
        (_edit_group(lambda g: g.update(betas=[0.9, 1.5])), "param_groups.0.betas"),
        (_edit_group(lambda g: g.update(betas="0.9")), "param_groups.0.betas"),
        (_edit_group(lambda g: g.update(fused="yes")), "param_groups.0.fused"),
        (_edit_group(lambda g: g.update(weight_decay=None)), "param_groups.0.weight_decay"),
        (_edit_group(lambda g: g.update(novel={"a": 1})), "novel"),
        (_edit_group(lambda g: g.pop("lr")), "param_groups.0.lr"),
        (lambda s: s["param_groups"][1]["params"].__setitem__(0, 0), "numbered"),
        (lambda s: s["param_groups"].append(dict(s["param_groups"][1])), "sizes"),
    ],
)
def test_hand_edited_optimizer_state_is_one_line_exit_2(corpus, tmp_path, edit, named):
    run = tmp_path / "run"
    train(tiny(corpus, run, max_steps=3))
    state = json.loads((run / "state.json").read_text())
    edit(state)
    (run / "state.json").write_text(json.dumps(state))
    before = {p.name: p.read_bytes() for p in run.iterdir() if not p.name.startswith(".")}
    line = one_error_line(
        runner.invoke(
            app, ["gpt", "train", "--resume", str(run), "--max-steps", "6", "--device", "cpu", "-q"]
        )
    )
    assert "state.json" in line and named in line and "unexpected" not in line, line
    assert {p.name: p.read_bytes() for p in run.iterdir() if not p.name.startswith(".")} == before


def test_optimizer_keys_of_a_newer_torch_that_are_flags_or_numbers_are_accepted(corpus, tmp_path):
    run = tmp_path / "run"
    train(tiny(corpus, run, max_steps=3))
    state = json.loads((run / "state.json").read_text())
    state["param_groups"][0]["some_future_flag"] = True
    (run / "state.json").write_text(json.dumps(state))
    assert train(TrainOptions(resume=str(run), max_steps=6, device="cpu")).steps == 6


# ----------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("delay", [0.0, 1.0], ids=["in-the-warm-up", "mid-run"])
def test_sigint_during_a_default_cpu_run_returns_within_2_s_resumable(tmp_path, delay):
    """`hw2 gpt train --txt-file T` with the CPU defaults (gpt-micro, 1,000 steps), Ctrl-C
    right after it says what it chose (the first steps, which time the estimate) or a second
    later: exit 130 within 2 s (issue 21), and the run continues with --resume. The 2 s are
    counted in the child's CPU seconds after the signal (what it did: end its step, save,
    write), not on the wall clock, which a busy machine stretches."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time
    from pathlib import Path

    if not Path("/proc/self/stat").is_file():
        pytest.skip("needs Linux's /proc")
    text = tmp_path / "t.txt"
    text.write_text(TEXT * 4, encoding="utf-8")
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "hw2cli", "gpt", "train", "--txt-file", str(text), "--device", "cpu"]
    proc = subprocess.Popen(
        [*argv, "--out", str(run), "--json", str(tmp_path / "t.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    chose = threading.Event()
    lines: list[str] = []

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("chose "):
                chose.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        assert chose.wait(timeout=300), lines
        time.sleep(delay)
        stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        before = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        proc.send_signal(signal.SIGINT)
        watchdog = threading.Timer(120, proc.kill)
        watchdog.start()
        _, status, usage = os.wait4(proc.pid, 0)
        watchdog.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        took = usage.ru_utime + usage.ru_stime - before
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout = proc.stdout.read()
    assert proc.returncode == 130, (lines, stdout)
    assert took < 2.0, f"{took:.2f} CPU seconds after Ctrl-C"
    assert "Traceback" not in "".join(lines)
    summary = json.loads((tmp_path / "t.json").read_text())
    assert summary["interrupted"] is True and summary["total_steps"] == 1000
    reached = summary["steps"]
    if summary["checkpoint_step"] is None:  # stopped in the very first step: nothing saved
        assert reached == 0 and "nothing was saved" in stdout and not (run / "state.json").exists()
        train(TrainOptions(txt_file=str(text), device="cpu", out=str(run), max_steps=2))  # no --force needed
    else:
        assert summary["checkpoint_step"] == reached >= 1 and "--resume" in stdout
        assert saved.open_run(run).state.step == reached
        train(TrainOptions(resume=str(run), max_steps=reached + 2, device="cpu"))
    assert saved.open_run(run).state.step == max(reached + 2, 2)


# ----------------------------------------------------------------------------- estimate, in memory


class _Notes(Reporter):
    def __init__(self):
        self.notes = []

    def note(self, message):
        self.notes.append(message)


@pytest.mark.parametrize(
    "per_step, expected",
    [
        (0.05, None),  # 5 steps timed; 994 * 0.05 s + 10 evaluations: under 2 minutes, nothing said
        # timed until a second has passed: 4 steps; 995 * 0.3 s + 10 * 20 batches * 0.1 s = 5.3 min
        (0.3, "estimated wall time of the training: about 5.3 min (4 timed steps of 0.30 s, 995 to go"),
        (4.0, "warning: estimated wall time of the training: about 71.0 min (1 timed step of 4.00 s"),
    ],
)
def test_the_estimate_comes_from_the_steps_after_the_first(monkeypatch, capsys, per_step, expected):
    import types

    import torch

    from hw2cli.gpt import train as train_module
    from hw2cli.gpt.render import train_reporter

    clock = [100.0]
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: clock[0])
    notes = _Notes()
    opts = TrainOptions(eval_interval=100, eval_steps=20)
    trainer = types.SimpleNamespace(
        device=torch.device("cpu"), step=0, start_step=0, total=1000, opts=opts, reporter=notes, t0=None
    )
    estimating = True
    for step in range(1, 8):
        clock[0] += 30.0 if step == 1 else per_step  # the first step: start-up and compilation, not timed
        trainer.step = step
        estimating = estimating and train_module.Trainer.estimate(trainer)
    if expected is None:
        assert notes.notes == []
    else:
        assert len(notes.notes) == 1 and notes.notes[0].startswith(expected), notes.notes
    if per_step == 4.0:  # the library names the fields, the command's reporter their flags
        assert "give {max_steps} or a smaller {model_type}" in notes.notes[0]
        train_reporter(quiet=False).note(notes.notes[0])
        assert "give --max-steps or a smaller --model-type" in capsys.readouterr().err


def test_a_run_in_memory_writes_nothing_and_returns_the_trained_model(corpus, tmp_path, monkeypatch):
    import torch
    from helpers import weights

    train(tiny(corpus, tmp_path / "run"))
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = train(dataclasses.replace(tiny(corpus, tmp_path / "unused"), out=None))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run directory anywhere
    assert result.run_dir is None and result.checkpoint_step is None and not result.model.training
    on_disk = weights(tmp_path / "run")
    for name, tensor in result.model.state_dict().items():
        if name in on_disk:
            assert torch.equal(tensor, on_disk[name]), name
    assert result.tokenizer == CharTokenizer.from_text(TEXT)


def _ctrl_c():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_in_a_step_finishes_it_and_saves_it(corpus, tmp_path, monkeypatch):
    """A Ctrl-C in the middle of a step (here its forward pass) lets the step finish, then the
    loop stops: the checkpoint holds that step, and resuming ends where an uninterrupted run
    ends, weight for weight."""
    import torch
    from helpers import weights

    from hw2cli.gpt import train as train_module

    train(tiny(corpus, tmp_path / "full"))
    real_step, calls = train_module.train_step, {"n": 0}

    def step(net, *args):
        calls["n"] += 1
        if calls["n"] == 5:  # the 5th step: a Ctrl-C arrives before its forward pass
            _ctrl_c()
        return real_step(net, *args)

    monkeypatch.setattr(train_module, "train_step", step)
    cut = train(tiny(corpus, tmp_path / "cut"))
    assert cut.interrupted and cut.steps == 5 and cut.checkpoint_step == 5 and calls["n"] == 5
    assert [r["step"] for r in cut.metrics] == [3, 5]
    monkeypatch.setattr(train_module, "train_step", real_step)
    train(TrainOptions(resume=str(tmp_path / "cut")))
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_in_an_evaluation_abandons_it_and_keeps_the_step(corpus, tmp_path, monkeypatch):
    from hw2cli.gpt import data as data_module

    real = data_module.gather_windows
    batches = {"eval": 0}

    def gather_windows(data, starts, block_size):
        if len(data) < 500:  # the validation split (the training split is longer)
            batches["eval"] += 1
            if batches["eval"] == 2:  # inside the first evaluation (2 batches each), at step 6
                _ctrl_c()
        return real(data, starts, block_size)

    monkeypatch.setattr(data_module, "gather_windows", gather_windows)
    cut = train(tiny(corpus, tmp_path / "run"))
    assert cut.interrupted and cut.steps == 6 and cut.checkpoint_step == 6
    assert batches["eval"] == 2  # the evaluation stopped there
    assert [(r["step"], r["val_loss"]) for r in cut.metrics] == [(3, None), (6, None)]
    assert saved.open_run(tmp_path / "run").state.step == 6


def test_ctrl_c_in_a_sample_abandons_it(corpus, tmp_path, monkeypatch):
    from hw2cli.gpt import model as model_module

    real = model_module._pick_next
    tokens = {"n": 0}

    def pick(*args):
        tokens["n"] += 1
        if tokens["n"] == 3:
            _ctrl_c()
        return real(*args)

    monkeypatch.setattr(model_module, "_pick_next", pick)
    cut = train(tiny(corpus, tmp_path / "run", sample_interval=3, sample_tokens=50))
    assert cut.interrupted and cut.steps == 3 and cut.sample is None
    assert tokens["n"] == 3  # 47 tokens of that sample were never computed
    assert saved.open_run(tmp_path / "run").state.step == 3
