"""The CLI process's surroundings, set up by hw2cli/main.py (never in a notebook): a deleted
working folder in one line (oneMKL would print a fatal error), plain characters where the
encoding lacks '²' (``LC_ALL=C``), a ``ulimit -v`` too low for torch refused before its C++
start-up aborts uncatchably, matplotlib's log quiet."""

from __future__ import annotations

import codecs
import contextlib
import importlib.abc
import logging
import os
import resource
import sys
import unicodedata

from hw2cli.common.errors import Hw2Error

#: Characters hw2 prints whose plain spelling reads better than what NFKD gives (or nothing).
PLAIN = dict(zip("²³→←✓✗≈×−–—…·≤≥±√", "^2 ^3 -> <- ok x ~ x - - - ... . <= >= +/- sqrt".split(), strict=True))
ERRORS = "hw2-plain"
#: The least address space torch loads in (measured 3.3-3.5 GiB with torch 2.9 on Linux).
TORCH_ADDRESS_SPACE = 7 << 29


def check_working_folder() -> None:
    """Exit 2 with one line when the working folder no longer exists."""
    try:
        os.getcwd()
    except OSError as exc:
        print(
            f"error: the working folder no longer exists ({exc.strerror}); cd to a folder that exists and rerun",
            file=sys.stderr,
        )
        sys.exit(2)


def _plain(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    plain = (
        PLAIN.get(c) or unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() or "?"
        for c in text
    )
    return "".join(plain), error.end


def use_plain_fallback() -> None:
    """Standard output and error write plain characters for what their encoding lacks."""
    codecs.register_error(ERRORS, _plain)
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if encoding and codecs.lookup(encoding).name not in ("utf-8", "utf-16", "utf-32"):
            with contextlib.suppress(AttributeError, ValueError):  # not a TextIOWrapper: as it is
                stream.reconfigure(errors=ERRORS)


def quiet_libraries() -> None:
    """Only errors from matplotlib's logger (see the module docstring)."""
    logging.getLogger("matplotlib").setLevel(logging.ERROR)


class _TorchGuard(importlib.abc.MetaPathFinder):
    """Refuses the first import of torch when ``ulimit -v`` leaves too little to load it."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            soft = resource.getrlimit(resource.RLIMIT_AS)[0]
            if soft != resource.RLIM_INFINITY and soft < TORCH_ADDRESS_SPACE:
                raise Hw2Error(
                    f"the address-space limit (ulimit -v {soft >> 10}) is too low to load torch, which needs "
                    f"about {TORCH_ADDRESS_SPACE / 2**30:.1f} GiB; raise it (ulimit -v unlimited)"
                )
        return None


def guard_torch_import() -> None:
    """Install :class:`_TorchGuard` (once; only where a limit is set and torch is not loaded)."""
    if "torch" not in sys.modules and resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY:
        sys.meta_path.insert(0, _TorchGuard())
