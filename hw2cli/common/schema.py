"""The one validation layer of every file hw2 reads back (run directories, models folders, part
manifests, every ``--json`` result): a bad key, type, range or tensor shape is one Hw2Error
line naming the file and the field. Pydantic because the schemas read like the files, strict
mode refuses ``"3"`` for an int and each error carries the field's path. A ``--json`` result
is read back into its result dataclass (:func:`build`, checked by :func:`load` against what
the rebuilt result writes: a hand-edited mean is refused)."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import open_regular
from hw2cli.common.options import describe_range

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


# ----------------------------------------------------------------------------- --json results


class ResultError(Hw2Error):
    """A value of a result file that is missing, mistyped, out of range or inconsistent."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"field {field or '(top level)'}: {problem}")


def _join(at: str, *loc: object) -> str:
    return ".".join(str(part) for part in (at, *loc) if str(part) != "")


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_finite(data: Any, at: str = "") -> None:
    """Refuse an infinite or NaN number anywhere in ``data`` (``1e400`` reads as infinity)."""
    if isinstance(data, float) and not math.isfinite(data):
        raise ResultError(at, f"{data} is not a finite number")
    if isinstance(data, dict):
        for key, value in data.items():
            check_finite(value, _join(at, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            check_finite(value, _join(at, i))


_adapter = functools.cache(TypeAdapter)


def _validated(validate: Callable[..., T], value: Any, at: str, back: dict[str, str] | None = None) -> T:
    """``validate`` of ``value`` as JSON text (strict JSON types); pydantic's first error as a
    ResultError at its field (``back``: field -> file key)."""
    try:
        return validate(json.dumps(value), strict=True)
    except ValidationError as exc:
        loc, msg = first_error(exc)
        loc = ((back or {}).get(loc[0], loc[0]), *loc[1:]) if loc else ()
        raise ResultError(_join(at, *loc), msg) from None


def typed(value: Any, hint: Any, at: str = "") -> Any:
    """``value`` checked against type ``hint``, as pydantic returns it."""
    check_finite(value, at)
    return _validated(_adapter(hint).validate_json, value, at)


_ATTR = "f_"


@functools.cache
def _schema(cls: type, given: frozenset[str]) -> Any:
    """The schema of dataclass ``cls``'s fields but ``given`` (files may gain keys)."""
    return from_dataclass(cls, cls.__name__, base=Known, skip=given, prefix=_ATTR)


def build(cls: type[T], data: Any, at: str = "", rename: dict[str, str] | None = None, **given: Any) -> T:
    """Dataclass ``cls`` from the JSON object ``data``, each field from the key of its name
    (``rename``: file key -> field) typed by ``cls``'s hints; ``given`` fields are taken as
    they are (what the caller rebuilt itself)."""
    _object(data, at)
    check_finite(data, at)
    rename = rename or {}
    values = {rename.get(k, k): v for k, v in data.items() if rename.get(k, k) not in given}
    back = {field: key for key, field in rename.items()}
    parsed = _validated(_schema(cls, frozenset(given)).model_validate_json, values, at, back)
    fields = {name.removeprefix(_ATTR): getattr(parsed, name) for name in type(parsed).model_fields}
    return cls(**fields, **given)


def within(value: float, low: float | None, high: float | None, at: str) -> None:
    """Refuse ``value`` outside ``low`` to ``high`` (inclusive; None: no bound)."""
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = describe_range(low, high, lambda x: f"{x:g}")
        raise ResultError(at, f"{value:g} is out of range; hw2 writes {bounds}")


def one_of(value: Any, choices: Iterable[Any], at: str) -> None:
    """Refuse ``value`` when it is not one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ResultError(at, f"{_short(value)} is not one of {', '.join(map(str, choices))}")


def _object(data: Any, at: str) -> None:
    if not isinstance(data, dict):
        raise ResultError(at, f"is {_short(data)}, not an object")


def require(data: dict, key: str, at: str = "") -> Any:
    _object(data, at)
    if key not in data:
        raise ResultError(_join(at, key), "field required")
    return data[key]


def disagreement(written: Any, again: Any, at: str = "") -> str | None:
    """The first field whose value in the file (``written``) differs from the rebuilt result's
    (``again``), with both values; None when they agree. Only keys on both sides count, in the
    file's order (the same field named on every run); numbers compare as numbers, floats to 12
    digits."""
    if isinstance(written, dict) and isinstance(again, dict):
        pairs = ((written[key], again[key], _join(at, key)) for key in written if key in again)
        return next(filter(None, (disagreement(*pair) for pair in pairs)), None)
    if isinstance(written, list) and isinstance(again, list):
        if len(written) != len(again):
            return f"field {at}: has {len(written)} entries, but the rest of the file gives {len(again)}"
        pairs = ((a, b, _join(at, i)) for i, (a, b) in enumerate(zip(written, again, strict=True)))
        return next(filter(None, (disagreement(*pair) for pair in pairs)), None)
    if all(isinstance(x, int | float) and not isinstance(x, bool) for x in (written, again)):
        same = math.isclose(written, again, rel_tol=1e-12, abs_tol=1e-300)
    else:
        same = type(written) is type(again) and written == again
    if same:
        return None
    return f"field {at}: is {_short(written)}, but the rest of the file gives {_short(again)}"


def load(
    path: str | Path,
    from_json: Callable[[Any], T],
    to_json: Callable[[T], dict],
    fix: str,
    upgrade: Callable[[Any], Any] | None = None,
) -> T:
    """The result in ``--json`` file ``path``, rebuilt by ``from_json`` and checked against
    ``to_json`` (one Hw2Error line naming the file, the field and ``fix``); ``upgrade`` turns
    an older format into the current one first."""
    path = Path(path)
    data = parse_json(path, fix)
    try:
        if upgrade is not None:
            data = upgrade(data)
        result = from_json(data)
        problem = disagreement(data, to_json(result))
    except ResultError as exc:
        raise Hw2Error(f"{path}: {exc}; {fix}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # a shape from_json missed
        raise Hw2Error(f"{path} is not a result hw2 wrote ({type(exc).__name__}: {exc}); {fix}") from None
    if problem is not None:
        raise Hw2Error(f"{path}: {problem}; {fix}")
    return result


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
