"""Where downloaded data is kept."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$HW2_CACHE_DIR``, else ``$XDG_CACHE_HOME/hw2``, else ``~/.cache/hw2`` (``~`` expanded)."""
    if env := os.environ.get("HW2_CACHE_DIR"):
        return Path(env).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "hw2"
    return Path.home() / ".cache" / "hw2"
