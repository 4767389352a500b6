"""A run directory of ``hw2 gpt train`` read back (docs/gpt.md lists its files; no pickle): every
file validated before it is trusted, for `gpt generate`, resuming and the report."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import ConfigDict, Field, create_model, field_validator, model_validator
from safetensors.torch import load_file, load_model

from hw2cli.common import rundir, schema
from hw2cli.common.errors import Hw2Error
from hw2cli.gpt.model import GPT, LEGACY_DROPOUTS, GPTConfig
from hw2cli.gpt.options import PRESET_NAMES, TrainOptions
from hw2cli.gpt.tokens import TOKENIZER_FILE, BPETokenizer, CharTokenizer, Tokenizer

MANIFEST = "state.json"
METRIC_FIELDS = ("step", "train_loss", "val_loss", "val_bpc", "lr", "tokens_per_s")
OLD_METRIC_FIELDS = ("step", "train_loss", "val_loss", "lr", "tokens_per_s")  # before val_bpc
RUN_FILES = ("config.json", "vocab.json", "model.safetensors", "optimizer.safetensors", MANIFEST)
RUN_FILES += ("metrics.csv", "loss.png")
ALL_RUN_FILES = (*RUN_FILES, TOKENIZER_FILE)  # a BPE run keeps its tokenizer too
FIX = "give a run directory written by `hw2 gpt train`"
OPTION_FIELDS = {f.name for f in dataclasses.fields(TrainOptions)}

_Size = functools.partial(Field, ge=1)
MODEL_BOUNDS = {  # beyond these a config.json was edited, not written by hw2 (gpt2-xl: 48 x 1600)
    "n_layer": _Size(le=1024),
    "n_head": _Size(le=1024),
    "n_embd": _Size(le=1 << 16),
    "vocab_size": _Size(le=0x110000),
    "block_size": _Size(le=1 << 20),
    "rope_base": Field(gt=0, allow_inf_nan=False),
}


class Vocab(schema.Strict):
    chars: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=1)]], Field(min_length=1, max_length=0x110000)
    ]

    @field_validator("chars")
    @classmethod
    def _unique(cls, chars: list[str]) -> list[str]:
        if len(set(chars)) != len(chars):
            raise ValueError("holds a character twice")
        return chars


class BPEVocab(schema.Strict):
    tokenizer: Literal["tokenizer.json"]


_Beta = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ParamGroup(schema.Strict):
    """One of AdamW's parameter groups, checked before ``load_state_dict`` trusts it; a newer
    torch's flags and numbers are accepted."""

    model_config = ConfigDict(extra="allow", strict=True)
    params: list[schema.Count]
    lr: _NonNegative
    betas: Annotated[list[_Beta], Field(min_length=2, max_length=2)]
    eps: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    weight_decay: _NonNegative
    amsgrad: bool = False
    maximize: bool = False
    foreach: bool | None = None
    capturable: bool = False
    differentiable: bool = False
    fused: bool | None = None
    decoupled_weight_decay: bool | None = None
    initial_lr: _NonNegative | None = None

    @model_validator(mode="after")
    def _plain_extras(self) -> ParamGroup:
        for key, value in (self.model_extra or {}).items():
            if not (
                value is None
                or isinstance(value, bool | int)
                or (isinstance(value, float) and math.isfinite(value))
            ):
                raise ValueError(f"{key}: {value!r} is not a flag or a finite number")
        return self


class State(schema.ManifestFields):
    """``state.json``: the manifest of the last checkpoint."""

    step: schema.Count
    total_steps: Annotated[int, Field(ge=1)] | None = None
    max_steps: Annotated[int, Field(ge=1)] | None = None
    epochs: Annotated[int, Field(ge=1)] | None = None
    best_val_loss: schema.Finite | None = None
    finished: bool | None = None
    scaler: dict[str, float | int] | None = None
    param_groups: list[ParamGroup] = []


