"""One source of truth for every option: each family's options dataclass declares its fields
with :func:`option`, whose :class:`Spec` carries the help text, the range or the choices and
the shown default. The library validates with it (:func:`check`), the CLI derives its Typer
options from it (``hw2cli.commands._options``), so ``--help`` can never promise a value that
the library then refuses (tests/test_options.py walks every command to check that).

Library errors about an option name its *field* (``dropout must lie in 0 to 0.99``); the CLI
turns the field into its flag (``--dropout ...``) in one place. No torch, no Typer here.

Flags used by several families (``--seed``, ``--device``, ``--precision``, ``--epochs``,
``--batch-size``, ``--lr``, ``--txt-file``, ``--force``, ``--out``) have one :class:`Spec` each below, so
they read and behave the same everywhere.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hw2cli.common.errors import Hw2Error

SEED_MAX = 2**32 - 1  # every generator in use takes it; derived seeds stay exact in JSON


@dataclass(frozen=True)
class Spec:
    """How one option looks and what it accepts.

    ``min``/``max`` are inclusive (Click's ranges are); ``choices`` lists the accepted strings
    (the CLI shows them as an Enum); ``flag`` defaults to ``--field-name``; ``path`` makes the
    CLI parse a path (the library keeps a ``str``); ``argument`` makes it positional;
    ``cli=False`` keeps a field for library callers only (e.g. what a probe varies)."""

    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    short: str | None = None
    show_default: bool | str = True
    metavar: str | None = None
    path: bool = False
    argument: bool = False
    cli: bool = True

    def with_choices(self, *choices: str) -> Spec:
        """The same option accepting fewer of its values (one family supports only these)."""
        return dataclasses.replace(self, choices=choices)

    def describe_range(self) -> str | None:
        """``1 to 65,536``, ``at least 0`` ... as the error messages say it."""
        low, high = (None if x is None else _fmt(x) for x in (self.min, self.max))
        if low is not None and high is not None:
            return f"{low} to {high}"
        if low is not None:
            return f"at least {low}"
        if high is not None:
            return f"at most {high}"
        return None


def _fmt(x: float) -> str:
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:g}"


def option(default: Any = dataclasses.MISSING, spec: Spec | str = "", **changes: Any) -> Any:
    """A dataclass field carrying its :class:`Spec` (give a Spec, or a help text and its
    keywords): ``block_size: int = option(128, "Context length.", min=1, max=65536)``."""
    if isinstance(spec, str):
        spec = Spec(help=spec, **changes)
    elif changes:
        spec = dataclasses.replace(spec, **changes)
    return dataclasses.field(default=default, metadata={"hw2": spec})


def spec_of(field: dataclasses.Field) -> Spec | None:
    return field.metadata.get("hw2")


def specs(cls_or_obj: Any) -> dict[str, Spec]:
    """Field name -> Spec of an options dataclass (fields without a Spec are left out)."""
    return {f.name: s for f in dataclasses.fields(cls_or_obj) if (s := spec_of(f)) is not None}


def flag_of(cls_or_obj: Any, name: str) -> str:
    """The command-line flag of field ``name``."""
    spec = specs(cls_or_obj).get(name)
    if spec is not None and spec.argument:
        return spec.metavar or name.upper()
    if spec is not None and spec.flag:
        return spec.flag
    return "--" + name.replace("_", "-")


class OptionError(Hw2Error):
    """Bad value of one or more options. ``text`` names each option as ``{field}``: ``str()``
    gives the field's name (library callers), the CLI its flag (:meth:`named`), e.g.
    ``OptionError("{normalized} needs an undirected graph; drop {directed}")``."""

    _FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)\}")

    def __init__(self, text: str) -> None:
        self.text = text
        self.fields = self._FIELD.findall(text)
        super().__init__(self.named(lambda field: field))

    def named(self, name_of: Callable[[str], str]) -> str:
        """The message with every ``{field}`` replaced by ``name_of(field)``."""
        return self._FIELD.sub(lambda m: name_of(m.group(1)), self.text)


def check(opts: Any) -> None:
    """Raise OptionError for the first field outside its Spec's range or choices.
    ``None`` passes (an optional field left to its computed default)."""
    for name, spec in specs(opts).items():
        check_value(name, spec, getattr(opts, name))


def check_value(name: str, spec: Spec, value: Any) -> None:
    """Raise OptionError when ``value`` is not one ``spec`` accepts."""
    if value is None:
        return
    if spec.choices is not None:
        if value not in spec.choices:
            raise OptionError(f"{{{name}}} {value!r} is not one of {', '.join(spec.choices)}")
        return
    if spec.min is None and spec.max is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptionError(f"{{{name}}} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(f"{{{name}}} {value} is not a finite number; use {spec.describe_range()}")
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        raise OptionError(f"{{{name}}} {_fmt(value)} is out of range; use {spec.describe_range()}")


# ----------------------------------------------------------------------------- shared flags

SEED = Spec(
    "Seed of every random number (weights, data order, sampling): same seed, same numbers.",
    min=0,
    max=SEED_MAX,
)
DEVICE = Spec(
    "Where to compute: auto (a CUDA GPU if there is one), cpu or cuda.", choices=("auto", "cpu", "cuda")
)
PRECISION = Spec(  # the CNN families take fp32 and bf16: PRECISION.with_choices(...)
    "Autocast precision (bf16 pays on GPUs and CPUs with AMX; fp16 needs CUDA).",
    choices=("fp32", "bf16", "fp16"),
)
EPOCHS = Spec("Passes over the training set.", min=1, max=100_000)
BATCH_SIZE = Spec("Training examples per optimizer step.", min=1, max=65_536)
LR = Spec("Learning rate (the peak, with a warm-up or decay).", min=1e-9, max=10.0)
TXT_FILE = Spec(
    "UTF-8 text to train on.",
    path=True,
    show_default="Grimm's fairy tales, downloaded once",
)
FORCE = Spec("Replace an earlier run in the output folder (its files go once the new one has a checkpoint).")
OUT = Spec(
    "Where the command writes what it makes: a run or reproduction folder, or the report file.",
    path=True,
)
