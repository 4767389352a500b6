"""Options with fixed values list them in --help and refuse anything else (exit 2, naming the values)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app

runner = CliRunner()

CHOICES = [
    (["padding-bench"], "--net", ["net1", "net2"]),
    (["padding-bench"], "--device", ["auto", "cpu", "cuda"]),
    (["padding-bench"], "--precision", ["fp32", "bf16"]),
    (["rotate-eval"], "--device", ["auto", "cpu", "cuda"]),
    (["rotate-eval"], "--precision", ["fp32", "bf16"]),
    (["rotate-eval"], "--mode", ["plain", "augmented", "both"]),
    (["gpt", "train"], "--device", ["auto", "cpu", "cuda"]),
    (["gpt", "train"], "--precision", ["fp32", "bf16", "fp16"]),
    (["gpt", "train"], "--lr-schedule", ["constant", "cosine"]),
    (["gpt", "train"], "--model-type", ["gpt-nano", "gpt-micro", "gpt-mini", "gopher-44m"]),
    (["gpt", "generate"], "--device", ["auto", "cpu", "cuda"]),
    (["graph", "check"], "--kind", ["adjacency", "power", "degree", "laplacian"]),
    (["probe", "attention-cost"], "--device", ["auto", "cpu", "cuda"]),
    (["probe", "heads"], "--device", ["auto", "cpu", "cuda"]),
]


def plain_help(command: list[str]) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 0
    return result.output


@pytest.mark.parametrize("command, option, values", CHOICES)
def test_help_lists_the_values(command, option, values):
    line = next(line for line in plain_help(command).splitlines() if re.search(rf"{option}\b", line))
    for value in values:
        assert value in line, (option, line)


@pytest.mark.parametrize("command, option, values", [c for c in CHOICES if c[1] != "--mode"])
def test_other_values_are_refused(command, option, values):
    result = runner.invoke(app, [*command, option, "bogus"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 2
    assert "bogus" in result.output and values[0] in result.output


def test_model_type_choices_are_the_presets():
    from hw2cli.common.options import specs
    from hw2cli.gpt.model import POS_EMBS as MODEL_POS_EMBS
    from hw2cli.gpt.model import PRESETS
    from hw2cli.gpt.options import POS_EMBS, PRESET_NAMES, TrainOptions

    assert PRESET_NAMES == tuple(PRESETS) and MODEL_POS_EMBS is POS_EMBS
    assert specs(TrainOptions)["model_type"].choices == tuple(PRESETS)


@pytest.mark.parametrize(
    "command",
    [["padding-bench"], ["rotate-eval"], ["gpt", "train"], ["graph", "powers"], ["graph", "laplacian"]],
)
def test_progress_commands_take_q(command):
    assert re.search(r"--quiet\s+-q", plain_help(command))


def test_padding_bench_subcommand_is_optional_in_usage():
    text = plain_help(["padding-bench"])
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert usage.split() == ["Usage:", "hw2", "padding-bench", "[OPTIONS]", "[COMMAND", "[ARGS]...]"]
    assert re.search(r"preview\s+Write enlarged PNG examples", text)  # listed like any subcommand


def test_completion_is_offered():
    assert "--install-completion" in plain_help([])


@pytest.mark.parametrize(
    "command, usage",
    [
        (["graph", "check"], ["[OPTIONS]", "EDGES"]),
        (["graph", "powers"], ["[OPTIONS]", "[EDGES]"]),
        (["padding-bench", "preview"], ["[OPTIONS]", "OUT_DIR"]),
        (["report"], ["[OPTIONS]", "RUN_DIR"]),
        (["gpt", "generate"], ["[OPTIONS]", "[RUN_DIR]"]),
    ],
)
def test_usage_lines_name_arguments_plainly(command, usage):
    """Required arguments in capitals without Typer's braces, optional ones in brackets."""
    text = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
    line = next(line for line in text.splitlines() if "Usage:" in line)
    assert line.split()[2 + len(command) :] == usage
