"""Adversarial kinds of issue 27, items 1-3: links and special files planted where hw2 writes
or reads, and text in result files that would inject Markdown or HTML into report.md.

Every kind asserts: refused in one line naming the file (exit 2) or a correct result, the file
a planted link points to unchanged, and no hang (commands that could block run as subprocesses
with a time limit).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from helpers import REPO, TEXT, hw2, one_error_line, png, train_args
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common import io, rundir, schema
from hw2cli.common.errors import Hw2Error

runner = CliRunner()
PRECIOUS = "precious\n"
REPRODUCED = REPO / "docs" / "reproduce-quick"


def issue27(item: int, why: str):
    """The item of issue 27 a kind comes from, and what went wrong before it held."""
    return pytest.mark.issue27(item=item, before=why)


def plant(path: Path, how: str, victim: Path) -> None:
    """Put at ``path`` what an attacker (or an accident) leaves there."""
    if how == "link to a file":
        path.symlink_to(victim)
    elif how == "dangling link":
        path.symlink_to(victim.parent / "nothing-here")
    elif how == "FIFO":
        os.mkfifo(path)
    elif how == "link to a FIFO":
        os.mkfifo(victim.parent / "fifo")
        path.symlink_to(victim.parent / "fifo")


PLANTED = ["link to a file", "dangling link", "FIFO", "link to a FIFO"]


@pytest.fixture
def victim(tmp_path) -> Path:
    file = tmp_path / "victim.txt"
    file.write_text(PRECIOUS)
    return file


# ----------------------------------------------------------------------------- the library


@pytest.mark.kind("planted links and special files")
@issue27(1, "a link at DIR/.hw2.lock: the writer's PID went into the file it points to")
@pytest.mark.parametrize("how", PLANTED)
def test_the_lock_refuses_what_is_planted_at_its_name(tmp_path, victim, how):
    folder = tmp_path / "run"
    folder.mkdir()
    plant(folder / rundir.LOCK_NAME, how, victim)
    with pytest.raises(Hw2Error, match=r"\.hw2\.lock is a (symbolic link|pipe \(FIFO\))"):
        with rundir.lock(folder):
            pass
    assert victim.read_text() == PRECIOUS
    assert os.path.lexists(folder / rundir.LOCK_NAME)  # left for the user to see, not hidden


@pytest.mark.kind("planted links and special files")
@issue27(3, "a FIFO at DIR/.hw2-files.json: every command writing into DIR blocked forever")
@pytest.mark.parametrize("how", PLANTED)
def test_a_planted_marker_is_refused_before_any_write(tmp_path, victim, how):
    folder = tmp_path / "out"
    folder.mkdir()
    plant(folder / io.MARKER, how, victim)
    with pytest.raises(Hw2Error, match=r"\.hw2-files\.json is a (symbolic link|pipe \(FIFO\))"):
        rundir.prepare_folder(folder, what="output folder")
    with pytest.raises(Hw2Error, match="remove it"):
        io.write_json(folder / "result.json", {"x": 1})
    assert victim.read_text() == PRECIOUS
    assert not (folder / "result.json").exists()


@pytest.mark.kind("planted links and special files")
@issue27(1, "a file of a folder hw2 manages that is a link was replaced, the link hidden")
@pytest.mark.parametrize("how", PLANTED)
def test_a_managed_folders_file_is_never_written_through(tmp_path, victim, how):
    folder = tmp_path / "out"
    rundir.prepare_folder(folder, what="output folder")
    plant(folder / ".model.safetensors.next", how, victim)
    with pytest.raises(Hw2Error, match=r"model\.safetensors\.next is a"):
        io.atomic_write_text(folder / ".model.safetensors.next", "new")
    assert victim.read_text() == PRECIOUS


@pytest.mark.kind("planted links and special files")
@issue27(3, "a FIFO where hw2 reads back a file it wrote blocked the reader forever")
@pytest.mark.parametrize("how", ["FIFO", "link to a FIFO", "character device"])
def test_reading_back_refuses_what_is_not_a_regular_file(tmp_path, victim, how):
    path = tmp_path / "state.json"
    if how == "character device":
        path.symlink_to("/dev/zero")
    else:
        plant(path, how, victim)
    with pytest.raises(Hw2Error, match=r"state\.json is a (pipe \(FIFO\)|character device)"):
        schema.parse_json(path, fix="rerun")


@pytest.mark.kind("planted links and special files")
@issue27(3, "a FIFO as a GPT-2 folder's config.json blocked --init-from FOLDER forever")
@pytest.mark.parametrize("how", ["FIFO", "a JSON list"])
def test_a_model_folders_config_that_is_not_a_json_object_file_is_refused(tmp_path, victim, how):
    from hw2cli.gpt.pretrained import hf_config

    if how == "FIFO":
        os.mkfifo(tmp_path / "config.json")
    else:
        (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(Hw2Error, match=r"config\.json is (a pipe \(FIFO\)|not a JSON object)"):
        hf_config(tmp_path)


def test_a_user_named_output_through_a_link_replaces_the_link_not_its_target(tmp_path, victim):
    """Outside hw2's folders a link the user named is replaced by the new file (never written
    through), and devices the user names are still written into."""
    out = tmp_path / "result.json"
    out.symlink_to(victim)
    io.write_json(out, {"x": 1})
    assert victim.read_text() == PRECIOUS and not out.is_symlink()
    io.write_json("/dev/null", {"x": 1})


# ----------------------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def run(tmp_path_factory, two_step_run) -> Path:
    """A finished 2-step GPT run, beside a training text."""
    root = tmp_path_factory.mktemp("planted")
    (root / "corpus.txt").write_text(TEXT)
    shutil.copytree(two_step_run, root / "run")
    return root / "run"


def resume(folder: Path) -> list[str]:
    return ["gpt", "train", "--resume", str(folder), "--max-steps", "3", "--quiet"]


@pytest.mark.kind("planted links and special files")
@issue27(1, "gpt train --resume RUN with a link at RUN/.hw2.lock wrote a PID into its target")
@pytest.mark.parametrize(
    "name, how",
    [
        (rundir.LOCK_NAME, "link to a file"),
        (rundir.LOCK_NAME, "FIFO"),
        (io.MARKER, "link to a file"),
        (io.MARKER, "FIFO"),
        ("state.json", "FIFO"),  # a link to a regular file is read like the file: its content decides
        ("config.json", "FIFO"),
    ],
)
def test_resume_refuses_a_planted_file_before_training(run, tmp_path, victim, name, how):
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    (folder / name).unlink(missing_ok=True)
    plant(folder / name, how, victim)
    state = (run / "state.json").read_bytes()
    if how == "FIFO":  # in a subprocess: a regression would block
        done = hw2(*resume(folder), timeout=120)
        code, stderr = done.returncode, done.stderr
    else:
        result = runner.invoke(app, resume(folder))
        code, stderr = result.exit_code, result.stderr
    assert code == 2 and name in one_error_line(stderr)
    assert victim.read_text() == PRECIOUS
    if name != "state.json":
        assert (folder / "state.json").read_bytes() == state  # no step was trained and committed


@pytest.mark.kind("planted links and special files")
@issue27(1, "an empty --out folder holding only a link at .hw2.lock: its target truncated")
@pytest.mark.parametrize("command", ["gpt train", "reproduce"])
def test_a_new_run_refuses_a_lock_link_in_an_empty_folder(run, tmp_path, victim, command):
    folder = tmp_path / "out"
    folder.mkdir()
    plant(folder / rundir.LOCK_NAME, "link to a file", victim)
    if command == "gpt train":
        args = train_args(run.parent / "corpus.txt", folder)
    else:
        args = ["reproduce", "--profile", "quick", "--parts", "graph", "--out", str(folder), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and ".hw2.lock is a symbolic link" in one_error_line(result.stderr)
    assert victim.read_text() == PRECIOUS


@pytest.mark.kind("planted links and special files")
@issue27(3, "a FIFO at OUT/report.md blocked hw2 reproduce while it checked the report was its own")
@pytest.mark.parametrize("force", [False, True])
def test_reproduce_refuses_a_fifo_where_its_report_goes(tmp_path, force):
    folder = tmp_path / "out"
    folder.mkdir()
    os.mkfifo(folder / "report.md")
    args = ["reproduce", "--profile", "quick", "--parts", "graph", "--out", str(folder), "--quiet"]
    done = hw2(*args, *(["--force"] if force else []), timeout=120)
    assert done.returncode == 2 and "report.md" in one_error_line(done.stderr)


def image_folder(root: Path, per_class: int = 3) -> Path:
    for split in ("train", "test"):
        for c in ("c0", "c1"):
            folder = root / "images" / split / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                (folder / f"img{i}.png").write_bytes(png(8, 8))
    return root / "images"


ROTATE = ["rotate-eval", "--epochs", "1", "--mode", "plain", "--angles", "0", "--device", "cpu", "--quiet"]


@pytest.mark.kind("planted links and special files")
@issue27(1, "rotate-eval --save-models DIR with a link at DIR/.hw2.lock wrote through it")
def test_save_models_refuses_a_lock_link(tmp_path, victim):
    images = image_folder(tmp_path)
    models = tmp_path / "models"
    models.mkdir()
    plant(models / rundir.LOCK_NAME, "link to a file", victim)
    result = runner.invoke(app, [*ROTATE, "--dataset", f"imagefolder:{images}", "--save-models", str(models)])
    assert result.exit_code == 2 and ".hw2.lock is a symbolic link" in one_error_line(result.stderr)
    assert victim.read_text() == PRECIOUS


@pytest.mark.kind("planted links and special files")
@issue27(3, "a FIFO named stuck.png in an image folder blocked rotate-eval forever")
@pytest.mark.parametrize("how", ["FIFO", "link to a FIFO"])
def test_a_fifo_in_an_image_folder_is_refused(tmp_path, victim, how):
    images = image_folder(tmp_path)
    plant(images / "test" / "c1" / "stuck.png", how, victim)
    done = hw2(*ROTATE, "--dataset", f"imagefolder:{images}", timeout=120)
    assert done.returncode == 2 and "stuck.png is a pipe (FIFO)" in one_error_line(done.stderr)


@pytest.mark.kind("planted links and special files")
@issue27(3, "ln -s . train/c0/again made rotate-eval train on every image many times over")
@pytest.mark.parametrize("links", [["again"], ["a", "b"]], ids=["one-loop", "two-loops"])
def test_a_link_loop_in_an_image_folder_counts_each_image_once(tmp_path, links):
    images = image_folder(tmp_path, per_class=15)
    for name in links:  # two loops made torchvision's walk exponential
        (images / "train" / "c0" / name).symlink_to(".")
    (images / "train" / "c1" / "more").symlink_to(images / "test" / "c1")  # a real extra folder: counted
    result = runner.invoke(app, [*ROTATE, "--dataset", f"imagefolder:{images}", "--json", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_train"] == 15 + 15 + 15  # c0, c1 and the linked test/c1


# ----------------------------------------------------------------------------- report.md


@pytest.fixture
def reproduced(tmp_path) -> Path:
    folder = tmp_path / "repro"
    shutil.copytree(REPRODUCED, folder)
    return folder


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def table_rows(markdown: str) -> list[list[str]]:
    """Each table row's cells, split as GitHub splits them (an escaped pipe stays in its cell)."""
    return [re.split(r"(?<!\\)\|", line)[1:-1] for line in markdown.splitlines() if line.startswith("|")]


