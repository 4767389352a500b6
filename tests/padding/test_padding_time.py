"""`hw2 padding-bench` says up front how long a long run will take, and Ctrl-C stops it (the
worker processes too) keeping the rounds that finished."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common.progress import Reporter
from hw2cli.padding import bench
from hw2cli.padding.data import SIZES
from hw2cli.padding.model import PaddingNetConfig
from hw2cli.padding.options import PaddingOptions
from hw2cli.padding.train import TrainSettings, train_flops

runner = CliRunner()
TINY = {"train": 40, "val": 20, "test": 20}


def test_rounds_go_to_the_first_free_worker():
    # worker 1: 3, then 2 (5), then 2 (7); worker 2: 3, then 2 (5): done at 7
    assert bench.wall_seconds([3, 3, 2, 2, 2], 2) == 7
    assert bench.wall_seconds([3, 3, 2, 2, 2], 1) == 12
    assert bench.wall_seconds([4, 1, 1, 1, 1], 2) == 4  # the short rounds fill the other worker
    assert bench.wall_seconds([1.5], 8) == 1.5


def test_the_estimate_scales_the_timed_rate_by_each_rounds_flops(monkeypatch):
    """With a rate that makes each round of the default data take 75 s, 3 rounds on 2 workers
    take 150 s: announced as 2.5 minutes, before any round trains."""
    cfg = PaddingNetConfig("net1", "valid")
    per_round = train_flops(cfg, 2, SIZES["train"], SIZES["val"], SIZES["test"])
    monkeypatch.setattr(bench, "seconds_per_flop", lambda *args: {"valid": 75 / per_round})
    monkeypatch.setattr("hw2cli.common.threads.measure_busy_cores", lambda: 0.0)  # a quiet machine
    notes = []

    class StopAtTheNote(Reporter):
        def note(self, message: str) -> None:
            notes.append(message)
            raise KeyboardInterrupt  # no need to train: the estimate is what is tested

    opts = PaddingOptions(conv_types="valid", rounds=3, epochs=2, device="cpu", workers=2)
    result = bench.run_padding_bench(opts, StopAtTheNote())
    assert result.interrupted and result.rounds_done == 0
    assert notes == [
        "estimated wall time of padding-bench (3 networks of at most 2 epochs each): about 2.5 min "
        "(one timed training step per conv type, scaled by the FLOPs of every round; early stopping "
        "often ends a round sooner)"
    ]


@pytest.mark.parametrize(("cores", "busy", "factor"), [(2, 1.0, 1.5), (4, 1.0, 1.0), (2, 0.0, 1.0)])
def test_the_estimate_counts_the_cores_other_work_takes(monkeypatch, cores, busy, factor):
    """The step is timed alone; 2 workers beside one core of other work on 2 cores get 2/3 of
    a core each (measured: 104 s estimated, 121 s taken beside a CPU hog, before this factor)."""
    cfg = PaddingNetConfig("net1", "valid")
    per_round = train_flops(cfg, 2, SIZES["train"], SIZES["val"], SIZES["test"])
    monkeypatch.setattr(bench, "seconds_per_flop", lambda *args: {"valid": 100 / per_round})
    monkeypatch.setattr("hw2cli.common.threads.measure_busy_cores", lambda: busy)
    monkeypatch.setattr("hw2cli.common.threads.cpu_cores", lambda: cores)
    monkeypatch.setattr(bench, "cpu_cores", lambda: cores)
    notes = []

    class StopAtTheNote(Reporter):
        def note(self, message: str) -> None:
            notes.append(message)
            raise KeyboardInterrupt

    opts = PaddingOptions(conv_types="valid", rounds=4, epochs=2, device="cpu", workers=2)
    bench.run_padding_bench(opts, StopAtTheNote())  # 4 rounds of 100 s on 2 workers: 200 s alone
    assert f"about {200 * factor / 60:.1f} min" in notes[0]
    assert (
        f"times {factor:.1f}: 2 workers share {cores} cores with {busy:.1f} cores of other work" in notes[0]
    ) == (factor > 1)


def test_the_timed_rate_is_per_flop_of_each_conv_type():
    settings = TrainSettings(batch_size=20, channels_last=True)
    cfgs = [PaddingNetConfig("net1", "valid"), PaddingNetConfig("net1", "fconv")]
    rates = bench.seconds_per_flop(cfgs, "sequential", settings, bench.resolve_device("cpu"), 1)
    assert set(rates) == {"valid", "fconv"} and all(0 < r < 1e-6 for r in rates.values())


@pytest.mark.parametrize("quiet", [False, True])
def test_a_long_run_is_announced_on_the_command_line(monkeypatch, quiet):
    monkeypatch.setattr(
        bench, "seconds_per_flop", lambda configs, *args: {c.conv_type: 1e-6 for c in configs}
    )
    args = ["padding-bench", "--conv-types", "valid", "--rounds", "1", "--epochs", "1", "--device", "cpu"]
    result = runner.invoke(app, [*args, *(["--quiet"] if quiet else [])])
    assert result.exit_code == 0, result.output
    # 1e-6 s per FLOP: hours for one round of the default data, so a warning and what to change
    line = "warning: estimated wall time of padding-bench (1 networks of at most 1 epochs each): about "
    if quiet:
        assert "estimated" not in result.stderr
    else:
        assert line in result.stderr and "lower --rounds or --epochs" in result.stderr
    assert "Table 1" in result.stdout  # and then the run itself


def test_ctrl_c_stops_the_worker_processes_and_keeps_finished_rounds():
    """A real SIGINT in the parent after two rounds finished: they are kept, no worker survives."""

    class InterruptAfterTwo(Reporter):
        finished = 0

        def log(self, message: str) -> None:  # the parent logs each finished round
            self.finished += 1
            if self.finished == 2:
                os.kill(os.getpid(), signal.SIGINT)

    opts = PaddingOptions(conv_types="valid", rounds=8, epochs=3, device="cpu", workers=2)
    result = bench.run_padding_bench(
        opts,
        InterruptAfterTwo(),
        path="cpu-processes",
        data_sizes=TINY,
        settings=TrainSettings(batch_size=20),
    )
    assert result.interrupted and result.path == "cpu-processes"
    kept = [o.round for o in result.outcomes["valid"]]
    assert 2 <= len(kept) < 8 and kept == sorted(kept)
    assert multiprocessing.active_children() == []


def _workers(pid: int) -> list[int]:
    """The pool's worker processes among the children of ``pid`` (not multiprocessing's
    resource tracker, which leaves on its own once its parent is gone)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    return [p for p in children if b"spawn_main" in _read(f"/proc/{p}/cmdline")]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_in_a_terminal_exits_130_with_the_json_and_no_traceback(tmp_path):
    """SIGINT to the whole process group, as a terminal sends it, while the workers start."""
    out = tmp_path / "t.json"
    args = ["padding-bench", "--conv-types", "valid", "--rounds", "4", "--workers", "2", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hw2cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, like a job in a terminal
    )
    try:
        for _ in range(1200):  # the workers start (they then import torch for seconds)
            if proc.poll() is not None or _workers(proc.pid):
                break
            time.sleep(0.05)
        workers = _workers(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (130, -signal.SIGINT), stderr  # a shell reports both as 130
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and data["settings"]["rounds"] == 4
    assert "(interrupted: " in stdout
    assert workers and not [p for p in workers if b"spawn_main" in _read(f"/proc/{p}/cmdline")]
