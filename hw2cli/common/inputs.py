"""The files a user names as input: one bound and one set of messages. At most
:data:`MAX_INPUT_BYTES` is read (``/dev/zero`` cannot make hw2 read forever)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hw2cli.common.options import OptionError

#: The most hw2 reads of one input file.
MAX_INPUT_BYTES = 256 << 20


def kind_of(mode: int) -> str:
    for test, kind in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def size_text(n: float) -> str:
    """Bytes for a message: ``1,000 bytes``, ``256 MiB``, ``1.6 PiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            break
        n /= 1024
    return f"{n:,.0f} bytes" if unit == "bytes" else f"{n:,.1f}".removesuffix(".0") + f" {unit}"


def shorten(text: str, keep: int = 40) -> str:
    return text if len(text) <= keep else f"{text[: keep // 2]}...{text[-keep // 2 :]}"


def stat_input(path: str | os.PathLike, what: str) -> os.stat_result:
    """``os.stat`` of an input, or one line: missing, or why it cannot be read."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise OptionError(f"{what} {{path}} does not exist; check the path", path=str(path)) from None
    except OSError as exc:
        raise OptionError(
            f"cannot read {what} {{path}}: {exc.strerror}; check the path", path=shorten(str(path))
        ) from None


def check_input(path: str | os.PathLike, what: str, pipes: bool = True) -> Path:
    """Refuse, unread, an input that is missing, a directory, too large, or (``pipes`` False:
    read again on a resume) not a regular file; ``what`` may be a ``{field}``."""
    path = Path(path)
    st = stat_input(path, what)
    if stat.S_ISDIR(st.st_mode):
        raise OptionError(f"{what} {{path}} is a directory; give a file", path=str(path))
    if not stat.S_ISREG(st.st_mode) and not pipes:
        raise OptionError(
            f"{what} {{path}} is {kind_of(st.st_mode)}, not a file hw2 can read again; save the text "
            "to a file and give that",
            path=str(path),
        )
    if stat.S_ISREG(st.st_mode) and st.st_size > MAX_INPUT_BYTES:
        raise _too_large(what, path)
    return path


def _too_large(what: str, path: Path) -> OptionError:
    return OptionError(
        f"{what} {{path}} is larger than {size_text(MAX_INPUT_BYTES)}, the most hw2 reads; give a smaller file",
        path=str(path),
    )


def read_input(path: str | os.PathLike, what: str, pipes: bool = True) -> bytes:
    """The bytes of an input (:func:`check_input`); a pipe is read up to MAX_INPUT_BYTES."""
    path = check_input(path, what, pipes)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise OptionError(
            f"cannot read {what} {{path}}: {exc.strerror}; check its permissions", path=str(path)
        ) from None
    if len(data) > MAX_INPUT_BYTES:
        raise _too_large(what, path)
    return data
