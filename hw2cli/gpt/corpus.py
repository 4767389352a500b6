"""The default corpus, Grimm's fairy tales (Gutenberg eBook 2591, or ``$HW2_GRIMM_URL``),
downloaded once into hw2's cache and stripped of Gutenberg's header and licence."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from hw2cli.common.cache import cache_dir
from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import atomic_write_text
from hw2cli.common.options import OptionError

GRIMM_URL = "https://www.gutenberg.org/cache/epub/2591/pg2591.txt"
GRIMM_FILE = "grimms_fairy_tales.txt"


def grimm_path(cache: Path | None = None) -> Path:
    """Where the cleaned Grimm text is cached (it may not be there yet)."""
    return (cache or cache_dir()) / GRIMM_FILE


def strip_gutenberg(text: str) -> str:
    """Drop a byte-order mark and Project Gutenberg's header and licence, when present."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith("*** START OF")), None)
    end = next((i for i, line in enumerate(lines) if line.startswith("*** END OF")), None)
    if start is not None and end is not None and start < end:
        lines = lines[start + 1 : end]
    return "\n".join(lines).strip("\n") + "\n"


def default_corpus(url: str | None = None, cache: Path | None = None, timeout: float = 30.0) -> Path:
    """Path of the cached Grimm text, downloading and cleaning it on first use."""
    url = url or os.environ.get("HW2_GRIMM_URL") or GRIMM_URL
    path = grimm_path(cache)
    if path.is_file():
        return path
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            raw = response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OptionError(
            f"cannot download Grimm's fairy tales from {url} ({reason}); "
            "give a local UTF-8 text with {txt_file}"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise OptionError(
            f"{url} did not return UTF-8 text; give a local UTF-8 text with {{txt_file}}"
        ) from None
    try:
        atomic_write_text(path, strip_gutenberg(text))
    except OSError as exc:
        raise Hw2Error(
            f"cannot write the downloaded text to {path} ({exc.strerror}); set HW2_CACHE_DIR to a writable folder"
        ) from None
    return path
