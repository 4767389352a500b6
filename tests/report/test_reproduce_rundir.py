"""`hw2 reproduce`'s folders: only what hw2 wrote is replaced (else --force), a redo keeps the
finished part until it is finished itself, a cut run is finished by the next, one writer per
folder, and Ctrl-C during the GPT part continues from its checkpoint on the same command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.reproduce import parts, run

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def reproduce(out: Path, *args: str, parts: str = "graph"):
    return runner.invoke(app, ["reproduce", "--out", str(out), "--parts", parts, "--device", "cpu", *args])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A folder holding a finished graph part of the quick profile: the committed quick run's
    (test_reproduce.py runs the whole quick profile once; a test that changes it works on a copy)."""
    out = tmp_path_factory.mktemp("reproduce")
    shutil.copytree(REPO / "docs" / "reproduce-quick" / "graph", out / "graph")
    assert reproduce(out).stderr.count("graph: finished before, skipped") == 1  # hw2 takes it as its own
    return out


def test_a_part_folder_hw2_did_not_write_is_refused_then_replaced_with_force(tmp_path):
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "notes.txt").write_text("my own notes")
    result = reproduce(tmp_path)
    assert result.exit_code == 2
    assert f"{tmp_path / 'graph'} was not written by hw2 reproduce" in one_line(result)
    assert snapshot(tmp_path) == {"graph/notes.txt": b"my own notes"}  # nothing else written
    result = reproduce(tmp_path, "--force")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "graph" / "part.json").is_file() and not (tmp_path / "graph" / "notes.txt").exists()


def test_a_report_md_hw2_did_not_write_is_kept(tmp_path):
    (tmp_path / "report.md").write_text("# my report\n")
    result = reproduce(tmp_path)
    assert result.exit_code == 2 and "report.md was not written by hw2" in one_line(result)
    assert snapshot(tmp_path) == {"report.md": b"# my report\n"}
    assert reproduce(tmp_path, "--force").exit_code == 0
    assert (tmp_path / "report.md").read_text().startswith("# hw2 — reproduction report")


def test_a_failing_redo_leaves_the_finished_part_as_it_was(done, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(done, out)
    before = snapshot(out)
    broken = tmp_path / "examples"
    shutil.copytree(parts.examples_dir(), broken)
    (broken / "report_graph1.txt").write_text("1 x y z\n")  # graph powers refuses it: exit 2
    monkeypatch.setattr(parts, "examples_dir", lambda: broken)
    result = reproduce(out, "--force")
    assert result.exit_code == 2
    assert "error: part 'graph' failed with exit code 2 at `graph powers report_graph1`" in result.stderr
    staged = out / ".graph.next"
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(".graph.next")} == before
    assert (staged / "log.txt").is_file() and json.loads((staged / "part.json").read_text())[
        "status"
    ] == "running"


