"""Every file hw2 reads back, damaged or edited, one kind per row: a GPT run directory
(`gpt generate`, `gpt train --resume`), a `rotate-eval --load-models` folder and the part
folders of `hw2 report`. Each row must end with exit 2, exactly one line on stderr that names
the file, no traceback, and every file that existed before byte-identical afterwards."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import TEXT
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common import rundir
from hw2cli.gpt.train import TrainOptions, train

REPRODUCED = Path(__file__).resolve().parents[2] / "docs" / "reproduce-quick"
runner = CliRunner()


@pytest.fixture(scope="module")
def sources(tmp_path_factory, digits_models):
    """A finished GPT run (checkpoints at steps 3 and 6), a models folder, a report folder."""
    root = tmp_path_factory.mktemp("readback")
    corpus = root / "tiny.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    train(
        TrainOptions(
            txt_file=str(corpus),
            model_type="gpt-nano",
            block_size=16,
            batch_size=4,
            max_steps=6,
            eval_interval=3,
            eval_steps=1,
            log_interval=3,
            sample_interval=0,
            device="cpu",
            out=str(root / "gpt"),
        )
    )
    return {"gpt": root / "gpt", "models": digits_models, "report": REPRODUCED}  # each test damages a copy


# ----------------------------------------------------------------------------- editing helpers


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def rehash(folder: Path, name: str, manifest: str) -> None:
    """Record ``name``'s new size and hash in the manifest: the damage then has to be caught
    by the file's schema, not by the manifest."""
    edit_json(folder / manifest, lambda d: d["files"].__setitem__(name, rundir.file_entry(folder / name)))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def setter(file: str, change: Callable[[dict], None]) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        edit_json(folder / file, change)
        return file

    return damage


def at(keys: str, value) -> Callable[[dict], None]:
    """Set the nested key ``a.b.c`` to ``value``."""

    def change(d: dict) -> None:
        *parents, last = keys.split(".")
        for key in parents:
            d = d[key]
        d[last] = value

    return change


def drop(keys: str) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        *parents, last = keys.split(".")
        for key in parents:
            d = d[key]
        del d[last]

    return change


def write(file: str, content: bytes) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        (folder / file).write_bytes(content)
        return file

    return damage


def remove(file: str) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        (folder / file).unlink()
        return file

    return damage


def cut(file: str, manifest: str | None = None) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        truncate(folder / file)
        if manifest:
            rehash(folder, file, manifest)
        return file

    return damage


def then_rehash(damage: Callable[[Path], str], manifest: str) -> Callable[[Path], str]:
    def both(folder: Path) -> str:
        file = damage(folder)
        rehash(folder, file, manifest)
        return file

    return both


def tensors(file: str, manifest: str, change: Callable[[dict], dict]) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        save_file(change(load_file(str(folder / file))), str(folder / file))
        rehash(folder, file, manifest)
        return file

    return damage


def in_part(part: str, damage: Callable[[Path], str]) -> Callable[[Path], str]:
    def inner(folder: Path) -> str:
        return f"{part}/{damage(folder / part)}"

    return inner


def legacy_truncated(folder: Path) -> str:
    """A run directory from before manifests (no state.json) with cut weights."""
    (folder / "state.json").unlink()
    truncate(folder / "model.safetensors")
    return "model.safetensors"


def shrink_tensor(t: dict) -> dict:
    return {k: (v[:-1].clone() if v.dim() and v.shape[0] > 1 else v) for k, v in t.items()}


def csv_line(text: str) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        lines = (folder / "metrics.csv").read_text().splitlines()
        (folder / "metrics.csv").write_text("\n".join([lines[0], text, *lines[2:]]) + "\n")
        rehash(folder, "metrics.csv", "state.json")
        return "metrics.csv"

    return damage


