"""Atomic, durable file output: a temporary file beside the final one, fsynced, renamed over it,
the folder fsynced (after a power cut the path holds the old file or the whole new one). In a
folder hw2 fills, a marker (:data:`MARKER`) lists the files hw2 wrote as it left them: only
those may be replaced without asking (:func:`written_by_hw2`; docs/reliability.md)."""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hw2cli.common.errors import Hw2Error
from hw2cli.common.inputs import kind_of, shorten
from hw2cli.common.options import OptionError

#: The output path that means standard output (``--json -``).
STDOUT = "-"
#: The file, in each folder hw2 creates or fills, that lists the files hw2 wrote there.
MARKER = ".hw2-files.json"


def is_stdout(path: str | os.PathLike | None) -> bool:
    """True for ``-`` and for a path naming this process's standard output (``/dev/stdout``)."""
    return path is not None and os.fspath(path) in (STDOUT, "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")


def resolve_path(path: str | os.PathLike) -> Path:
    """``path`` with ``~``, ``..`` and links resolved; one line for a link loop (RuntimeError in
    Python 3.11) or a deleted working folder."""
    path = Path(path)
    try:
        return path.expanduser().resolve()
    except RuntimeError:
        raise Hw2Error(
            f"{path} runs into a loop of symbolic links; fix the links or give another path"
        ) from None
    except OSError as exc:
        raise Hw2Error(f"{path} cannot be resolved ({exc.strerror or exc}); give an absolute path") from None


def _special_mode(path: Path) -> int | None:  # the mode of a device, FIFO or socket, else None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else mode


def open_regular(path: str | os.PathLike, flags: int = os.O_RDONLY, *, follow: bool = True) -> int:
    """A file descriptor of ``path``, refused in one line unless it is a regular file: opened
    without blocking (a planted FIFO is refused, not waited on); ``follow=False`` (locks,
    markers) also refuses a symbolic link."""
    extra = os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags | extra, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise _not_regular(path, "a symbolic link") from None
        if exc.errno == errno.ENXIO:  # a FIFO without a reader, opened for writing
            raise _not_regular(path, "a pipe (FIFO)") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _not_regular(path, kind_of(mode))
    os.set_blocking(fd, True)
    return fd


def _not_regular(path: str | os.PathLike, kind: str) -> Hw2Error:
    return Hw2Error(
        f"{shorten(os.fspath(path), 60)} is {kind}, not a file hw2 reads or writes there; "
        "remove it or choose another path"
    )


def _limits(path: Path) -> tuple[int, int]:
    """NAME_MAX and PATH_MAX (bytes) of the file system ``path`` would be created on."""
    folder = path.parent
    while not os.path.isdir(folder) and folder != folder.parent:
        folder = folder.parent
    limits = []
    for name, default in (("PC_NAME_MAX", 255), ("PC_PATH_MAX", 4096)):
        try:
            limits.append(os.pathconf(folder, name) or default)
        except (OSError, ValueError, AttributeError):
            limits.append(default)
    return limits[0], limits[1]


def _temp_affixes(path: Path, name_max: int) -> tuple[str, str]:
    """mkstemp's prefix and suffix of ``.NAME.XXXXXXXX.tmpSUFFIX`` (matplotlib chooses the format
    by the suffix), NAME cut to fit ``name_max`` bytes."""
    suffix = ".tmp" + path.suffix
    room = max(1, name_max - len(os.fsencode(suffix)) - 2 - 8)  # two dots, 8 random characters
    name = os.fsencode(path.name)[:room].decode("utf-8", "ignore") or "x"
    return f".{name}.", suffix


