"""One source of truth for every option: an options dataclass declares each field with
:func:`option`, whose :class:`Spec` holds the help, the range or choices and the shown default.
The library validates with it (:func:`check`), the CLI derives its options from it
(``hw2cli.commands._options``): ``--help`` never promises what the library refuses. Library
errors name the *field* (``OptionError("{dropout} ...")``), the CLI its flag. No torch here."""

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
    """How one option looks and what it accepts: ``min``/``max`` inclusive, ``flag`` default
    ``--field-name``, ``path`` parsed as a path (kept a ``str``), ``argument`` positional,
    ``cli=False`` for library callers only."""

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


def _fmt(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def describe_range(low: float | None, high: float | None, fmt: Callable[[float], str] = _fmt) -> str | None:
    """``1 to 65,536``, ``at least 0``, ``at most 1`` (None: no bound), as every message says it."""
    if low is not None and high is not None:
        return f"{fmt(low)} to {fmt(high)}"
    if low is not None:
        return f"at least {fmt(low)}"
    return None if high is None else f"at most {fmt(high)}"


def option(default: Any = dataclasses.MISSING, spec: Spec | str = "", **changes: Any) -> Any:
    """A dataclass field carrying its :class:`Spec` (a Spec, or a help text and its keywords)."""
    if isinstance(spec, str):
        spec = Spec(help=spec, **changes)
    elif changes:
        spec = dataclasses.replace(spec, **changes)
    return dataclasses.field(default=default, metadata={"hw2": spec})


def spec_of(field: dataclasses.Field) -> Spec | None:
    return field.metadata.get("hw2")


def specs(cls_or_obj: Any) -> dict[str, Spec]:
    """Field name -> Spec of an options dataclass."""
    return {f.name: s for f in dataclasses.fields(cls_or_obj) if (s := spec_of(f)) is not None}


def default_flag(name: str) -> str:
    """``--field-name``: the flag of field ``name`` unless its Spec names another."""
    return "--" + name.replace("_", "-")


def flag_of(cls_or_obj: Any, name: str) -> str:
    """The command-line flag of field ``name``."""
    spec = specs(cls_or_obj).get(name) or Spec("")
    if spec.argument:
        return spec.metavar or name.upper()
    return spec.flag or default_flag(name)


class OptionError(Hw2Error):
    """Bad value of options, named ``{field}`` in ``text``: ``str()`` says the field's name, the
    CLI its flag (:meth:`named`). ``values`` fill the ``{name}``s that are no field, as they are
    (a path, whatever braces it holds)."""

    _FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)\}")

    def __init__(self, text: str, **values: str) -> None:
        self.text, self.values = text, values
        self.fields = [f for f in self._FIELD.findall(text) if f not in values]
        super().__init__(self.named(lambda field: field))

    def named(self, name_of: Callable[[str], str]) -> str:
        """The message with every ``{field}`` replaced by ``name_of(field)``."""
        return self._FIELD.sub(
            lambda m: self.values[m[1]] if m[1] in self.values else name_of(m[1]), self.text
        )


def check(opts: Any) -> None:
    """OptionError for the first field outside its Spec (None passes: a computed default)."""
    for name, spec in specs(opts).items():
        check_value(name, spec, getattr(opts, name))


def check_value(name: str, spec: Spec, value: Any) -> None:
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
    valid = describe_range(spec.min, spec.max)
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(f"{{{name}}} {value} is not a finite number; use {valid}")
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        raise OptionError(f"{{{name}}} {_fmt(value)} is out of range; use {valid}")


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
