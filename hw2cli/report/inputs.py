"""The files ``hw2 report`` reads from a scripts/reproduce.sh folder, each with its schema.

They are written by other commands (``--json`` outputs) that may gain fields, so the schemas
declare and type only what the report uses (hw2cli.common.schema.Known); a missing, mistyped
or inconsistent field is one line naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from hw2cli.common import schema
from hw2cli.common.schema import Known
from hw2cli.report.published import CONV_ORDER

Number = int | float
Matrix = list[list[Number]]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Part(Known):
    """``part.json``, written by scripts/reproduce.sh when a part finished."""

    part: str
    title: str
    profile: str
    device: str
    seconds: Seconds
    finished: str
    machine: str
    cpus: Annotated[int, Field(ge=1)]
    hw2: str


class RotationModel(Known):
    accuracy: list[Annotated[float, Field(ge=0, le=1)]]
    mean_accuracy: Annotated[float, Field(ge=0, le=1)]
    worst_angle: float
    worst_accuracy: Annotated[float, Field(ge=0, le=1)]
    train_seconds: Seconds | None = None  # these two: written since the p4 and tta modes
    ms_per_image: Seconds | None = None


class RotationParameters(Known):
    cnn: schema.Count
    p4: schema.Count


class RotationResult(Known):
    """``rotation/result.json`` (rotate-eval --json)."""

    dataset: str
    n_train: schema.Count
    n_test: schema.Count
    epochs: schema.Count
    batch_size: schema.Count
    lr: float
    seed: int
    device: str
    precision: str
    angles: list[float]
    models: dict[str, RotationModel]
    parameters: RotationParameters | None = None

    @model_validator(mode="after")
    def _one_accuracy_per_angle(self) -> RotationResult:
        for name, model in self.models.items():
            if len(model.accuracy) != len(self.angles):
                raise ValueError(
                    f"models.{name}.accuracy has {len(model.accuracy)} values for {len(self.angles)} angles"
                )
            if self.parameters is not None and (model.train_seconds is None or model.ms_per_image is None):
                raise ValueError(f"models.{name} has no train_seconds or ms_per_image beside parameters")
        return self


class PaddingRound(Known):
    val_acc: float
    test_acc: float


class MeanStd(Known):
    mean: float | None
    std: float | None


class PaddingSummary(Known):
    val: MeanStd
    test: MeanStd


class PaddingConv(Known):
    rounds: list[PaddingRound]
    summary: PaddingSummary


class PaddingSettings(Known):
    net: Literal["net1", "net2"]
    epochs: schema.Count
    rounds: schema.Count  # with epochs: the protocol, compared with the published one
    seed: int


class PaddingResult(Known):
    """``table1|table2/result.json`` (padding-bench --json; an interrupted run included)."""

    settings: PaddingSettings
    conv_types: dict[Literal[CONV_ORDER], PaddingConv]  # type: ignore[valid-type]
    device: str
    path: str
    seconds: Seconds
    gflops: float | None
    interrupted: bool


class TrainOptions(Known):
    block_size: int
    batch_size: int
    lr: float
    txt_file: str | None = None  # the corpus; None: Grimm's fairy tales
    val_fraction: float | None = None


class GptTrain(Known):
    """``gpt/train.json`` (gpt train --json)."""

    model_type: str
    num_params: schema.Count
    vocab_size: schema.Count
    device: str
    precision: str
    steps: schema.Count
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None
    tokens_per_s: float | None
    elapsed_s: Seconds
    options: TrainOptions


class SampleSettings(Known):
    mode: str
    seed: int
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None


class Sample(Known):
    text: str


class GptSamples(Known):
    """``gpt/samples_*.json`` (gpt generate --json)."""

    prompt: str
    settings: SampleSettings
    samples: list[Sample]


def _square(nodes: list, matrix: list[list], name: str) -> None:
    if len(matrix) != len(nodes) or any(len(row) != len(nodes) for row in matrix):
        raise ValueError(f"{name} is not a {len(nodes)} x {len(nodes)} matrix")


class GraphPowers(Known):
    """``graph/*_powers.json`` (graph powers --json)."""

    source: str
    nodes: list[Any]
    n_nodes: schema.Count
    n_edges: schema.Count
    components: schema.Count
    degrees: list[Number]
    adjacency: Matrix
    powers: dict[Annotated[str, Field(pattern=r"^[0-9]{1,4}$")], Matrix]

    @model_validator(mode="after")
    def _shapes(self) -> GraphPowers:
        _square(self.nodes, self.adjacency, "adjacency")
        for k, matrix in self.powers.items():
            _square(self.nodes, matrix, f"powers.{k}")
        return self


class Eigenvalues(Known):
    values: list[float]
    zero_count: schema.Count


class GraphLaplacian(Known):
    """``graph/*_laplacian.json`` (graph laplacian --json)."""

    nodes: list[Any]
    components: schema.Count
    degree_matrix: Matrix
    laplacian: Matrix
    eigenvalues: Eigenvalues

    @model_validator(mode="after")
    def _shapes(self) -> GraphLaplacian:
        _square(self.nodes, self.degree_matrix, "degree_matrix")
        _square(self.nodes, self.laplacian, "laplacian")
        return self


class WrongCell(Known):
    row: Any
    col: Any
    given: Number
    expected: Number


class GraphCheck(Known):
    """``graph/check.json`` (graph check --json)."""

    kind: str
    source: str
    ok: bool
    wrong_cells: list[WrongCell]
    problems: list[str]


def read(path: Path, model: type[Known]) -> dict[str, Any]:
    """The JSON of ``path`` once it passed ``model``; a problem is one line naming file and field."""
    part, out = path.parent.name, path.parent.parent
    fix = f"rerun that part with scripts/reproduce.sh --out {out} --force --parts {part}"
    data = schema.parse_json(path, fix)
    schema.validate(path, model, data, fix)
    return data