class MetricRow(schema.Strict):
    step: Annotated[int, Field(ge=1)]
    train_loss: schema.Finite | None
    val_loss: schema.Finite | None
    val_bpc: schema.Finite | None = None
    lr: _NonNegative | None
    tokens_per_s: _NonNegative | None


@functools.cache
def config_schema() -> type[schema.Strict]:
    """``config.json``; the model and trainer sections follow GPTConfig and TrainOptions."""
    legacy = {"abs_emb": bool, **dict.fromkeys(LEGACY_DROPOUTS, float)}  # read by GPTConfig.from_dict
    model = schema.from_dataclass(GPTConfig, "ModelSection", MODEL_BOUNDS, legacy=legacy)
    train = schema.from_dataclass(TrainOptions, "TrainSection", legacy={"abs_emb": bool})
    return create_model(
        "RunConfig",
        __base__=schema.Strict,
        format=(Literal["hw2-gpt-run"], ...),
        version=(Literal[1], ...),
        model=(model, ...),
        train=(train, ...),
    )


@dataclass
class Run:
    """A run directory read back and validated (``state``: None for a folder without a checkpoint)."""

    folder: Path
    checkpoint: rundir.Checkpoint
    model_config: GPTConfig
    train_options: dict[str, Any]
    tokenizer: Tokenizer
    state: State | None

    def path(self, name: str) -> Path:
        return self.checkpoint.path(name)

    def options(self) -> TrainOptions:
        """The recorded TrainOptions, read as older hw2 versions wrote them too."""
        record = dict(self.train_options)
        if "abs_emb" in record:  # runs written before pos_emb
            record.setdefault("pos_emb", "learned" if record.pop("abs_emb") else "rope")
        if record.get("init_from") is not None and record.get("model_type") not in PRESET_NAMES:
            record["model_type"] = None  # runs that recorded the pretrained model's name here
        record = {k: v for k, v in record.items() if k in OPTION_FIELDS}
        return schema.construct(self.path("config.json"), "train", lambda: TrainOptions(**record), FIX)


def check_folder(folder: Path) -> Path:
    if not folder.is_dir():
        raise Hw2Error(f"run directory {folder} does not exist; give a folder that `hw2 gpt train` wrote")
    return folder


def open_run(run_dir: str | os.PathLike, fix: str = FIX, hashes: tuple[str, ...] | None = None) -> Run:
    """Validate ``run_dir``: the manifest and its files (hashes of those in ``hashes``; default all),
    config, vocabulary, their agreement."""
    folder = check_folder(Path(run_dir))
    checkpoint = rundir.read_checkpoint(folder, MANIFEST, State, fix, hashes)
    config_path, vocab_path = checkpoint.path("config.json"), checkpoint.path("vocab.json")
    cfg = schema.load_json(config_path, config_schema(), fix)
    vocab = schema.parse_json(vocab_path, fix)
    if isinstance(vocab, dict) and "tokenizer" in vocab:
        schema.validate(vocab_path, BPEVocab, vocab, fix)
        tokenizer = BPETokenizer.from_file(checkpoint.path(TOKENIZER_FILE))
    else:
        tokenizer = CharTokenizer.from_json(schema.validate(vocab_path, Vocab, vocab, fix).model_dump())
    model_section = cfg.model.model_dump(exclude_unset=True)
    model_config = schema.construct(config_path, "model", lambda: GPTConfig.from_dict(model_section), fix)
    if model_config.vocab_size != tokenizer.vocab_size:
        what = "field chars" if isinstance(tokenizer, CharTokenizer) else TOKENIZER_FILE
        raise Hw2Error(
            f"{vocab_path}: {what}: {tokenizer.vocab_size} entries, but {config_path} "
            f"says vocab_size {model_config.vocab_size}; {fix}"
        )
    train_options = cfg.train.model_dump(exclude_unset=True)
    return Run(folder, checkpoint, model_config, train_options, tokenizer, checkpoint.manifest)


