"""The options of `hw2 rotate-eval`: ``run_rotation_experiment(RotationOptions(dataset="digits",
mode="plain"))``. The lists (angles, tta_angles, mode) are parsed here, without torch, so a bad
one is refused before any work."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from hw2cli.common import options as shared
from hw2cli.common.io import resolve_path
from hw2cli.common.options import OptionError, check, option

#: Every mode and the trained weights it evaluates (a TTA mode averages their softmax over turns).
MODES = ("plain", "augmented", "p4", "p4-augmented", "augmented-tta", "plain-tta")
WEIGHTS = {**{m: m for m in MODES}, "augmented-tta": "augmented", "plain-tta": "plain"}
TTA_MODES = ("augmented-tta", "plain-tta")
ALIASES = {"both": ("plain", "augmented")}
RENAMED = {"tta": "augmented-tta (TTA over the rotation-augmented model) or plain-tta (the ablation)"}
MODES_FORM = f"a comma list of {', '.join(MODES)} (both = plain,augmented)"

DATASETS_FORM = "cifar10, digits or imagefolder:PATH"
ANGLES_FORM = (
    "START:STOP:STEP (e.g. 0:360:30, STOP included) or a comma list (e.g. 0,90,180), or both (0:90:30,180)"
)
MAX_ANGLES = 1000
#: Largest |angle| accepted (degrees); keeps START:STOP:STEP arithmetic finite and exact to 1e-9.
MAX_ABS_ANGLE = 1e6


def parse_angles(spec: str, field: str = "angles") -> list[float]:
    """``0:360:30`` / ``0,45,90`` / ``0:90:30,180`` -> sorted, distinct angles in degrees."""

    def bad(why: str) -> OptionError:
        return OptionError(f"bad {{{field}}} {{spec}}: {{why}}; use {ANGLES_FORM}", spec=repr(spec), why=why)

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise bad(f"{text.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise bad(f"{text.strip()!r} is not a finite number")
        if abs(value) > MAX_ABS_ANGLE:
            raise bad(f"{text.strip()!r} is beyond ±{MAX_ABS_ANGLE:,.0f} degrees")
        return value

    angles: set[float] = set()
    for item in spec.split(","):
        if not item.strip():
            raise bad("empty item")
        parts = item.split(":")
        if len(parts) == 1:
            angles.add(number(parts[0]))
        elif len(parts) == 3:
            start, stop, step = (number(p) for p in parts)
            if step <= 0:
                raise bad(f"step {step:g} must be positive")
            if stop < start:
                raise bad(f"stop {stop:g} is below start {start:g}")
            span = (stop - start) / step  # a tiny step overflows
            if not math.isfinite(span) or span + 1 > MAX_ANGLES:
                raise bad(f"{span + 1:.3g} angles is too many (at most {MAX_ANGLES})")
            angles.update(round(start + i * step, 9) for i in range(math.floor(span + 1e-9) + 1))
        else:
            raise bad(f"{item.strip()!r} is neither a number nor a START:STOP:STEP range")
        if len(angles) > MAX_ANGLES:
            raise bad(f"more than {MAX_ANGLES} angles")
    return sorted(angles)


def parse_modes(spec: str) -> list[str]:
    """``plain,p4,augmented-tta`` -> the modes in the order given (``both`` = plain,augmented)."""
    names: list[str] = []
    for item in (i.strip() for i in spec.split(",")):
        if item in RENAMED:
            raise OptionError(f"{{mode}} {{item}} is now {RENAMED[item]}; use {MODES_FORM}", item=repr(item))
        if item not in MODES and item not in ALIASES:
            raise OptionError(f"unknown {{mode}} {{item}}; use {MODES_FORM}", item=repr(item))
        names += ALIASES.get(item, (item,))
    return list(dict.fromkeys(names))


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies in it, links followed (the files need not exist)."""
    p, f = resolve_path(path), resolve_path(folder)
    if p.exists() and f.exists() and os.path.samefile(p, f):
        return True
    return p == f or f in p.parents