G = "generate"  # gpt generate RUN
R = "resume"  # gpt train --resume RUN
L = "load"  # rotate-eval --load-models DIR
P = "report"  # hw2 report DIR
CASES: list[tuple[str, str, Callable[[Path], str]]] = [
    # config.json of a GPT run
    ("config missing", G, remove("config.json")),
    ("config not json", G, write("config.json", b'{"format": "hw2-gpt-run",')),
    ("config NaN", G, write("config.json", b'{"format": "hw2-gpt-run", "version": NaN}')),
    ("config a list", G, write("config.json", b"[1, 2]")),
    ("config not utf-8", G, write("config.json", b'{"format": "\xff\xfe"}')),
    ("config unknown key", G, setter("config.json", at("extra", 1))),
    ("config no model", G, setter("config.json", drop("model"))),
    ("config wrong format", G, setter("config.json", at("format", "hw2-other"))),
    ("config version 2", G, setter("config.json", at("version", 2))),
    ("n_embd a string", G, setter("config.json", at("model.n_embd", "48"))),
    ("n_embd zero", G, setter("config.json", at("model.n_embd", 0))),
    ("n_layer huge", G, setter("config.json", at("model.n_layer", 10**9))),
    ("n_embd not divisible", G, setter("config.json", at("model.n_embd", 49))),
    ("dropout a bool", G, setter("config.json", at("model.attn_pdrop", True))),
    ("model unknown key", G, setter("config.json", at("model.n_experts", 8))),
    ("train lr a string", G, setter("config.json", at("train.lr", "fast"))),
    ("train unknown key", G, setter("config.json", at("train.momentum", 0.9))),
    ("train lr negative", R, setter("config.json", at("train.lr", -1.0))),
    ("one layer more than the weights", G, setter("config.json", at("model.n_layer", 4))),
    ("vocab_size disagrees", G, setter("config.json", at("model.vocab_size", 5))),
    # vocab.json
    ("vocab missing", G, remove("vocab.json")),
    ("vocab two-char token", G, setter("vocab.json", lambda d: d["chars"].__setitem__(0, "ab"))),
    ("vocab duplicate", G, setter("vocab.json", lambda d: d["chars"].__setitem__(1, d["chars"][0]))),
    ("vocab empty", G, setter("vocab.json", at("chars", []))),
    ("vocab a dict", G, setter("vocab.json", at("chars", {"a": 0}))),
    # model.safetensors and the manifest
    ("weights truncated", G, cut("model.safetensors")),
    ("weights truncated, manifest updated", G, cut("model.safetensors", "state.json")),
    ("weights deleted", G, remove("model.safetensors")),
    ("weights of another shape", G, tensors("model.safetensors", "state.json", shrink_tensor)),
    (
        "weights renamed",
        G,
        tensors("model.safetensors", "state.json", lambda t: {f"x.{k}": v for k, v in t.items()}),
    ),
    ("weights legacy, truncated", G, legacy_truncated),
    ("state not json", G, write("state.json", b"{")),
    ("state step a string", G, setter("state.json", at("step", "six"))),
    ("state unknown key", G, setter("state.json", at("momentum", 1))),
    (
        "state sha not hex",
        G,
        setter("state.json", lambda d: d["files"]["model.safetensors"].update(sha256="xyz")),
    ),
    (
        "state names a path",
        G,
        setter("state.json", at("files", {"../../x": {"size": 1, "sha256": "0" * 64}})),
    ),
    ("state negative size", G, setter("state.json", lambda d: d["files"]["metrics.csv"].update(size=-1))),
    ("state NaN loss", R, write("state.json", b'{"step": 6, "best_val_loss": NaN}')),
    (
        "state param group without params",
        R,
        setter("state.json", lambda d: d["param_groups"][0].pop("params")),
    ),
    ("state one param group", R, setter("state.json", lambda d: d["param_groups"].pop())),
    # optimizer.safetensors and metrics.csv (resume reads them)
    ("optimizer garbage", R, then_rehash(write("optimizer.safetensors", b"\x80\x04pk"), "state.json")),
    ("optimizer wrong shapes", R, tensors("optimizer.safetensors", "state.json", shrink_tensor)),
    ("optimizer truncated", R, cut("optimizer.safetensors")),
    ("metrics truncated", R, cut("metrics.csv")),
    ("metrics header", R, then_rehash(write("metrics.csv", b"step,loss\n3,1.0\n"), "state.json")),
    ("metrics a word for a loss", R, csv_line("3,abc,,0.0005,100.0")),
    ("metrics nan loss", R, csv_line("3,nan,,0.0005,100.0")),
    ("metrics short row", R, csv_line("3,2.5")),
    ("metrics step zero", R, csv_line("0,2.5,,0.0005,100.0")),
    # --load-models folders
    ("models config missing", L, remove("config.json")),
    ("models config not json", L, write("config.json", b"not json")),
    ("models odd image size", L, setter("config.json", at("model.image_size", 7))),
    ("models two channel sizes", L, setter("config.json", at("model.channels", [32, 64]))),
    ("models negative hidden", L, setter("config.json", at("model.hidden", -1))),
    ("models huge hidden", L, setter("config.json", at("model.hidden", 10**9))),
    ("models file escapes", L, setter("config.json", at("models.plain.file", "../../etc/passwd"))),
    ("models unknown model", L, setter("config.json", at("models.rotated", {"file": "plain.safetensors"}))),
    ("models unknown key", L, setter("config.json", at("optimizer", "adam"))),
    ("models classes disagree", L, setter("config.json", at("classes", ["a", "b"]))),
    (
        "models other classes",
        L,
        setter(
            "config.json", lambda d: d.update(classes=["a", "b", "c"], model={**d["model"], "n_classes": 3})
        ),
    ),
    ("models loss a string", L, setter("config.json", at("models.plain.train_loss", ["low"]))),
    ("models wrong format", L, setter("config.json", at("format", "something else"))),
    ("models weights truncated", L, cut("plain.safetensors")),
    (
        "models weights not safetensors",
        L,
        then_rehash(write("plain.safetensors", b"\x80\x04"), "config.json"),
    ),
    ("models weights of another shape", L, tensors("plain.safetensors", "config.json", shrink_tensor)),
    (
        "models weights extra tensor",
        L,
        tensors("plain.safetensors", "config.json", lambda t: {**t, "extra": torch.zeros(2)}),
    ),
    # hw2 report on part folders
    ("part.json not json", P, in_part("rotation", write("part.json", b'{"part": '))),
    ("part.json without seconds", P, in_part("table1", setter("part.json", drop("seconds")))),
    ("part.json seconds a word", P, in_part("gpt", setter("part.json", at("seconds", "fast")))),
    ("rotation result missing", P, in_part("rotation", remove("result.json"))),
    (
        "rotation accuracies per angle",
        P,
        in_part("rotation", setter("result.json", lambda d: d["models"]["plain"]["accuracy"].pop())),
    ),
    (
        "rotation accuracy 1.5",
        P,
        in_part(
            "rotation", setter("result.json", lambda d: d["models"]["plain"]["accuracy"].__setitem__(0, 1.5))
        ),
    ),
    ("padding net3", P, in_part("table1", setter("result.json", at("settings.net", "net3")))),
    (
        "padding unknown conv type",
        P,
        in_part(
            "table1",
            setter("result.json", lambda d: d["conv_types"].__setitem__("weird", d["conv_types"]["valid"])),
        ),
    ),
    ("padding result cut", P, in_part("table2", cut("result.json"))),
    ("padding NaN", P, in_part("table2", write("result.json", b'{"settings": NaN}'))),
    (
        "padding round without test_acc",
        P,
        in_part(
            "table1", setter("result.json", lambda d: d["conv_types"]["valid"]["rounds"][0].pop("test_acc"))
        ),
    ),
    ("gpt train.json missing", P, in_part("gpt", remove("train.json"))),
    ("gpt lr a string", P, in_part("gpt", setter("train.json", at("options.lr", "5e-4")))),
    ("gpt samples not a list", P, in_part("gpt", setter("samples_0.json", at("samples", "text")))),
    (
        "graph adjacency not square",
        P,
        in_part("graph", setter("report_graph1_powers.json", lambda d: d["adjacency"].pop())),
    ),
    ("graph laplacian missing", P, in_part("graph", remove("report_graph1_laplacian.json"))),
    ("graph check ok a word", P, in_part("graph", setter("check.json", at("ok", "yes")))),
]


