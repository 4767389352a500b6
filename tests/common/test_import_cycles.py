"""No two hw2cli subpackages import each other (issue 29): package A importing B while B imports
A, at module level or inside a function, is an import cycle between layers. Read statically (ast),
so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import hw2cli

ROOT = Path(hw2cli.__file__).resolve().parent


def package_imports(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(package, imported package) -> the modules of the first that import the second."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if len(parts) < 2:  # cli.py, main.py: the top, above every package
            continue
        package = parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolved against the module's own package path
                    base = parts[: len(parts) - node.level]
                    names = [".".join(("hw2cli", *base, *([node.module] if node.module else [])))]
                else:
                    names = [node.module or ""]
            else:
                continue
            for name in names:
                target = name.split(".")
                if target[0] == "hw2cli" and len(target) > 1 and (root / target[1]).is_dir():
                    if target[1] != package:
                        edges[(package, target[1])].append("/".join(parts) + ".py")
    return edges


def cycles(edges: dict[tuple[str, str], list[str]]) -> list[str]:
    return [
        f"{a} <-> {b}: {sorted(set(edges[a, b]))} import {b}, {sorted(set(edges[b, a]))} import {a}"
        for a, b in sorted(edges)
        if a < b and (b, a) in edges
    ]


def test_no_two_subpackages_import_each_other():
    edges = package_imports()
    assert ("commands", "graph") in edges  # the scan sees imports, including those inside functions
    assert cycles(edges) == []


def test_the_check_finds_a_cycle_made_by_an_import_inside_a_function(tmp_path):
    for name, text in {
        "a/__init__.py": "",
        "a/x.py": "from hw2cli.b.y import f\n",
        "b/__init__.py": "",
        "b/y.py": "def f():\n    from ..a import x\n",
    }.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cycles(package_imports(tmp_path)) == ["a <-> b: ['a/x.py'] import b, ['b/y.py'] import a"]
