"""Run directories (docs/reliability.md): a new run never destroys an earlier one or a user's
file (:func:`prepare`), one writer at a time (:func:`lock`: a ``flock`` the kernel drops
however its holder dies), and a checkpoint is a set of files committed by one rename of its
manifest, every file fsynced before it (:func:`commit`), verified before use
(:func:`read_checkpoint`)."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw2cli.common.errors import Hw2Error, Hw2Warning
from hw2cli.common.io import (
    MARKER,
    atomic_path,
    check_writable_dir,
    claim,
    fsync_dir,
    is_marked,
    mark,
    open_regular,
    write_json,
    written_by_hw2,
)
from hw2cli.common.options import OptionError

LOCK_NAME = ".hw2.lock"


def staged_name(name: str) -> str:  # where a checkpoint file waits for its manifest's commit
    return f".{name}.next"


_TEMP = re.compile(r"^\.(?P<base>.+)\.[a-z0-9_]{8}\.tmp")  # common.io.atomic_path's temporary files


def _internal_base(name: str) -> str | None:
    """The file whose staged copy (``.NAME.next``) or atomic-write temporary ``name`` is."""
    match = _TEMP.match(name)
    if match is not None:
        return _internal_base(match.group("base")) or match.group("base")
    return name[1:-5] if name.startswith(".") and name.endswith(".next") and len(name) > 6 else None


def _entries(path: Path) -> list[str]:
    """``path``'s files but the lock, the marker, staged and temporary files."""
    return sorted(
        e.name for e in path.iterdir() if e.name not in (LOCK_NAME, MARKER) and not _internal_base(e.name)
    )


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def prepare(
    path: str | os.PathLike,
    *,
    what: str,
    manifest: str,
    leftovers: tuple[str, ...],
    force: bool,
    resume_hint: str | None = None,
) -> Path:
    """Create ``path`` if needed, refuse it unless ``force`` when it holds an earlier run or
    files hw2 did not write, then mark it as hw2's. ``leftovers``: files hw2 wrote that a run
    stopped before its first checkpoint may leave (its metrics, its figure), accepted."""
    path = check_writable_dir(Path(path), what)
    entries, mine = _entries(path), written_by_hw2(path)
    earlier = [n for n in entries if n == manifest or (n in mine and n not in leftovers)]
    foreign = [n for n in entries if n not in mine and n != manifest]
    if earlier and not force:
        resume = f", continue it with {resume_hint} {{path}}" if resume_hint else ""
        raise OptionError(
            f"{what} {{path}} already holds an earlier run ({{names}}); choose an empty folder{resume}, "
            "or add {force} to replace it once the new run has a checkpoint",
            path=str(path),
            names=_shown(entries),
        )
    if foreign and not force:
        raise OptionError(
            f"{what} {{path}} holds files hw2 did not write ({{names}}); choose an empty folder, "
            "or add {force} to write the run there anyway (files of a run's names are replaced once "
            "it has a checkpoint, others are kept)",
            path=str(path),
            names=_shown(foreign),
        )
    mark(path, what)
    return path


def prepare_folder(path: str | os.PathLike, *, what: str, replaces: tuple[str, ...] | None = None) -> Path:
    """Create ``path`` if needed as a folder of outputs and mark it as hw2's; refused when a
    file of ``replaces`` (None: any file) exists that hw2 did not write."""
    path = check_writable_dir(Path(path), what)
    entries, mine = _entries(path), written_by_hw2(path)
    foreign = [n for n in (entries if replaces is None else replaces) if n in entries and n not in mine]
    if foreign:
        raise Hw2Error(
            f"{what} {path} holds files hw2 did not write ({_shown(foreign)}); "
            "choose another folder or move them away"
        )
    mark(path, what)
    return path


@contextmanager
def lock(path: str | os.PathLike, what: str = "run directory") -> Iterator[Path]:
    """Hold the exclusive writer lock of folder ``path`` (see the module docstring)."""
    import fcntl

    lock_path = Path(path) / LOCK_NAME
    is_marked(path)  # a planted marker link or FIFO is refused now, not after the work
    while True:  # never through a link or into a FIFO planted at the lock's name
        fd = open_regular(lock_path, os.O_RDWR | os.O_CREAT, follow=False)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise Hw2Error(
                f"{what} {path} is in use by process {holder} (lock {lock_path}); "
                "wait for that run to end or stop it, or choose another folder"
            ) from None
        with suppress(FileNotFoundError):  # its last holder may have unlinked it between open and flock
            if os.fstat(fd).st_ino == os.stat(lock_path).st_ino:
                break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock_path
    finally:
        with suppress(OSError):  # only the lock file this process made and holds
            if os.lstat(lock_path).st_ino == os.fstat(fd).st_ino:
                lock_path.unlink()
        os.close(fd)


def lock_holder(path: str | os.PathLike) -> int | None:
    """The PID in ``path``'s lock file if that process is alive."""
    try:
        fd = open_regular(Path(path) / LOCK_NAME, follow=False)
    except (OSError, Hw2Error):
        return None
    try:
        pid = int(os.read(fd, 32).decode("ascii").strip())
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return pid


