"""The one validation layer of every file hw2 reads back (run directories, models folders, part
manifests and, through hw2cli.common.readback, every ``--json`` result): a bad key, type,
range or tensor shape is one Hw2Error line naming the file and the field. Pydantic because
the schemas read like the files, strict mode refuses ``"3"`` for an int and each error
carries the field's path."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import open_regular

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

MAX_FILE_BYTES = 64 << 20  # JSON and CSV files hw2 writes are far smaller


class Strict(BaseModel):
    """A file hw2 owns: every key declared, types exact (``model_type`` is a field of ours)."""

    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())


class Known(BaseModel):
    """A file that may gain keys: the fields read are declared and typed, others ignored."""

    model_config = ConfigDict(extra="ignore", strict=True, protected_namespaces=())


Count = Annotated[int, Field(ge=0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]


class FileEntry(Strict):
    size: Count
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class WrittenFile(Strict):  # how hw2 left a file it wrote: another size or time is someone else's
    size: Count
    mtime_ns: Count


class WrittenFiles(Strict):
    """A folder's marker (hw2cli.common.io.MARKER): the files hw2 wrote there."""

    format: Literal["hw2 written files"]
    files: dict[Annotated[str, Field(pattern=r"^[^/\x00]{1,255}$")], WrittenFile] = {}


class ManifestFields(Strict):
    """What :func:`hw2cli.common.rundir.commit` adds to a manifest."""

    files: dict[FileName, FileEntry] | None = None
    staged: list[FileName] = []
    remove: list[FileName] = []


# ----------------------------------------------------------------------------- reading


def first_error(exc: ValidationError) -> tuple[tuple, str]:
    """The field's path of pydantic's first error, and what it says, as hw2 says it."""
    err = exc.errors()[0]
    msg = err["msg"].removeprefix("Value error, ")
    return tuple(err["loc"]), msg[0].lower() + msg[1:]


def _one_line(exc: ValidationError) -> str:
    loc, msg = first_error(exc)
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"field {'.'.join(map(str, loc)) or '(top level)'}: {msg}{more}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_text(path: Path, fix: str) -> str:
    """The UTF-8 text of regular file ``path`` (at most MAX_FILE_BYTES), or one line naming it."""
    try:
        with open(open_regular(path), "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise Hw2Error(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB, not a file hw2 wrote; {fix}")
        return data.decode("utf-8")
    except FileNotFoundError:
        raise Hw2Error(f"{path} is missing; {fix}") from None
    except UnicodeDecodeError as exc:
        raise Hw2Error(f"{path} is not UTF-8 text (byte {exc.start}); {fix}") from None
    except OSError as exc:
        raise Hw2Error(f"cannot read {path} ({exc.strerror}); {fix}") from None


def parse_json(path: Path, fix: str) -> Any:
    """The JSON value of ``path``; NaN and Infinity are refused (they are not JSON)."""
    text = read_text(path, fix)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # also an integer of over 4,300 digits
        raise Hw2Error(f"{path} is not valid JSON ({str(exc).splitlines()[0]}); {fix}") from None
    except RecursionError:
        raise Hw2Error(f"{path} nests its brackets too deep for a file hw2 wrote; {fix}") from None


