"""A part folder's ``part.json``: it marks the folder as written by `hw2 reproduce`, says how
far the part got (``running``, the steps done), and once ``finished`` what the part holds (each
file's size and sha256), committed with :func:`hw2cli.common.rundir.commit` after every step.
Files written by scripts/reproduce.sh before ``status`` existed hold only finished parts.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from hw2cli.common import rundir, schema
from hw2cli.common.schema import FileEntry, FileName, Known

MANIFEST = "part.json"
REPORT, TITLE = "report.md", "# hw2 — reproduction report"  # the folder's report and its first line
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class PartManifest(Known):
    """``part.json``."""

    part: str
    title: str
    profile: str
    device: Annotated[str, Field(pattern=r"^[a-z]+(:[0-9]+)?$")]  # cpu, cuda, cuda:1, mps
    seconds: Seconds  # wall time of the part's steps, summed over the attempts that got on
    finished: Annotated[
        str, Field(pattern=r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z)?$")
    ]  # UTC, "" while running
    machine: str
    cpus: Annotated[int, Field(ge=1)]
    hw2: str
    status: Literal["running", "finished"] = "finished"
    steps_done: list[str] = []
    files: dict[FileName, FileEntry] | None = None  # what rundir.commit adds
    staged: list[FileName] = []
    remove: list[FileName] = []


def read(folder: Path, fix: str) -> PartManifest | None:
    """The manifest of part folder ``folder`` (None when it has none), validated."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    return schema.load_json(path, PartManifest, fix)


def new(part: str, title: str, profile: str, device: str) -> dict[str, Any]:
    """The manifest of a part that starts now."""
    from hw2cli import __version__

    uname = platform.uname()
    return {
        "part": part,
        "title": title,
        "profile": profile,
        "device": device,
        "seconds": 0.0,
        "finished": "",
        "machine": f"{uname.system} {uname.release} {uname.machine}",
        "cpus": os.cpu_count() or 1,
        "hw2": f"hw2 {__version__}",
        "status": "running",
        "steps_done": [],
    }


def commit(folder: Path, data: dict[str, Any], finished: bool = False) -> None:
    """Commit ``data`` as the folder's manifest (the caller holds the reproduction's lock); a
    finished part also records every file it wrote at its top level."""
    data = {k: v for k, v in data.items() if k not in ("files", "staged", "remove")}
    hashed: tuple[str, ...] = ()
    if finished:
        data.update(status="finished", finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        hashed = tuple(
            sorted(
                e.name
                for e in folder.iterdir()
                if e.is_file() and e.name != MANIFEST and not e.name.startswith(".")
            )
        )
    rundir.commit(folder, MANIFEST, PartManifest, data, {}, hashed=hashed)


def recover(folder: Path) -> None:
    """Finish a manifest commit that was cut after its commit point (the caller holds the lock)."""
    rundir.recover(folder, MANIFEST, PartManifest, ())