def check_name_length(path: str | os.PathLike, what: str = "output file") -> None:
    """Refuse a path with a part longer than NAME_MAX, or beyond PATH_MAX with hw2's temporary name."""
    path = Path(path)
    name_max, path_max = _limits(path)
    temp = len(os.fsencode(".tmp" + path.suffix)) + 11  # what hw2's temporary name adds
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > name_max:
            raise Hw2Error(
                f"{what} {shorten(str(path))}: the name {shorten(part)!r} is {size} bytes long, longer than "
                f"the {name_max} bytes a file name may have here; choose a shorter name"
            )
    if temp > name_max:
        raise Hw2Error(f"{what} {shorten(str(path))}: its extension is too long; choose a shorter name")
    size = len(os.fsencode(str(path))) + temp
    if size >= path_max:
        raise Hw2Error(
            f"{what} {shorten(str(path))}: the path is {size} bytes long with hw2's temporary name, "
            f"longer than the {path_max} bytes a path may have; choose a shorter path"
        )


def check_writable(path: str | os.PathLike, what: str = "output file", create: bool = True) -> Path:
    """Fail before any long work if file ``path`` (its name's length checked by
    :func:`check_name_length`) cannot be written; character devices and FIFOs are written
    into, never replaced. ``create``: make missing folders and try a temporary file there."""
    path = Path(path)
    try:
        return _check_writable(path, what, create)
    except OSError as exc:  # a folder on the way that cannot be searched (EACCES), a link loop ...
        reason = exc.strerror or type(exc).__name__
        raise Hw2Error(f"{what} {shorten(str(path))} cannot be used: {reason}; choose another path") from None


def _check_writable(path: Path, what: str, create: bool) -> Path:
    if path.is_dir():
        raise Hw2Error(f"{what} {path} is a directory; give a file path")
    if (mode := _special_mode(path)) is not None:
        if stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
            raise Hw2Error(f"{what} {path} is a block device or socket; give a file path")
        if not os.access(path, os.W_OK):
            raise Hw2Error(f"{what} {path} is not writable; choose another path")
        return path
    parent = path.parent if str(path.parent) else Path(".")
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise Hw2Error(
            f"cannot create folder {parent} for {what} {path}: {existing} is a file; choose another path"
        )
    if create:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Hw2Error(f"cannot create folder {parent} for {what} {path}: {exc.strerror}") from None
    folder = parent if parent.exists() else existing
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise Hw2Error(f"{what} {path} is not writable; choose another path")
    if create:  # the temporary file atomic_path will make: catches read-only disks, full inode tables
        prefix, suffix = _temp_affixes(path, _limits(path)[0])
        with sigint_deferred():  # Ctrl-C between creating and removing the probe would leave it
            try:
                fd, probe = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=parent)
            except OSError as exc:
                raise Hw2Error(
                    f"{what} {path} cannot be written: {exc.strerror}; choose another path"
                ) from None
            try:
                os.close(fd)
            finally:
                os.unlink(probe)
    return path


