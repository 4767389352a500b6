"""CONTRIBUTING.md's map of the code matches the package, file for file: every module of
hw2cli is named where its folder is described, and every file the map names exists."""

from __future__ import annotations

import re
from pathlib import Path

from hw2cli.probe.registry import PROBES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hw2cli"
TEXT = (ROOT / "CONTRIBUTING.md").read_text()


def _section(title: str) -> str:
    return TEXT.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


MAP, HELPERS = _section("Map of the code"), _section("Shared helpers (`hw2cli/common/`)")


def _bullets(text: str) -> list[str]:
    return re.split(r"\n(?=- )", text)


def _described(folder: str) -> str:
    """The map's words about ``hw2cli/<folder>/``: its own bullet, and for common/ the
    shared helpers' section."""
    own = [b for b in _bullets(MAP) if b.startswith(f"- `hw2cli/{folder}/")]
    return "\n".join(own) + (HELPERS if folder == "common" else "")


PROBE_MODULES = {probe.name.replace("-", "_") for probe in PROBES}  # each probe's module


def _modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts and p.parent.parent == PACKAGE
    )


def test_every_module_is_on_the_map():
    missing = []
    for path in _modules():
        folder, name = path.parent.name, path.stem
        named = f"`{folder}/{name}.py`" in TEXT or f"{folder}/{name}.py" in MAP
        here = _described(folder)
        named = named or f"`{name}.py`" in here or f"({name}.py" in here
        named = named or (folder == "common" and re.search(rf"`{name}[.`]", here) is not None)
        named = named or (name == "options" and "`hw2cli/<family>/options.py`" in MAP)
        named = named or (name == "render" and "Its `render.py` exposes" in MAP)  # every family's
        named = named or (folder == "commands" and "`hw2cli/commands/<family>.py`" in MAP)
        named = named or (folder == "probe" and name in PROBE_MODULES and "One module per probe" in here)
        if not named:
            missing.append(f"{folder}/{name}.py")
    top = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    missing += [name for name in top if f"hw2cli/{name}`" not in MAP]
    assert not missing, f"CONTRIBUTING.md's map does not name: {', '.join(missing)}"


def test_every_file_the_map_names_exists():
    absent = []
    for folder in sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        for name in re.findall(
            r"`(\w+)\.py`", "\n".join(b for b in _bullets(MAP) if b.startswith(f"- `hw2cli/{folder}/"))
        ):
            if not (PACKAGE / folder / f"{name}.py").is_file():
                absent.append(f"{folder}/{name}.py")
    for folder, name in set(re.findall(r"`(?:hw2cli/)?(\w+)/(\w+)\.py`", TEXT)):
        if (PACKAGE / folder).is_dir() and not (PACKAGE / folder / f"{name}.py").is_file():
            absent.append(f"{folder}/{name}.py")
    assert not absent, f"CONTRIBUTING.md names files that do not exist: {', '.join(sorted(set(absent)))}"