def command(kind: str, folder: Path) -> list[str]:
    return {
        G: [
            "gpt",
            "generate",
            str(folder),
            "--prompt",
            "The ",
            "--greedy",
            "--max-new-tokens",
            "2",
            "--device",
            "cpu",
        ],
        R: ["gpt", "train", "--resume", str(folder), "--max-steps", "9", "--device", "cpu", "--quiet"],
        L: [
            "rotate-eval",
            "--dataset",
            "digits",
            "--mode",
            "plain",
            "--angles",
            "0",
            "--device",
            "cpu",
            "--quiet",
            "--load-models",
            str(folder),
        ],
        P: ["report", str(folder)],
    }[kind]


SOURCE = {G: "gpt", R: "gpt", L: "models", P: "report"}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_there_are_at_least_35_kinds():
    assert len(CASES) >= 35 and len({name for name, _, _ in CASES}) == len(CASES)


CLASS = {
    G: "GPT run read back",
    R: "GPT run read back",
    L: "models folder read back",
    P: "report folders read back",
}


@pytest.mark.parametrize(
    "name,kind,damage",
    [pytest.param(*case, id=case[0], marks=pytest.mark.kind(CLASS[case[1]])) for case in CASES],
)
def test_damaged_file_is_one_line_exit_2(sources, tmp_path, name, kind, damage):
    folder = tmp_path / "target"
    shutil.copytree(sources[SOURCE[kind]], folder)
    file = damage(folder)
    before = snapshot(folder)
    result = runner.invoke(app, command(kind, folder))
    assert result.exit_code == 2, (name, result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
    assert "Traceback" not in result.output
    assert str(folder) in lines[0] and Path(file).name in lines[0], (name, lines[0])  # names the file
    assert snapshot(folder) == before, name


@pytest.mark.kind("report folders read back")
def test_report_of_an_interrupted_padding_bench_is_written(tmp_path):
    """padding-bench's JSON of a run interrupted before any round is valid input: dashes."""
    folder = tmp_path / "r"
    shutil.copytree(REPRODUCED, folder)

    def interrupted(d: dict) -> None:
        d["interrupted"] = True
        for conv in d["conv_types"].values():
            conv["rounds"] = []
            for key in conv["summary"]:
                conv["summary"][key] = {"mean": None, "std": None}

    edit_json(folder / "table1" / "result.json", interrupted)
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    table = (folder / "report.md").read_text().split("## Table 2")[0]
    assert "**interrupted**" in table and "| valid | Test | — | — |" in table  # no rounds: no round cells
