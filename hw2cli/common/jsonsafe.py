"""JSON every reader accepts (jq and browsers refuse ``NaN``): non-finite floats become ``null``,
listed in a top-level ``"non_finite"`` list (``{"path": "a.b[3]", "value": "nan"}``) so that a
missing number reads apart from a diverged one."""

from __future__ import annotations

import json
import math
import os
from typing import Any


def _plain(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return obj.tolist()
    return obj


def json_safe(obj: Any) -> tuple[Any, list[dict]]:
    """``obj`` with every non-finite float replaced by None, and the list of what was replaced."""
    found: list[dict] = []

    def walk(x: Any, path: str) -> Any:
        x = _plain(x)
        if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
            return x
        if isinstance(x, float):
            if math.isfinite(x):
                return x
            found.append({"path": path or "$", "value": "nan" if x != x else ("inf" if x > 0 else "-inf")})
            return None
        if isinstance(x, complex):
            return walk({"real": x.real, "imag": x.imag}, path)
        if isinstance(x, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(x)]
        raise TypeError(f"cannot write {type(x).__name__} as JSON")

    return walk(obj, ""), found


def dumps(obj: Any, indent: int | None = 2) -> str:
    """Valid JSON text of ``obj``; non-finite numbers become null, listed in ``"non_finite"``."""
    safe, found = json_safe(obj)
    if found:
        safe = {**(safe if isinstance(safe, dict) else {"value": safe}), "non_finite": found}
    return json.dumps(safe, indent=indent, allow_nan=False)