@dataclass
class RotationOptions:
    """`hw2 rotate-eval`: each mode's CNN trained (or loaded) and tested on rotated test sets."""

    dataset: str = option(
        "cifar10",
        "cifar10, digits (offline, scikit-learn) or imagefolder:PATH (PATH/train and PATH/test, one "
        "sub-folder per class).",
    )
    data_dir: str | None = option(
        None,
        "Cache folder for CIFAR-10.",
        path=True,
        show_default="$HW2_CACHE_DIR, else $XDG_CACHE_HOME/hw2, else ~/.cache/hw2",
    )
    epochs: int = option(10, shared.EPOCHS)
    angles: str = option(
        "0:360:30",
        "Test angles in degrees: START:STOP:STEP (STOP included) and/or a comma list.",
        metavar="ANGLES",
    )
    mode: str = option(
        "both",
        "plain, augmented, p4, p4-augmented, augmented-tta, plain-tta, comma-separated, or both "
        "(= plain,augmented). augmented trains on randomly turned images, p4 is the rotation-"
        "equivariant CNN, augmented-tta averages the augmented model's softmax over turned copies "
        "(the TTA to use), plain-tta the same over the plain model (an ablation).",
        metavar="MODES",
    )
    tta_angles: str = option(
        "0,90,180,270",
        "Angles (degrees) the TTA modes average over, written as the test angles.",
        metavar="ANGLES",
    )
    batch_size: int = option(64, shared.BATCH_SIZE)
    lr: float = option(1e-3, shared.LR)
    seed: int = option(0, shared.SEED)
    device: str = option("auto", shared.DEVICE)
    precision: str = option("fp32", shared.PRECISION.with_choices("fp32", "bf16"))
    save_models: str | None = option(
        None, "Save the trained models (safetensors + config.json) here.", path=True
    )
    load_models: str | None = option(
        None, "Load the models saved in this folder (by an earlier run) instead of training.", path=True
    )
    force: bool = option(False, shared.FORCE)

    def __post_init__(self) -> None:
        check(self)
        if self.dataset not in ("cifar10", "digits") and not self.imagefolder:
            raise OptionError(f"unknown {{dataset}} {{name}}; use {DATASETS_FORM}", name=repr(self.dataset))
        self.modes, self.angle_list, self.tta_list  # noqa: B018 -- a bad list refused before any work
        paths = dict(path=str(self.save_models), loaded=str(self.load_models), name=self.dataset)
        if self.save_models is not None and self.in_data_set(self.save_models):
            raise OptionError(
                "{save_models} {path} lies in the data set {dataset} {name} that rotate-eval reads; "
                "save the models outside it",
                **paths,
            )
        both = self.save_models is not None and self.load_models is not None
        if both and inside(self.save_models, self.load_models) and inside(self.load_models, self.save_models):
            raise OptionError(
                "{save_models} {path} and {load_models} {loaded} are the same folder: the models "
                "loaded would be replaced; save into another folder",
                **paths,
            )

    @property
    def modes(self) -> list[str]:
        return parse_modes(self.mode)

    @property
    def angle_list(self) -> list[float]:
        return parse_angles(self.angles, "angles")

    @property
    def tta_list(self) -> list[float]:
        return parse_angles(self.tta_angles, "tta_angles")

    def in_data_set(self, path: str | Path) -> bool:
        """Whether ``path`` lies in the train/ or test/ folder of an ``imagefolder:PATH`` data set
        (a new file there would change the data; an old one is read)."""
        folder = self.imagefolder
        return folder is not None and any(inside(path, folder / split) for split in ("train", "test"))

    @property
    def imagefolder(self) -> Path | None:
        """The folder of an ``imagefolder:PATH`` data set (None for the others, and for no PATH)."""
        prefix = "imagefolder:"
        path = self.dataset.removeprefix(prefix)
        return Path(path) if self.dataset.startswith(prefix) and path else None
