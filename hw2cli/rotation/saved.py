"""The models folder of rotate-eval (``save_models``, ``load_models``) under the run-directory
contract (hw2cli.common.rundir): ``config.json`` (ModelsConfig) and one ``<name>.safetensors`` per
model. Each model saved is one commit: an interrupted run leaves those it finished, listed and
hashed; an earlier run's models (``force``) go with the first commit."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Literal

import torch
from pydantic import BeforeValidator, Field, field_validator, model_validator
from safetensors import SafetensorError

from hw2cli.common import rundir, schema
from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import OptionError, describe_range, specs
from hw2cli.rotation.model import WIDTHS, Config, Model, P4CNNConfig, RotationCNNConfig, build_model

MANIFEST = "config.json"
FORMAT = "hw2 rotate-eval models"
NAMES = ("plain", "augmented", "p4", "p4-augmented")
LAYOUT = (MANIFEST, *(f"{n}.safetensors" for n in NAMES))
FIX = "save the models again with {save_models}"


class _Shape(schema.Strict):
    @field_validator("channels", check_fields=False)
    @classmethod
    def _widths(cls, widths: tuple[int, ...]) -> tuple[int, ...]:
        if not all(WIDTHS.min <= w <= WIDTHS.max for w in widths):
            raise ValueError(f"widths {list(widths)} are not all {describe_range(WIDTHS.min, WIDTHS.max)}")
        return widths


def _section(cls: type, name: str) -> type:
    """config.json's section of a model config: its fields, within their Specs."""
    bounds = {n: Field(ge=s.min, le=s.max) for n, s in specs(cls).items() if n != "channels"}
    # the tuple is a JSON list (strict mode takes only a tuple); each width is checked by _Shape
    bounds["channels"] = BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)
    return schema.from_dataclass(cls, name, bounds, base=_Shape)


CNNSection, P4Section = _section(RotationCNNConfig, "CNNSection"), _section(P4CNNConfig, "P4Section")


class ModelEntry(schema.Strict):
    file: schema.FileName
    epochs: schema.Count = 0
    train_loss: list[schema.Finite | None] = []
    seed: int | None = None


class ModelsConfig(schema.ManifestFields):
    format: Literal[FORMAT] | None = None  # absent in folders saved by hw2 0.x
    model: CNNSection
    p4_model: P4Section | None = None
    dataset: str | None = None
    classes: list[str] | None = None
    models: dict[Literal[NAMES], ModelEntry]

    @model_validator(mode="after")
    def _classes_match(self) -> ModelsConfig:
        if self.classes is not None and len(self.classes) != self.model.n_classes:
            raise ValueError(f"classes lists {len(self.classes)} names for n_classes {self.model.n_classes}")
        if self.p4_model is not None and self.p4_model.n_classes != self.model.n_classes:
            raise ValueError(f"p4_model has {self.p4_model.n_classes} classes, model {self.model.n_classes}")
        if self.p4_model is None and any(n.startswith("p4") for n in self.models):
            raise ValueError("p4 models are listed without a p4_model section")
        return self


@contextmanager
def _naming_fields() -> Iterator[None]:
    """rundir's errors as OptionError naming ``{save_models}`` / ``{load_models}``; any other
    braces (in a folder's path) are kept as they are."""
    try:
        yield
    except OptionError:
        raise
    except Hw2Error as exc:
        text = str(exc)
        kept = {f: f"{{{f}}}" for f in OptionError(text).fields if f not in ("save_models", "load_models")}
        raise OptionError(text, **kept) from None


def check_folder(folder: str | Path, force: bool) -> Path:
    """Refuse a folder of earlier models (unless ``force``) before any work."""
    with _naming_fields():
        return rundir.prepare(
            folder, what="{save_models} folder", manifest=MANIFEST, leftovers=(), force=force
        )


