"""Reading a ``--json`` result back into its family's result type.

Each family's render module pairs ``to_json(result)`` with ``from_json(data)``; the helpers
here are what every ``from_json`` is made of, so that the result's own dataclass is the one
declaration of what its file holds (no parallel schema to drift):

* :func:`build` makes a dataclass from a JSON object, typed by the dataclass's own hints
  (pydantic, strict JSON types: ``"5e-4"`` is not a number, ``2.0`` not an int; keys that are
  not fields are ignored, so files may gain keys);
* :func:`typed` checks one value against a type; :func:`within` and :func:`one_of` check a
  declared range or choice;
* :func:`load` reads a file, refuses numbers JSON cannot carry (``1e400`` parses as
  infinity; hw2 writes null there), rebuilds the result and checks that every value of the
  file is what the rebuilt result gives back: a hand-edited ``ok``, mean or worst angle that
  disagrees with the rows it summarises is refused.

Every problem is a :class:`ResultError` naming the field (``models.plain.accuracy.0``);
:func:`load` adds the file and the fix, one line.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from hw2cli.common.errors import Hw2Error

T = TypeVar("T")


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
    """Refuse an infinite or NaN number anywhere in ``data`` (JSON has none; ``1e400`` reads as
    infinity)."""
    if isinstance(data, float) and not math.isfinite(data):
        raise ResultError(at, f"{data} is not a finite number")
    if isinstance(data, dict):
        for key, value in data.items():
            check_finite(value, _join(at, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            check_finite(value, _join(at, i))


@functools.cache
def _adapter(hint: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(hint)


def typed(value: Any, hint: Any, at: str = "") -> Any:
    """``value`` checked against the type ``hint`` (strict JSON types), as pydantic returns it
    (a dataclass hint gives its instance, a ``tuple`` hint a tuple)."""
    from pydantic import ValidationError

    check_finite(value, at)
    try:
        return _adapter(hint).validate_json(json.dumps(value), strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        raise ResultError(_join(at, *err["loc"]), msg[0].lower() + msg[1:]) from None


@functools.cache
def _schema(cls: type, given: frozenset[str]) -> Any:
    """A pydantic model with the fields (types, defaults) of dataclass ``cls`` but ``given``."""
    from pydantic import BaseModel, ConfigDict, Field, create_model

    class Base(BaseModel):
        model_config = ConfigDict(extra="ignore", strict=True)

    hints = typing.get_type_hints(cls, include_extras=True)  # Annotated types keep their validators
    spec: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in given or not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = Field(f.default, alias=f.name)
        elif f.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=f.default_factory, alias=f.name)
        else:
            default = Field(alias=f.name)
        spec[_ATTR + f.name] = (hints[f.name], default)  # prefixed: a field may be called model_config
    return create_model(cls.__name__, __base__=Base, **spec)


_ATTR = "f_"


def build(cls: type[T], data: Any, at: str = "", rename: dict[str, str] | None = None, **given: Any) -> T:
    """An instance of dataclass ``cls`` from the JSON object ``data``.

    Each field is read from the key of its name (``rename`` maps a file's key to the field it
    fills) and typed by ``cls``'s hints; fields passed in ``given`` are taken as they are (what
    the caller rebuilt itself, or types JSON cannot hold such as arrays)."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise ResultError(at, f"is {_short(data)}, not an object")
    check_finite(data, at)
    rename = rename or {}
    values = {rename.get(k, k): v for k, v in data.items() if rename.get(k, k) not in given}
    back = {field: key for key, field in rename.items()}
    try:
        parsed = _schema(cls, frozenset(given)).model_validate_json(json.dumps(values))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [back.get(err["loc"][0], err["loc"][0]), *err["loc"][1:]] if err["loc"] else []
        msg = err["msg"].removeprefix("Value error, ")
        raise ResultError(_join(at, *loc), msg[0].lower() + msg[1:]) from None
    fields = {name.removeprefix(_ATTR): getattr(parsed, name) for name in type(parsed).model_fields}
    return cls(**fields, **given)


def within(value: float, low: float | None, high: float | None, at: str) -> None:
    """Refuse ``value`` outside ``low`` to ``high`` (inclusive; None: no bound)."""
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"{low:g} to {high:g}"
            if low is not None and high is not None
            else (f"at least {low:g}" if low is not None else f"at most {high:g}")
        )
        raise ResultError(at, f"{value:g} is out of range; hw2 writes {bounds}")


def one_of(value: Any, choices: Iterable[Any], at: str) -> None:
    """Refuse ``value`` when it is not one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ResultError(at, f"{_short(value)} is not one of {', '.join(map(str, choices))}")


def require(data: dict, key: str, at: str = "") -> Any:
    """``data[key]``, or a ResultError naming the missing field."""
    if not isinstance(data, dict):
        raise ResultError(at, f"is {_short(data)}, not an object")
    if key not in data:
        raise ResultError(_join(at, key), "field required")
    return data[key]


def disagreement(written: Any, again: Any, at: str = "") -> str | None:
    """The first field whose value in the file (``written``) differs from what the rebuilt
    result gives back (``again``), with both values; None when they agree. Only fields present
    on both sides count (files may hold keys the writer adds, such as ``threads``); numbers are
    compared as numbers (``3`` equals ``3.0``; floats to 12 digits, which a computed mean keeps)."""
    if isinstance(written, dict) and isinstance(again, dict):
        for key in written.keys() & again.keys():
            found = disagreement(written[key], again[key], _join(at, key))
            if found is not None:
                return found
        return None
    if isinstance(written, list) and isinstance(again, list):
        if len(written) != len(again):
            return f"field {at}: has {len(written)} entries, but the rest of the file gives {len(again)}"
        for i, (a, b) in enumerate(zip(written, again, strict=True)):
            found = disagreement(a, b, _join(at, i))
            if found is not None:
                return found
        return None
    numbers = (int, float)
    if (
        isinstance(written, numbers)
        and isinstance(again, numbers)
        and not isinstance(written, bool)
        and not isinstance(again, bool)
    ):
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
    """The result stored in ``path`` (a ``--json`` file), rebuilt by ``from_json`` and checked
    against ``to_json``; any problem is one Hw2Error line naming the file, the field and ``fix``.
    ``upgrade`` is the family's ``upgrade_json`` where older files differ from the current
    format: the file is compared in its upgraded form."""
    from hw2cli.common.schema import parse_json

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