def file_entry(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def commit(
    path: Path,
    manifest: str,
    model: type,
    manifest_data: dict[str, Any],
    files: dict[str, Callable[[Path], None]],
    *,
    hashed: tuple[str, ...] | None = None,
    remove: tuple[str, ...] = (),
) -> None:
    """Write one checkpoint as a set (the caller holds :func:`lock`): ``files`` maps a name to a
    writer of the path it is given; ``hashed``: the files the manifest verifies (default: those
    written); ``remove``: files of an earlier run that go once this checkpoint is committed."""
    recover(path, manifest, model, tuple(files))
    for name, write in files.items():
        with atomic_path(path / staged_name(name)) as tmp:
            write(tmp)
    hashed = tuple(files) if hashed is None else hashed
    entries = {name: file_entry(path / (staged_name(name) if name in files else name)) for name in hashed}
    write_json(
        path / staged_name(manifest),
        {**manifest_data, "files": entries, "staged": list(files), "remove": list(remove)},
    )
    _roll_forward(path, manifest, list(files), list(remove))
    claim(path, sorted({*files, *hashed, *remove, manifest}))  # committed already


def _roll_forward(path: Path, manifest: str, staged: list[str], remove: list[str]) -> None:
    for name in staged:
        src = path / staged_name(name)
        if src.exists():
            os.replace(src, path / name)
    for name in remove:
        if name not in staged and name != manifest:
            (path / name).unlink(missing_ok=True)
    os.replace(path / staged_name(manifest), path / manifest)
    fsync_dir(path)


def recover(path: Path, manifest: str, model: type, known: tuple[str, ...]) -> list[str]:
    """Finish moving a committed checkpoint into place and delete what a cut write of the files
    ``known`` left (the caller holds :func:`lock`); returns the names deleted."""
    from hw2cli.common import schema

    pending = path / staged_name(manifest)
    if pending.exists():
        data = schema.load_json(pending, model, fix="delete it to fall back on the previous checkpoint")
        if _verify(path, data, pending=True) is None:
            _roll_forward(path, manifest, data.staged, data.remove)
    leftovers = sorted(e.name for e in path.iterdir() if _internal_base(e.name) in {*known, manifest, MARKER})
    for name in leftovers:
        (path / name).unlink(missing_ok=True)
    return leftovers


@dataclass
class Checkpoint:
    """The last complete checkpoint of a folder (manifest None: written before manifests)."""

    folder: Path
    manifest: Any
    pending: bool = False

    def path(self, name: str) -> Path:
        """The file ``name`` of this checkpoint (still staged if its rename did not happen)."""
        staged = self.folder / staged_name(name)
        if self.pending and name in (self.manifest.staged or ()) and staged.exists():
            return staged
        return self.folder / name


def _verify(path: Path, data: Any, *, pending: bool, hashes: tuple[str, ...] | None = None) -> str | None:
    """None when every file of manifest ``data`` has its size and those in ``hashes`` (default:
    all) their sha256, else why not."""
    ckpt = Checkpoint(path, data, pending)
    files = data.files or {}
    for name, entry in files.items():
        file = ckpt.path(name)
        if not file.is_file():
            return f"{file} is missing"
        size = file.stat().st_size
        if size != entry.size:
            return f"{file} has {size} bytes, the manifest says {entry.size}"
    for name, entry in files.items():
        if (hashes is None or name in hashes) and file_entry(ckpt.path(name))["sha256"] != entry.sha256:
            return f"{ckpt.path(name)} does not match the sha256 in the manifest"
    return None


def read_checkpoint(
    path: str | os.PathLike, manifest: str, model: type, fix: str, hashes: tuple[str, ...] | None = None
) -> Checkpoint:
    """The last complete checkpoint of ``path``, verified, without a lock: a committed staged
    manifest wins over the one in place, a staged set without one is ignored with a warning.
    Every size is checked, the sha256 of the files in ``hashes`` (default: all)."""
    path = Path(path)
    for _ in range(5):
        before = _stamp(path, manifest)
        try:
            return _read_checkpoint(path, manifest, model, fix, hashes)
        except FileNotFoundError:  # a writer moved a file between two looks: look again
            continue
        except Hw2Error:
            if _stamp(path, manifest) == before:  # nobody committed meanwhile: the folder is damaged
                raise
    raise Hw2Error(f"{path} kept changing while it was read (a run writing checkpoints fast?); {fix}")


def _stamp(path: Path, manifest: str) -> tuple:
    """Both manifests' identity: it changes whenever a writer commits or finishes a commit."""
    stamps = []
    for file in (path / staged_name(manifest), path / manifest):
        with suppress(FileNotFoundError):
            st = file.stat()
            stamps.append((file.name, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def _read_checkpoint(
    path: Path, manifest: str, model: type, fix: str, hashes: tuple[str, ...] | None
) -> Checkpoint:
    from hw2cli.common import schema

    pending, current = path / staged_name(manifest), path / manifest
    candidates = [(p, p is pending) for p in (pending, current) if p.is_file()]
    if not candidates:
        return Checkpoint(path, None)
    problems = []
    for file, is_pending in candidates:
        data = schema.load_json(file, model, fix=fix)
        problem = _verify(path, data, pending=is_pending, hashes=hashes)
        if problem is None:
            half = sorted(e.name for e in path.iterdir() if e.name.endswith(".next") and not is_pending)
            if (problems or half) and lock_holder(path) is None:  # not merely a writer at work
                step = getattr(data, "step", None)
                warnings.warn(
                    f"{path}: ignoring the files of a half-written checkpoint "
                    f"({', '.join(half) or problems[0]}); using the last complete one"
                    + ("" if step is None else f" (step {step})"),
                    Hw2Warning,
                    stacklevel=2,
                )
            return Checkpoint(path, data, is_pending)
        problems.append(problem)
    raise Hw2Error(
        f"{problems[-1]}: the file was damaged or cut while written, and no complete checkpoint "
        f"is left in {path}; {fix}"
    )
