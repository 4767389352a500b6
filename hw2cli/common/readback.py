"""A ``--json`` result read back into its result dataclass, the one declaration of its file
(hw2cli.common.schema builds the schema from it): :func:`build` makes the dataclass from a JSON
object, :func:`typed`, :func:`within`, :func:`one_of` check one value, :func:`load` reads the
file and refuses a value that disagrees with what the rebuilt result gives back (a hand-edited
mean). A problem is a :class:`ResultError` naming the field (``models.plain.accuracy.0``)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import describe_range
from hw2cli.common.schema import Known, first_error, from_dataclass, parse_json

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
    """Refuse an infinite or NaN number anywhere in ``data`` (``1e400`` reads as infinity)."""
    if isinstance(data, float) and not math.isfinite(data):
        raise ResultError(at, f"{data} is not a finite number")
    if isinstance(data, dict):
        for key, value in data.items():
            check_finite(value, _join(at, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            check_finite(value, _join(at, i))


@functools.cache
def _adapter(hint: Any) -> TypeAdapter:
    return TypeAdapter(hint)


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


@functools.cache
def _schema(cls: type, given: frozenset[str]) -> Any:
    """The schema of dataclass ``cls``'s fields but ``given`` (files may gain keys)."""
    return from_dataclass(cls, cls.__name__, base=Known, skip=given, prefix=_ATTR)


_ATTR = "f_"


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
    (``again``), with both values; None when they agree. Only keys on both sides count;
    numbers compare as numbers, floats to 12 digits."""
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
