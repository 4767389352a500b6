"""Adversarial kinds of issue 22 that the command families fixed (GPT, probes, padding and
rotation, the reproduction and the report), each marked with its item number.

Every kind asserts what the issue's "Done when" says: refused in one line with exit 2 (or a
correct result), no traceback, and nothing the user had is written over.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TEXT, hw2, one_error_line, png, train_args
from typer.testing import CliRunner

from hw2cli.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
REPRODUCED = REPO / "docs" / "reproduce-quick"


def issue22(item: int, why: str):
    """The item of issue 22 a kind comes from, and what went wrong before it held."""
    return pytest.mark.issue22(item=item, before=why)


@pytest.fixture(scope="module")
def sources(tmp_path_factory, two_step_run, digits_models):
    """A finished 2-step GPT run, an image folder of 10 classes, and rotation models saved on digits."""
    root = tmp_path_factory.mktemp("families")
    shutil.copytree(two_step_run, root / "run")
    shutil.copytree(digits_models, root / "models")
    for split in ("train", "test"):
        for c in (f"c{k}" for k in range(10)):  # as many classes as digits: only the recorded name differs
            folder = root / "images" / split / c
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"img{i}.png").write_bytes(png(8, 8))
    return root


def copy(sources: Path, name: str, tmp_path: Path) -> Path:
    shutil.copytree(sources / name, tmp_path / name)
    return tmp_path / name


# ----------------------------------------------------------------------------- inputs overwritten


@pytest.mark.kind("inputs overwritten")
@pytest.mark.thorough
@issue22(1, "reproduce.sh --parts graph deletes an out/graph/ it did not write")
def test_reproduce_keeps_a_part_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "out" / "graph" / "notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HW2": f"{sys.executable} -m hw2cli"}
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "reproduce.sh"), "--out", str(tmp_path / "out"), "--parts", "graph"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert mine.read_text() == "mine"
    assert done.returncode == 2 and "--force" in done.stderr


@pytest.mark.kind("inputs overwritten")
@issue22(3, "gpt train --resume RUN --json <the run's training text> replaces the text")
def test_resume_refuses_to_write_over_the_runs_training_text(sources, tmp_path):
    corpus = tmp_path / "corpus.txt"  # a run of its own: the shared run's text must stay intact
    corpus.write_text(TEXT)
    run = tmp_path / "run"
    assert runner.invoke(app, train_args(corpus, run)).exit_code == 0
    result = runner.invoke(
        app, ["gpt", "train", "--resume", str(run), "--max-steps", "3", "--quiet", "--json", str(corpus)]
    )
    assert corpus.read_text() == TEXT
    assert result.exit_code == 2 and "corpus.txt" in one_error_line(result.stderr)


@pytest.mark.kind("inputs overwritten")
@pytest.mark.thorough
@issue22(4, "probe heads --txt-file c.txt --json c.txt replaces the text")
@pytest.mark.parametrize("probe, output", [("heads", "--json"), ("positions", "--plot")])
def test_a_probe_refuses_to_write_over_its_text(tmp_path, probe, output):
    text = tmp_path / "c.txt"
    text.write_text(TEXT)
    done = hw2("probe", probe, "--quick", "--quiet", "--txt-file", str(text), output, str(text))
    assert text.read_bytes() == TEXT.encode()
    assert done.returncode == 2 and "c.txt" in one_error_line(done.stderr)


@pytest.mark.kind("inputs overwritten")
@issue22(5, "rotate-eval --json inside the imagefolder data set replaces an image")
def test_rotate_eval_refuses_to_write_into_its_image_folder(sources, tmp_path):
    images = copy(sources, "images", tmp_path)
    image = images / "test" / "c0" / "img0.png"
    before = image.read_bytes()
    rotate = ["rotate-eval", "--dataset", f"imagefolder:{images}", "--epochs", "1", "--mode", "plain"]
    result = runner.invoke(
        app, [*rotate, "--angles", "0", "--device", "cpu", "--quiet", "--json", str(image)]
    )
    assert image.read_bytes() == before
    assert result.exit_code == 2 and "img0.png" in one_error_line(result.stderr)


# ----------------------------------------------------------------------------- files read back


def permute(group: dict) -> None:
    group["params"] = [group["params"][1], group["params"][0], *group["params"][2:]]


@pytest.mark.kind("GPT run read back")
@issue22(9, "permuted optimizer params in state.json: SIGSEGV; a wrong eps or betas: 'unexpected'")
@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(permute, id="params-permuted"),
        pytest.param(lambda g: g.update(eps="abc"), id="eps-a-string"),
        pytest.param(lambda g: g.update(betas=[0.9]), id="betas-one-value"),
    ],
)
def test_an_edited_optimizer_state_is_one_line(sources, tmp_path, edit):
    run = copy(sources, "run", tmp_path)
    state = json.loads((run / "state.json").read_text())
    edit(state["param_groups"][0])
    (run / "state.json").write_text(json.dumps(state))
    resume = ["gpt", "train", "--resume", str(run), "--max-steps", "3", "--device", "cpu", "--quiet"]
    if edit is permute:  # a SIGSEGV in the optimizer must not take pytest down with it
        done = hw2(*resume)
        code, stderr = done.returncode, done.stderr
    else:
        result = runner.invoke(app, resume)
        code, stderr = result.exit_code, result.stderr
    assert code == 2 and "state.json" in one_error_line(stderr), (code, stderr)


@pytest.mark.kind("models folder read back")
@issue22(10, "rotate-eval --load-models of digits models runs on an image folder")
def test_models_of_another_data_set_are_refused(sources, tmp_path):
    rotate = [
        "rotate-eval",
        "--dataset",
        f"imagefolder:{sources / 'images'}",
        "--mode",
        "plain",
        "--angles",
        "0",
    ]
    result = runner.invoke(
        app, [*rotate, "--device", "cpu", "--quiet", "--load-models", str(sources / "models")]
    )
    assert result.exit_code == 2 and "digits" in one_error_line(result.stderr)


@pytest.mark.kind("report folders read back")
@issue22(12, "hw2 report prints a hand-edited accuracy of 1e400 or -5000")
@pytest.mark.parametrize("value", ["1e400", "-5000"])
def test_a_report_refuses_accuracies_no_run_gives(tmp_path, value):
    folder = tmp_path / "r"
    shutil.copytree(REPRODUCED, folder)
    result_json = folder / "table1" / "result.json"
    data = json.loads(result_json.read_text())
    data["conv_types"]["valid"]["rounds"][0]["test_acc"] = 0.123456789
    result_json.write_text(json.dumps(data).replace("0.123456789", value))
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 2 and "result.json" in one_error_line(result.stderr)


@pytest.mark.kind("input files")
@issue22(18, "an image whose header claims 20000x20000 pixels: DecompressionBombError")
def test_an_image_claiming_a_huge_size_is_one_line(sources, tmp_path):
    images = copy(sources, "images", tmp_path)
    (images / "train" / "c1" / "bomb.png").write_bytes(png(20000, 20000, pixels=b""))
    rotate = ["rotate-eval", "--dataset", f"imagefolder:{images}", "--epochs", "1", "--mode", "plain"]
    result = runner.invoke(app, [*rotate, "--angles", "0", "--device", "cpu", "--quiet"])
    assert result.exit_code == 2 and "bomb.png" in one_error_line(result.stderr)


# ----------------------------------------------------------------------------- numbers and sizes


@pytest.mark.kind("numbers")
@pytest.mark.thorough
@issue22(13, "probe softmax-scale --quick --dk 16: TypeError after all measurements")
def test_softmax_scale_with_one_dk_works(tmp_path):
    text = tmp_path / "c.txt"
    text.write_text(TEXT * 20)
    done = hw2(
        "probe", "softmax-scale", "--quick", "--dk", "16", "--steps", "20", "--txt-file", str(text), "--quiet"
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.kind("numbers")
@pytest.mark.thorough
@issue22(19, "probe receptive-field --length 100000000: allocation failure")
def test_a_length_that_cannot_fit_in_memory_is_refused_up_front():
    done = hw2("probe", "receptive-field", "--length", "100000000", limit_memory=True)
    assert done.returncode == 2 and "--length" in one_error_line(done.stderr)


@pytest.mark.kind("numbers")
@pytest.mark.thorough
@issue22(21, "probe positions --quick --steps 1e20 runs on (the probe options have no ranges)")
def test_an_absurd_step_count_is_refused_up_front(tmp_path):
    text = tmp_path / "c.txt"
    text.write_text(TEXT * 20)
    steps = ["--steps", "100000000000000000000"]
    try:
        done = hw2("probe", "positions", "--quick", *steps, "--txt-file", str(text), "--quiet", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("still running after 60 s")
    assert done.returncode == 2 and "--steps" in one_error_line(done.stderr)