def validate(path: Path, model: type[M], data: Any, fix: str, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Hw2Error(f"{path}: {prefix}{_one_line(exc)}; {fix}") from None


def load_json(path: str | os.PathLike, model: type[M], fix: str) -> M:
    path = Path(path)
    return validate(path, model, parse_json(path, fix), fix)


def load_csv(path: str | os.PathLike, row_model: type[M], fields: tuple[str, ...], fix: str) -> list[M]:
    """A CSV whose header is exactly ``fields``, each row validated (lax: CSV is text)."""
    path = Path(path)
    try:  # csv.Error: a field beyond csv's size limit, a quote left open
        table = list(csv.reader(read_text(path, fix).splitlines()))
    except csv.Error as exc:
        raise Hw2Error(f"{path} is not a CSV file hw2 wrote ({exc}); {fix}") from None
    header = table[0] if table else None
    if header is None or tuple(header) != fields:
        got, want = ",".join(header or []), ",".join(fields)
        got = got if len(got) <= 80 else got[:77] + "..."
        raise Hw2Error(f"{path}: the header is {got!r}, expected {want!r}; {fix}")
    rows = []
    for number, values in enumerate(table[1:], start=2):
        if len(values) != len(fields):
            raise Hw2Error(f"{path}: line {number} has {len(values)} fields, expected {len(fields)}; {fix}")
        data = {k: (None if v == "" else v) for k, v in zip(fields, values, strict=True)}
        try:
            rows.append(row_model.model_validate(data, strict=False))
        except ValidationError as exc:
            raise Hw2Error(f"{path}: line {number}, {_one_line(exc)}; {fix}") from None
    return rows


def construct(path: Path, field: str, build: Callable[[], T], fix: str) -> T:
    """Run a constructor's own checks (``__post_init__``) on validated data, naming the file."""
    try:
        return build()
    except (ValueError, TypeError) as exc:  # Hw2Error is a ValueError
        raise Hw2Error(f"{path}: field {field}: {str(exc).split('; ')[0]}; {fix}") from None


def from_dataclass(
    cls: type,
    name: str,
    bounds: dict[str, Any] | None = None,
    legacy: dict[str, Any] | None = None,
    *,
    base: type[BaseModel] | None = None,
    skip: frozenset[str] = frozenset(),
    prefix: str = "",
) -> type[BaseModel]:
    """A schema (``base``, default :class:`Strict`) with the init fields of dataclass ``cls`` but
    ``skip``, so a file's schema follows its dataclass; ``bounds``: range constraints;
    ``legacy``: keys older files may hold; ``prefix`` renames the attributes (a field may be
    called ``model_config``), each still read from its field's key."""
    hints = typing.get_type_hints(cls, include_extras=True)  # Annotated types keep their validators
    spec: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        annotation = hints[f.name]
        if bounds and f.name in bounds:
            annotation = Annotated[annotation, bounds[f.name]]
        alias = {"alias": f.name} if prefix else {}
        if f.default is not dataclasses.MISSING:
            default = Field(f.default, **alias)
        elif f.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=f.default_factory, **alias)
        else:
            default = Field(**alias)
        spec[prefix + f.name] = (annotation, default)
    for key, annotation in (legacy or {}).items():
        if key not in spec:
            spec[key] = (annotation | None, None)
    return create_model(name, __base__=base or Strict, **spec)


def spec_bounds(options: type, **fields: str) -> dict[str, Any]:
    """:func:`from_dataclass`'s ``bounds`` from the Specs of ``options`` (every field with a range,
    and ``fields``: file field -> options field), so a file's limits are the options' own."""
    from hw2cli.common.options import specs

    ranges = specs(options)
    pairs = {**{name: name for name in ranges}, **fields}
    return {
        key: Field(ge=spec.min, le=spec.max)
        for key, name in pairs.items()
        if (spec := ranges[name]).min is not None or spec.max is not None
    }


# ----------------------------------------------------------------------------- tensors


def tensor_shapes(path: Path, fix: str, what: str = "model file") -> dict[str, tuple[int, ...]]:
    """Names and shapes from a safetensors header (nothing loaded), or one line naming the file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except FileNotFoundError:
        raise Hw2Error(f"{path} is missing; {fix}") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise Hw2Error(f"cannot read {what} {path} ({first}); {fix}") from None


def check_tensors(
    path: Path, expected: dict[str, tuple[int, ...]], against: str, fix: str, what: str = "model file"
) -> None:
    """Refuse a safetensors file whose tensor names or shapes differ from ``expected``."""
    got = tensor_shapes(path, fix, what)
    problems = [f"{k} missing" for k in expected if k not in got]
    problems += [f"unexpected {k}" for k in got if k not in expected]
    problems += [
        f"{k} is {list(got[k])}, needs {list(expected[k])}"
        for k in expected
        if k in got and got[k] != expected[k]
    ]
    if problems:
        shown = ", ".join(problems[:3]) + (", ..." if len(problems) > 3 else "")
        raise Hw2Error(f"{what} {path} does not match the {against} ({shown}); {fix}")