class ModelsWriter(ExitStack):
    """A models folder this run holds the writer lock of (until :meth:`close`), and the models it
    committed so far; a cut commit of an earlier run is finished or discarded on opening."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        self.folder, self.models = Path(folder), {}
        with _naming_fields():
            self.enter_context(rundir.lock(self.folder, "{save_models} folder"))
            rundir.recover(self.folder, MANIFEST, ModelsConfig, LAYOUT)

    def save(
        self, name: str, model: Model, config: Config, p4: P4CNNConfig, train_loss: list, **meta
    ) -> None:
        """Commit ``<name>.safetensors`` and a config.json listing it with this run's earlier
        models, both configs and ``meta`` (dataset, classes, epochs, seed); an earlier run's
        files go with the first commit."""
        from safetensors.torch import save_file

        file = f"{name}.safetensors"
        loss = [v if math.isfinite(v) else None for v in train_loss]
        self.models[name] = {"file": file, "epochs": meta["epochs"], "seed": meta["seed"], "train_loss": loss}
        manifest = {"format": FORMAT, "model": config.to_dict(), "p4_model": p4.to_dict()}
        manifest |= {"dataset": meta["dataset"], "classes": meta["classes"], "models": self.models}
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        hashed = tuple(entry["file"] for entry in self.models.values())
        remove = tuple(n for n in LAYOUT if n not in hashed and n != MANIFEST)
        write = {file: lambda tmp: save_file(tensors, str(tmp))}
        try:
            rundir.commit(self.folder, MANIFEST, ModelsConfig, manifest, write, hashed=hashed, remove=remove)
        except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own error
            del self.models[name]
            reason = getattr(exc, "strerror", None) or exc
            raise Hw2Error(
                f"cannot save the {name} model into {self.folder} ({reason}); the models "
                "committed before stay: fix that (disk space, the folder) and run again"
            ) from None


def read_models(folder: Path, names: list[str]) -> tuple[ModelsConfig, rundir.Checkpoint]:
    """The verified config.json of a models folder to load, which must list every wanted model."""
    if not (folder / MANIFEST).is_file() and not (folder / rundir.staged_name(MANIFEST)).is_file():
        raise OptionError(
            f"{{load_models}} {{folder}}: no {MANIFEST} there; give a folder written by {{save_models}}",
            folder=str(folder),
        )
    with _naming_fields():
        checkpoint = rundir.read_checkpoint(folder, MANIFEST, ModelsConfig, FIX)
    meta = checkpoint.manifest
    missing = [n for n in names if n not in meta.models]
    if missing:
        raise OptionError(
            f"{{load_models}} {{folder}} has no {' or '.join(missing)} model; train it with "
            f"{{save_models}} or pick {{mode}} {'/'.join(meta.models) or 'another'}",
            folder=str(folder),
        )
    return meta, checkpoint


def _kind(dataset: str) -> str:
    return "imagefolder" if dataset.startswith("imagefolder:") else dataset


def _listed(classes: list[str]) -> str:
    shown = ", ".join(classes[:10])
    return shown + (f", ... ({len(classes)} in all)" if len(classes) > 10 else "")


def check_dataset(meta: ModelsConfig, folder: Path, dataset: str, classes: list[str] | None = None) -> None:
    """Refuse models recorded as trained on another data set: another kind (cifar10, digits, an
    image folder; checked before the data is read), or other classes (``classes`` given, once it
    is). An image folder that moved keeps its models. Folders saved before the data set was
    recorded are not checked."""
    fix = "or train new models with {save_models}"
    values = dict(folder=str(folder), saved=str(meta.dataset), name=dataset)
    if meta.dataset is not None and _kind(meta.dataset) != _kind(dataset):
        raise OptionError(
            "{load_models} {folder} holds models trained on {saved}, not on {dataset} {name}; "
            f"give {{dataset}} {{saved}} {fix}",
            **values,
        )
    if classes is not None and meta.classes is not None and list(meta.classes) != list(classes):
        raise OptionError(
            "{load_models} {folder} holds models for the classes {ours} of {saved}, but {dataset} "
            f"{{name}} has the classes {{theirs}}; give the data set they were trained on {fix}",
            **values | dict(ours=_listed(meta.classes), saved=meta.dataset or "its data set"),
            theirs=_listed(classes),
        )


def load_model(
    checkpoint: rundir.Checkpoint, name: str, data_config: RotationCNNConfig
) -> tuple[Model, ModelEntry]:
    """Build the saved architecture (the p4 CNN for ``p4*``) and load its weights, refusing any mismatch."""
    from safetensors.torch import load_file

    folder, meta = checkpoint.folder, checkpoint.manifest
    p4 = name.startswith("p4")  # the manifest's validator ensured p4_model is there
    config = P4CNNConfig(**meta.p4_model.model_dump()) if p4 else RotationCNNConfig(**meta.model.model_dump())
    if (config.n_classes, config.image_size) != (data_config.n_classes, data_config.image_size):
        raise OptionError(
            f"{{load_models}} {{file}}: models for {config.n_classes} classes of {config.image_size}px "
            f"images, but this dataset has {data_config.n_classes} classes of {data_config.image_size}px; "
            "use the dataset they were trained on",
            file=str(folder / MANIFEST),
        )
    info = meta.models[name]
    path = checkpoint.path(info.file)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    with _naming_fields():
        schema.check_tensors(path, expected, f"CNN in {folder / MANIFEST}", FIX)
    model = build_model(config)
    model.load_state_dict(load_file(str(path)))
    return model.eval(), info