def test_a_run_cut_while_putting_a_finished_part_in_place_is_finished_by_the_next(done, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(done, out)
    before = snapshot(out / "graph")
    (out / "graph").rename(out / ".graph.next")  # cut after the old folder went, before the rename
    result = reproduce(out)
    assert result.exit_code == 0, result.output
    assert "graph: finished before, skipped" in result.stderr
    assert snapshot(out / "graph") == before and not (out / ".graph.next").exists()


def test_an_unfinished_part_of_another_profile_is_kept_unless_forced(tmp_path):
    staged = tmp_path / ".graph.next"
    staged.mkdir()
    meta = {"part": "graph", "title": "t", "profile": "full", "device": "cpu", "seconds": 1.0, "finished": ""}
    meta.update(machine="m", cpus=2, hw2="hw2", status="running", steps_done=["graph powers report_graph1"])
    (staged / "part.json").write_text(json.dumps(meta))
    result = reproduce(tmp_path)
    assert result.exit_code == 2
    assert "holds an unfinished graph part of the full profile; continue it with --profile full" in one_line(
        result
    )
    assert reproduce(tmp_path, "--force").exit_code == 0
    assert json.loads((tmp_path / "graph" / "part.json").read_text())["profile"] == "quick"


def test_a_second_reproduction_into_the_same_folder_is_refused(tmp_path):
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
        result = reproduce(tmp_path)
        assert result.exit_code == 2
        assert f"is in use by process {holder.pid}" in one_line(result)
        assert not (tmp_path / "graph").exists() and not (tmp_path / ".graph.next").exists()
    finally:
        holder.kill()
        holder.wait()


def _ctrl_c_when(path: Path, timeout: float = 600) -> threading.Thread:
    """Send this process SIGINT (as a terminal's Ctrl-C would) as soon as ``path`` exists."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if path.exists():
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


#: A GPT of seconds instead of the quick profile's minute: what is under test is the stop and the
#: continuation, not the model (test_reproduce.py checks the GPT's conclusions at the quick size).
TINY_GPT = tuple(
    "--model-type gpt-nano --block-size 16 --batch-size 4 --max-steps 400 --lr 3e-3 --dropout 0 "
    "--eval-interval 20 --eval-steps 2".split()
)


def test_ctrl_c_in_the_gpt_part_after_a_checkpoint_then_the_same_command_continues_from_it(
    done, tmp_path, monkeypatch
):
    from hw2cli.report import conclusions

    monkeypatch.setitem(parts.PROFILES, "quick", replace(parts.PROFILES["quick"], gpt=TINY_GPT))
    tiny = tuple(c for c in conclusions.CONCLUSIONS if c.part != "gpt")  # a tiny GPT writes noise
    monkeypatch.setattr(conclusions, "CONCLUSIONS", tiny)
    out = tmp_path / "out"
    shutil.copytree(done, out)  # a finished part, which the interruption must keep
    graph = snapshot(out / "graph")
    run_dir = out / ".gpt.next" / "run"
    watcher = _ctrl_c_when(run_dir / "state.json")
    result = reproduce(out, parts="gpt,graph")
    watcher.join()
    assert result.exit_code == 130, result.output
    assert "interrupted at gpt train" in result.stdout and "run the same command again" in result.stdout
    state = json.loads((run_dir / "state.json").read_text())
    gpt = parts.PROFILES["quick"].gpt
    interval, total = (int(gpt[gpt.index(flag) + 1]) for flag in ("--eval-interval", "--max-steps"))
    assert interval <= state["step"] < total  # the first checkpoint, or the one written on Ctrl-C
    assert not (out / "gpt").exists() and snapshot(out / "graph") == graph
    meta = json.loads((out / ".gpt.next" / "part.json").read_text())
    assert meta["status"] == "running" and meta["steps_done"] == ["corpus"]

    result = reproduce(out, parts="gpt,graph")
    assert result.exit_code == 0, result.output
    assert "continues (1 of 5 steps done before)" in result.stderr
    train = json.loads((out / "gpt" / "train.json").read_text())
    assert train["start_step"] == state["step"] and train["steps"] == train["total_steps"] == total
    assert "$ hw2 gpt train --resume run " in (out / "gpt" / "log.txt").read_text()
    assert snapshot(out / "graph") == graph
    assert "| Figure 3 and samples — character-level micro-GPT |" in (out / "report.md").read_text()


def test_the_estimate_shares_the_record_over_the_slots_scaled_by_the_parts_finished_here_or_the_load(
    done, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    shutil.copytree(done, out)
    meta = json.loads((out / "graph" / "part.json").read_text())
    recorded = parts.RECORDED_S[("quick", "cpu")]
    meta["seconds"] = 2 * recorded["graph"]
    (out / "graph" / "part.json").write_text(json.dumps(meta))
    monkeypatch.setattr("hw2cli.common.threads.cpu_cores", lambda: 2)
    plans = [run._Plan(p, "run" if p.name in ("table1", "gpt") else "skipped") for p in parts.PARTS]
    found = run.estimate(out, "quick", "cpu", plans)
    assert run.slots("quick") == 2 and run.slots("full") == 1
    assert found.seconds == pytest.approx(2 * recorded["table1"])  # the GPT runs beside Table 1
    assert "times 2.00 as the parts finished here took" in found.basis
    plans = [run._Plan(p, "run") for p in parts.PARTS]
    monkeypatch.setattr("hw2cli.common.threads.measure_busy_cores", lambda *a: 1.0)
    found = run.estimate(tmp_path, "quick", "cpu", plans)  # nothing finished: the load
    slots = [0.0, 0.0]
    for seconds in sorted(recorded.values(), reverse=True):  # the longest first, each on the freer slot
        slots[slots.index(min(slots))] += seconds
    assert found.seconds == pytest.approx(1.5 * max(slots))  # 2 steps beside 1 busy core: 1.5 times
    monkeypatch.setattr("hw2cli.common.threads.measure_busy_cores", lambda *a: 5.0)
    found = run.estimate(tmp_path, "full", "cpu", plans)  # one step at a time
    assert found.seconds == pytest.approx(3.0 * sum(parts.RECORDED_S[("full", "cpu")].values()))
    assert "times 3.0" in found.basis and "no record for rotation, probes, not counted" in found.basis


def test_the_next_command_is_the_alone_one_first_then_the_next_of_a_part_with_none_running():
    """What starts next: a command that times itself first and with nothing beside it, then a
    part's commands one after another, the parts in their order."""

    def active(name: str, steps: list[parts.Step]) -> run._Active:
        part = parts.Part(name, name, lambda *a: steps)
        return run._Active(part, Path(name), {}, steps, list(steps), run.PartRun(name, name, "", name))

    a1, a2, b1 = parts.Step("a1", ("x",)), parts.Step("a2", ("x",)), parts.Step("b1", ("x",))
    timer = parts.Step("t", ("x",), alone=True)
    a, b = active("a", [a1, a2]), active("b", [timer, b1])
    assert run._pick([a, b], {}) == (b, timer)  # alone first, whatever the parts' order
    assert run._pick([a, b], {"proc": (b, timer, 0)}) is None  # nothing beside it
    assert run._pick([a, b], {"proc": (a, a1, 0)}) is None  # it waits for the running ones
    b.waiting.remove(timer)
    assert run._pick([a, b], {}) == (a, a1)
    a.waiting.remove(a1)
    a.running = True
    assert run._pick([a, b], {"proc": (a, a1, 0)}) == (b, b1)  # a2 waits for a1
    b.waiting.remove(b1)
    assert run._pick([a, b], {"proc": (a, a1, 0)}) is None


def test_docs_list_every_part_and_the_command():
    doc = (REPO / "docs" / "report.md").read_text()
    assert "hw2 reproduce" in doc
    for name in parts.PART_NAMES:
        assert f"`{name}`" in doc, name


class Recorder:
    """A Reporter that keeps every call, to see what a terminal would show."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, key, description, total=None, **fields):
        self.calls.append(("start", key, total))

    def update(self, key, advance=0, **fields):
        self.calls.append(("update", key, advance, fields.get("description")))

    def finish(self, key):
        self.calls.append(("finish", key))

    def log(self, message):
        self.calls.append(("log", message))

    def note(self, message):
        self.calls.append(("note", message))


def test_the_library_call_reports_a_bar_over_the_parts_and_a_note_per_part(done, tmp_path):
    from hw2cli.report import render
    from hw2cli.report.build import build_report
    from hw2cli.reproduce.options import ReproduceOptions

    out = tmp_path / "out"
    shutil.copytree(done, out)
    shutil.rmtree(out / "graph")
    reporter = Recorder()
    result = run.run_reproduce(
        ReproduceOptions(out=str(out), parts="graph", device="cpu"), reporter, build_report
    )
    assert [p.status for p in result.parts] == ["not selected"] * 4 + ["finished", "not selected"]
    assert ("start", "parts", 1) in reporter.calls and reporter.calls[-1] == ("finish", "parts")
    steps = [c[3] for c in reporter.calls if c[0] == "update" and c[3]]
    assert steps == [f"graph: {s.name}" for s in parts.PARTS[4].steps(parts.PROFILES["quick"], "cpu", out)]
    assert sum(c[2] for c in reporter.calls if c[0] == "update") == 1  # one step of the bar per part
    notes = [c[1] for c in reporter.calls if c[0] == "note"]
    assert notes[0].startswith("reproduce: profile quick, device cpu") and notes[2].startswith("== graph: ")
    assert notes[1].startswith("this is the quick profile: ") and "It leaves out CIFAR-10" in notes[1]
    assert result.report == str(out / "report.md")
    assert render.from_json(json.loads(json.dumps(render.to_json(result)))) == result


def test_a_damaged_unfinished_part_is_named_and_started_again_only_with_force(tmp_path):
    (tmp_path / ".graph.next").mkdir()
    (tmp_path / ".graph.next" / "part.json").write_text('{"part": "graph", "seconds": "long"')
    result = reproduce(tmp_path)
    assert result.exit_code == 2
    line = one_line(result)
    assert (
        str(tmp_path / ".graph.next" / "part.json") in line
        and "add --force to start the graph part again" in line
    )
    assert reproduce(tmp_path, "--force").exit_code == 0
    assert (tmp_path / "graph" / "part.json").is_file() and not (tmp_path / ".graph.next").exists()


def test_help_of_reproduce_and_report_does_not_import_torch():
    code = (
        "import sys\nfrom hw2cli.cli import app\n"
        "for argv in (['reproduce', '--help'], ['report', '--help']):\n"
        "    try:\n        app(argv, prog_name='hw2')\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout.strip().splitlines()[-1] == "False", proc.stderr