def load_weights(path: Path, config: GPTConfig, model: GPT | None = None) -> GPT:
    """``model`` (default: a new one of ``config``) filled from a safetensors file whose shapes are
    checked first against a model on the meta device: an edited config.json allocates nothing."""
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in GPT(config).state_dict().items()}
    if config.tie_head:  # save_model keeps a tied head's one tensor under one of its two names
        stored = schema.tensor_shapes(path, FIX)
        shapes.pop("tok_emb.weight" if "lm_head.weight" in stored else "lm_head.weight")
    schema.check_tensors(path, shapes, "config.json", "give an intact run directory")
    model = GPT(config) if model is None else model
    load_model(model, str(path), strict=True)
    return model


def load_run(
    run_dir: str | Path, device: torch.device | str = "cpu"
) -> tuple[GPT, Tokenizer, dict[str, Any]]:
    """The trained model (eval mode, on ``device``), its tokenizer and its trainer options."""
    run = open_run(run_dir, hashes=("model.safetensors",))
    weights = run.path("model.safetensors")
    if not weights.is_file():
        raise Hw2Error(f"{weights} is missing; train first or give a finished run directory")
    return load_weights(weights, run.model_config).to(device).eval(), run.tokenizer, run.train_options


def read_metrics(run_dir: Path, run: Run | None = None) -> list[dict[str, Any]]:
    """The rows of ``metrics.csv`` as numbers (``None`` for an empty val_loss)."""
    path = run.path("metrics.csv") if run else Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return []
    old = schema.read_text(path, FIX).split("\n", 1)[0] == ",".join(OLD_METRIC_FIELDS)
    fields = OLD_METRIC_FIELDS if old else METRIC_FIELDS
    return [row.model_dump() for row in schema.load_csv(path, MetricRow, fields, FIX)]


def restore(run: Run | None, model: GPT, optimizer, scaler, device) -> tuple[int, float | None, list[dict]]:
    """Fill the model, optimizer and scaler from ``run``; its step, best val loss and metrics rows."""
    if run is None:
        return 0, None, []
    state = load_training_state(run, optimizer)
    load_weights(run.path("model.safetensors"), model.config, model).to(device)
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    rows = [r for r in read_metrics(run.folder, run) if r["step"] <= state["step"]]
    return state["step"], state.get("best_val_loss"), rows


def load_training_state(run: Run, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore the optimizer from ``run`` and return the rest of its ``state.json``."""
    state_path, path = run.path(MANIFEST), run.path("optimizer.safetensors")
    state = run.state or schema.load_json(state_path, State, FIX)
    if not path.is_file():
        raise Hw2Error(f"{path} is missing; this run cannot be resumed, start a new one")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    sizes = [len(g["params"]) for g in optimizer.param_groups]
    order = [i for g in state.param_groups for i in g.params]
    theirs = [len(g.params) for g in state.param_groups]
    if theirs != sizes or order != list(range(len(params))):
        shown = ", ".join(map(str, order[:8])) + (", ..." if len(order) > 8 else "")
        raise Hw2Error(
            f"{state_path}: field param_groups: groups of sizes {theirs} numbered [{shown}], the optimizer "
            f"needs sizes {sizes} numbered 0 to {len(params) - 1} in order; {FIX}"
        )
    shapes = schema.tensor_shapes(path, FIX, "optimizer file")
    expected = {}
    for index, name in ((i, n) for i in range(len(params)) for n in ("step", "exp_avg", "exp_avg_sq")):
        expected[f"state.{index}.{name}"] = () if name == "step" else tuple(params[index].shape)
    if shapes:  # no state at all: saved before the first optimizer step
        schema.check_tensors(path, expected, "model's parameters", FIX, "optimizer file")
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in load_file(str(path)).items():
        _, index, name = key.split(".", 2)
        per_param.setdefault(int(index), {})[name] = tensor
    groups = [g.model_dump(exclude_unset=True) for g in state.param_groups]  # only the file's keys
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    return state.model_dump(exclude_none=True, exclude={"param_groups", "files", "staged", "remove"})