INJECTIONS = {
    "pipe": "a|b",
    "script": "<script>alert(1)</script>",
    "img": "<img src=x onerror=alert(1)>",
    "link": "[click](http://example.invalid)",
    "code": "`x|y`",
    "newline heading": "a\n# injected",
}


@pytest.mark.kind("report injection")
@issue27(2, "hw2 report copied labels, machine names and prompts into report.md unescaped")
@pytest.mark.parametrize("value", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_values_from_result_files_stay_inert_in_report_md(reproduced, value):
    nodes = json.loads((reproduced / "graph" / "report_graph1_powers.json").read_text())["nodes"]
    evil = [value, *nodes[1:]]
    for name in ("report_graph1_powers.json", "report_graph1_laplacian.json"):
        edit(reproduced / "graph" / name, lambda d: d.update(nodes=evil))
    edit(reproduced / "graph" / "part.json", lambda d: d.update(machine=value))

    def prompt(data: dict) -> None:
        data["prompt"] = value
        for sample in data["samples"]:
            sample["text"] = value + sample["completion"]

    for samples in sorted((reproduced / "gpt").glob("samples_*.json")):
        edit(samples, prompt)
    (reproduced / "gpt" / "corpus_source.txt").write_text(value)
    result = runner.invoke(app, ["report", str(reproduced)])
    assert result.exit_code in (0, 4), result.output  # 4: a conclusion disagrees; report.md is written
    # The samples are shown verbatim in fenced code blocks, where nothing is interpreted.
    markdown = re.sub(r"^(`{3,})text\n.*?^\1$", "", (reproduced / "report.md").read_text(), flags=re.M | re.S)
    assert "<script" not in markdown and "<img" not in markdown
    assert not re.search(r"^#+ injected", markdown, re.M)
    assert not re.search(r"(?<!\\)\]\(http://example.invalid\)", markdown)  # \] is shown, not a link
    for block in re.split(r"\n\n", markdown):
        rows = table_rows(block)
        assert len({len(r) for r in rows}) <= 1, block


@pytest.mark.kind("report injection")
@issue27(2, "a newline in part.json's finished or device time put a heading into report.md")
@pytest.mark.parametrize(
    "field, value", [("finished", "2026\n# x"), ("device", "cpu\n# x"), ("device", "a|b")]
)
def test_part_json_fields_that_cannot_be_legitimate_are_refused(reproduced, field, value):
    edit(reproduced / "table1" / "part.json", lambda d: d.update({field: value}))
    result = runner.invoke(app, ["report", str(reproduced)])
    assert result.exit_code == 2
    assert "part.json" in one_error_line(result.stderr) and field in result.stderr