def check_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``path`` as a folder if needed and make sure files can be written into it (``what``
    may name a ``{field}``: OptionError)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OptionError(f"{what} {{path}} exists and is not a folder; choose another path", path=str(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"cannot create {what} {{path}}: {exc.strerror}", path=str(path)) from None
    if not os.access(path, os.W_OK):
        raise OptionError(f"{what} {{path}} is not writable; choose another path", path=str(path))
    return path


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush folder ``path``'s entries (renames) to the disk where the file system can."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it on success (for writers that want a
    name). A device or FIFO the user named is yielded as it is; in a folder hw2 manages,
    anything but a regular file (a planted link, FIFO or device) is refused."""
    path = Path(path)
    if path.name == MARKER or is_marked(path.parent):  # a file of a folder hw2 manages
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise _not_regular(path, kind_of(mode))
    elif _special_mode(path) is not None:  # a device or FIFO (/dev/null, a named pipe): write into it
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temp_affixes(path, _limits(path)[0])
    tmp_path = None
    try:
        with sigint_deferred():  # the temporary file exists only once its clean-up knows it
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
            os.close(fd)
            tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb") as written:
            os.fsync(written.fileno())  # the data is on the disk before the rename makes it the file
        umask = os.umask(0)
        os.umask(umask)
        tmp_path.chmod(0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        with sigint_deferred():  # renamed and recorded as hw2's, or neither
            os.replace(tmp_path, path)
            fsync_dir(path.parent)  # and so is the rename
            if not path.name.startswith(".") and is_marked(path.parent):
                claim(path.parent, [path.name])
    finally:
        with sigint_deferred():
            if tmp_path is not None and tmp_path.exists():
                tmp_path.unlink()


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (or a SIGTERM handled as one) until the block ends, then deliver it:
    KeyboardInterrupt could otherwise surface between mkstemp and the ``try`` that removes its
    file (main thread, Python's handlers only)."""
    from hw2cli.common.signals import as_ctrl_c

    raising = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: as_ctrl_c}
    held = {}
    if threading.current_thread() is threading.main_thread():
        held = {signum: handler for signum, handler in raising.items() if signal.getsignal(signum) is handler}
    caught: list[int] = []
    for signum in held:
        signal.signal(signum, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        if caught:
            held[caught[0]](caught[0], None)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (``-``: standard output)."""
    if os.fspath(path) == STDOUT:
        out = sys.stdout
        if hasattr(out, "buffer"):
            out.flush()
            out.buffer.write(data)
            out.buffer.flush()
        else:
            out.write(data.decode("utf-8"))
            out.flush()
        return Path(STDOUT)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (``-``: standard output; hw2cli.common.jsonsafe)."""
    from hw2cli.common.jsonsafe import dumps

    return atomic_write_text(path, dumps(obj) + "\n")


# ----------------------------------------------------------------------------- what hw2 wrote


def _stamp(path: Path) -> dict[str, int] | None:  # a regular file's size and time, else None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns} if stat.S_ISREG(st.st_mode) else None


def _read_marker(folder: Path) -> dict[str, dict[str, int]]:
    """The files the marker lists (none without a marker or in a damaged one)."""
    if not is_marked(folder):
        return {}
    from hw2cli.common import schema

    try:
        data = schema.load_json(folder / MARKER, schema.WrittenFiles, fix="")
    except Hw2Error:
        return {}
    return {name: entry.model_dump() for name, entry in data.files.items()}


def is_marked(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a marker; one that is not a regular file is refused in one line."""
    try:
        mode = os.lstat(Path(folder) / MARKER).st_mode
    except OSError:
        return False
    if not stat.S_ISREG(mode):
        raise _not_regular(Path(folder) / MARKER, kind_of(mode))
    return True


def mark(folder: str | os.PathLike, what: str = "folder") -> None:
    """Mark existing ``folder`` as hw2's: files written into it from now on are recorded."""
    folder = Path(folder)
    if not is_marked(folder):
        try:
            _write_marker(folder, {})
        except OSError as exc:
            raise OptionError(
                f"cannot write into {what} {{path}}: {{why}}; free space or choose another folder",
                path=str(folder),
                why=str(exc.strerror or exc),
            ) from None


def claim(folder: str | os.PathLike, names: list[str] | tuple[str, ...]) -> None:
    """Record ``folder``'s files ``names`` as hw2's, as they are now (a name gone is dropped),
    after they were written: a marker that cannot be written (a full disk) is left as it was."""
    folder = Path(folder)
    files = _read_marker(folder)
    for name in names:
        stamp = _stamp(folder / name)
        if stamp is None:
            files.pop(name, None)
        else:
            files[name] = stamp
    with suppress(OSError):
        _write_marker(folder, files)


def _write_marker(folder: Path, files: dict[str, dict[str, int]]) -> None:
    write_json(folder / MARKER, {"format": "hw2 written files", "files": dict(sorted(files.items()))})


def written_by_hw2(folder: str | os.PathLike) -> set[str]:
    """Names in ``folder`` that hw2 wrote: files its marker lists as they are now, marked sub-folders."""
    folder = Path(folder)
    files = _read_marker(folder)
    mine = {name for name, stamp in files.items() if _stamp(folder / name) == stamp}
    try:
        subfolders = [e for e in folder.iterdir() if e.is_dir() and not e.is_symlink()]
    except OSError:
        subfolders = []
    return mine | {e.name for e in subfolders if is_marked(e)}
