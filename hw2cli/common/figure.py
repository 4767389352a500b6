"""Saving matplotlib figures without touching matplotlib's global state."""

from __future__ import annotations

import os
from pathlib import Path

from hw2cli.common.io import atomic_path


def new_figure(**kwargs):
    """A ``matplotlib.figure.Figure``: no pyplot, so a notebook's backend is left alone."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", **kwargs)
    return Path(path)
