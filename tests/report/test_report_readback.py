"""Every family's ``from_json`` beside its ``to_json``: a result survives the round trip through
its JSON file unchanged, and a damaged or hand-edited file (``1e400``, ``-5000``, an ``ok`` or a
mean that disagrees with its rows) is refused in one line naming the file and the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common.errors import Hw2Error
from hw2cli.common.schema import ResultError, disagreement, load
from hw2cli.gpt import render as gpt_render
from hw2cli.graph import render as graph_render
from hw2cli.padding import render as padding_render
from hw2cli.probe import render as probe_render
from hw2cli.rotation import render as rotation_render

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "hw2cli" / "examples"
REPRODUCED = ROOT / "docs" / "reproduce-quick"
VIEWS = {
    "table1": padding_render,
    "table2": padding_render,
    "rotation": rotation_render,
    "gpt": gpt_render,
    "graph": graph_render,
    "probes": probe_render,
}
FILES = sorted(p for p in REPRODUCED.glob("*/*.json") if p.name != "part.json")
runner = CliRunner()


def round_trip(view, result) -> None:
    """to_json o from_json is the identity on what to_json writes, through a JSON text."""
    data = json.loads(json.dumps(view.to_json(result)))
    again = view.from_json(data)
    assert type(again) is type(result)
    assert json.loads(json.dumps(view.to_json(again))) == data


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_every_file_of_a_reproduction_reads_back_to_what_it_holds(path):
    view = VIEWS[path.parent.name]
    data = json.loads(path.read_text())
    result = load(path, view.from_json, view.to_json, "fix")
    assert disagreement(data, view.to_json(result)) is None
    round_trip(view, result)


def test_a_file_differing_in_two_fields_names_the_first_in_the_file_on_every_run():
    written = {f"k{i}": i for i in range(40)} | {"z": 1, "a": {"b": 2}}
    again = {key: written[key] for key in reversed(written)} | {"z": 0, "a": {"b": 3}}
    assert disagreement(written, again) == "field z: is 1, but the rest of the file gives 0"


def test_a_padding_result_with_rounds_and_an_interrupted_one_round_trip():
    from hw2cli.padding.bench import PaddingBenchResult
    from hw2cli.padding.train import RoundOutcome

    settings = {
        "net": "net1",
        "conv_types": ["valid", "fconv"],
        "rounds": 2,
        "epochs": 3,
        "precision": "fp32",
    }
    settings["seed"] = 0
    outcomes = {
        "valid": [
            RoundOutcome("valid", r, 99.5 - r, 98.0, 0.5 * r, 100.0, 3, 2, [0.5, 0.25, 0.125], 1.5)
            for r in (0, 1)
        ],
        "fconv": [RoundOutcome("fconv", 0, 88.0, 87.5, 88.25, 90.0, 2, 2, [0.75, 0.5], 2.0)],
    }
    full = PaddingBenchResult(
        settings, "sequential", "cpu", outcomes, 12.5, 3.0e12, workers=1, peak_gflops=80.0
    )
    round_trip(padding_render, full)
    again = padding_render.from_json(padding_render.to_json(full))
    assert again.outcomes["valid"][1] == outcomes["valid"][1]  # rounds numbered from 0 again
    assert again.summary("valid", "test_acc") == full.summary("valid", "test_acc") == (0.25, 0.25)
    interrupted = PaddingBenchResult(settings, "sequential", "cpu", {}, 0.5, interrupted=True)
    round_trip(padding_render, interrupted)


def test_padding_files_written_before_rounds_were_numbered_from_1_still_read():
    old = ROOT / "docs" / "reproduce-full" / "table1" / "result.json"
    data = json.loads(old.read_text())
    assert [r["round"] for r in data["conv_types"]["valid"]["rounds"]] == list(range(10))
    result = load(old, padding_render.from_json, padding_render.to_json, "fix", padding_render.upgrade_json)
    assert [o.round for o in result.outcomes["valid"]] == list(range(10))
    assert result.summary("valid", "val_acc")[0] == data["conv_types"]["valid"]["summary"]["val"]["mean"]


def test_a_rotation_result_with_every_mode_round_trips():
    from hw2cli.rotation.experiment import ModelResult, RotationResult
    from hw2cli.rotation.model import P4CNNConfig, RotationCNNConfig
    from hw2cli.rotation.options import MODES

    angles = [0.0, 90.0, 180.0]
    models = [
        ModelResult(m, [0.9 - i / 10, 0.5, 0.25], [1.0, 0.5], 2, 3.5 + i, None, 1000 + i, 0.75)
        for i, m in enumerate(MODES)
    ]
    models[1].loaded_from = "models"
    result = RotationResult(
        "digits", [str(d) for d in range(10)], 100, 30, angles, models, RotationCNNConfig(), P4CNNConfig(),
        {"cnn": 1000, "p4": 1001}, [0.0, 90.0], 2, 64, 1e-3, 0, "cpu", "fp32", 1.25, "models",
    )  # fmt: skip
    round_trip(rotation_render, result)
    again = rotation_render.from_json(rotation_render.to_json(result))
    assert again.model_config.channels == (32, 64, 64) and again.models[1].loaded_from == "models"


def test_gpt_results_round_trip():
    from hw2cli.gpt.sample import GenerateResult
    from hw2cli.gpt.train import TrainOptions, TrainResult

    options = {**TrainOptions().__dict__, "txt_file": "/tmp/c.txt", "max_steps": 7}
    trained = TrainResult(
        "run", "gpt-nano", 1234, 65, "cpu", "fp32", 1, 0, 3, 7, 7, 2.5, None, None, None, 1.5, "The end",
        True, options, [{"step": 5, "train_loss": 2.75, "val_loss": None}], diverged_at=6, checkpoint_step=3,
    )  # fmt: skip
    round_trip(gpt_render, trained)
    settings = {"mode": "top-k", "temperature": 0.8, "top_k": 10, "top_p": None, "num_samples": 2}
    settings.update(max_new_tokens=5, seed=0, device="cpu")
    round_trip(gpt_render, GenerateResult("run", "The ", settings, ["abc", "d`e"], 0.25))


def _graph(tmp_path: Path, text: str) -> str:
    path = tmp_path / "g.txt"
    path.write_text(text)
    return str(path)


def test_graph_results_round_trip_directed_weighted_with_features_and_walks(tmp_path):
    from hw2cli.graph.check import run_check
    from hw2cli.graph.laplacian import run_laplacian
    from hw2cli.graph.options import CheckOptions, LaplacianOptions, PowersOptions
    from hw2cli.graph.walks import run_powers

    weighted = _graph(tmp_path, "1 2 2.5\n2 3\n3 1 0.5\n3 4\n")
    round_trip(
        graph_render, run_powers(PowersOptions(edges=weighted, max_power=3, walks=("1", "3"), length=2))
    )
    round_trip(graph_render, run_powers(PowersOptions(edges=weighted, directed=True, max_power=4)))
    big = _graph(tmp_path, "1 2 3000000000000\n2 3 3000000000000\n")  # powers past int64: exact ints
    round_trip(graph_render, run_powers(PowersOptions(edges=big, max_power=3)))
    features = str(EXAMPLES / "graph2_features.csv")
    edges = str(EXAMPLES / "graph2.txt")
    round_trip(graph_render, run_laplacian(LaplacianOptions(edges=edges, normalized=True, features=features)))
    cycle = str(tmp_path / "cycle.txt")
    Path(cycle).write_text("1 2\n2 3\n3 1\n")
    directed = run_laplacian(LaplacianOptions(edges=cycle, directed=True))
    assert directed.spectrum.values.dtype.kind == "c"  # complex eigenvalues: values and imag
    round_trip(graph_render, directed)
    wrong = str(EXAMPLES / "report_graph2_laplacian.txt")
    check = run_check(CheckOptions(edges=str(EXAMPLES / "report_graph2.txt"), matrix=wrong, kind="laplacian"))
    assert not check.ok
    round_trip(graph_render, check)


def test_a_graph_of_more_than_1000_nodes_round_trips_in_coo_form(tmp_path):
    from hw2cli.graph.laplacian import run_laplacian
    from hw2cli.graph.options import LaplacianOptions

    path = _graph(tmp_path, "".join(f"{i} {i + 1}\n" for i in range(1, 1100)))
    result = run_laplacian(LaplacianOptions(edges=path, eigs=0))
    assert graph_render.to_json(result)["laplacian"]["format"] == "coo"
    round_trip(graph_render, result)


def test_probe_results_round_trip():
    from hw2cli.probe.attention_cost import attention_cost
    from hw2cli.probe.options import AttentionCostOptions, ReceptiveFieldOptions
    from hw2cli.probe.receptive_field import receptive_field

    round_trip(probe_render, attention_cost(AttentionCostOptions(n="16,32", device="cpu")))
    round_trip(probe_render, receptive_field(ReceptiveFieldOptions(samples=2, seq_len=8)))


# ----------------------------------------------------------------------------- damaged files


def _damaged(tmp_path: Path, part: str, name: str, change) -> Path:
    path = tmp_path / name
    data = json.loads((REPRODUCED / part / name).read_text())
    change(data)
    path.write_text(json.dumps(data).replace('"1e400"', "1e400"))  # a literal JSON reads as infinity
    return path


def _set(path: str, value):
    def change(data):
        *keys, last = path.split(".")
        for key in keys:
            data = data[int(key)] if isinstance(data, list) else data[key]
        data[int(last) if isinstance(data, list) else last] = value

    return change


DAMAGE = [
    ("table1", "result.json", "conv_types.valid.rounds.0.test_acc", "1e400", "is not a finite number"),
    ("table1", "result.json", "conv_types.valid.rounds.0.test_acc", -5000, "out of range"),
    ("table1", "result.json", "conv_types.valid.rounds.0.val_acc", 100.5, "out of range"),
    ("table1", "result.json", "conv_types.valid.summary.test.mean", 42.0, "the rest of the file gives"),
    ("table1", "result.json", "conv_types.valid.rounds.0.round", 7, "out of range"),
    ("table2", "result.json", "settings.net", "net3", "is not one of"),
    ("table2", "result.json", "settings.rounds", "2", "valid integer"),
    ("rotation", "result.json", "models.plain.accuracy.0", "1e400", "is not a finite number"),
    ("rotation", "result.json", "models.plain.accuracy.3", -5000, "out of range"),
    ("rotation", "result.json", "models.plain.mean_accuracy", 0.99, "the rest of the file gives"),
    ("rotation", "result.json", "models.plain.worst_angle", 30.0, "the rest of the file gives"),
    ("rotation", "result.json", "n_test", 1.5, "valid integer"),
    ("gpt", "train.json", "options.lr", "5e-4", "valid number"),
    ("gpt", "train.json", "steps", None, "valid integer"),
    ("gpt", "samples_1.json", "samples.0.text", "The other text", "the rest of the file gives"),
    ("gpt", "samples_1.json", "settings.mode", "beam", "is not one of"),
    ("graph", "check.json", "ok", True, "the rest of the file gives"),
    ("graph", "check.json", "wrong_cells.0.row", 99, "is not one of"),
    ("graph", "report_graph1_powers.json", "n_edges", 99, "the rest of the file gives"),
    ("graph", "report_graph1_powers.json", "adjacency.0", [0, 1], "is not a 5 x 5 matrix"),
    ("graph", "report_graph2_laplacian.json", "eigenvalues.zero_count", 3, "the rest of the file gives"),
    ("probes", "heads.json", "verdicts.0.verdict", "maybe", "is not one of"),
    ("probes", "attention-cost.json", "points.0.seconds", "fast", "valid number"),
]


@pytest.mark.parametrize(
    "part,name,field,value,says", DAMAGE, ids=[f"{d[1]}:{d[2]}={d[3]!r}" for d in DAMAGE]
)
def test_a_damaged_value_is_one_line_naming_the_file_and_the_field(tmp_path, part, name, field, value, says):
    view = VIEWS[part]
    path = _damaged(tmp_path, part, name, _set(field, value))
    with pytest.raises(Hw2Error) as info:
        load(path, view.from_json, view.to_json, "rerun it", getattr(view, "upgrade_json", None))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ") and message.endswith("; rerun it")
    assert f"field {field}" in message or f"field {field.rsplit('.', 1)[0]}" in message, message
    assert says in message, message


def test_from_json_names_the_field_for_python_callers():
    data = json.loads((REPRODUCED / "rotation" / "result.json").read_text())
    data["models"]["plain"]["accuracy"][2] = -5000
    with pytest.raises(ResultError) as info:
        rotation_render.from_json(data)
    assert info.value.field == "models.plain.accuracy.2"


@pytest.mark.parametrize("value", ["1e400", "-5000"])
def test_hw2_report_refuses_a_hand_edited_accuracy_instead_of_printing_it(tmp_path, value):
    """Issue 22 item 12: `inf` and `-5000.00` never reach the report."""
    folder = tmp_path / "r"
    shutil.copytree(REPRODUCED, folder)
    path = folder / "table1" / "result.json"
    text = path.read_text()
    rounds = json.loads(text)["conv_types"]["valid"]["rounds"]
    path.write_text(text.replace(f'"test_acc": {rounds[0]["test_acc"]}', f'"test_acc": {value}', 1))
    before = (folder / "report.md").read_bytes()
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: field conv_types.valid.rounds.0.test_acc")
    assert (folder / "report.md").read_bytes() == before


def test_the_committed_quick_report_is_what_hw2_report_builds_from_its_files():
    from hw2cli.report.build import build_report

    assert build_report(REPRODUCED).markdown == (REPRODUCED / "report.md").read_text(encoding="utf-8")
