"""The test session's own environment (tests/conftest.py): every cache in a temporary folder,
and the check that the user's folders are left alone can see a change."""

from __future__ import annotations

import os

from conftest import CACHES, SESSION_DIR, changed_since, clock_tick


def test_every_cache_points_into_the_session_folder():
    from matplotlib import get_cachedir, get_configdir

    from hw2cli.common.cache import cache_dir

    for variable in CACHES:
        assert os.environ[variable].startswith(str(SESSION_DIR)), variable
    assert cache_dir().is_relative_to(SESSION_DIR)
    assert get_cachedir().startswith(str(SESSION_DIR)) and get_configdir().startswith(str(SESSION_DIR))


def test_the_guard_sees_files_added_changed_touched_and_removed(tmp_path):
    for name in ("keep", "grow", "touch", "gone"):
        (tmp_path / name).write_text(name)
    (tmp_path / "quiet").mkdir()
    (tmp_path / "quiet" / "old").write_text("o")
    since = clock_tick()
    assert changed_since(since, (tmp_path,)) == []
    (tmp_path / "grow").write_text("grown")
    st = os.stat(tmp_path / "touch")
    os.utime(tmp_path / "touch", ns=(st.st_atime_ns, st.st_mtime_ns))  # times set back as they were
    (tmp_path / "gone").unlink()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new").write_text("n")
    assert changed_since(since, (tmp_path,)) == sorted(
        str(p)
        for p in (tmp_path, tmp_path / "grow", tmp_path / "touch", tmp_path / "sub", tmp_path / "sub" / "new")
    )  # the removed file: through its folder


def test_no_test_module_imports_another_and_every_name_is_unique():
    """Shared helpers live in tests/helpers.py and tests/conftest.py, not in test modules;
    pytest's default import mode, which puts each test folder on sys.path, needs unique names."""
    import re
    from pathlib import Path

    paths = sorted(Path(__file__).parents[1].rglob("*.py"))
    assert {"gpt", "padding", "rotation", "graph", "probe", "report", "common", "grade"} <= {
        p.parent.name for p in paths
    }
    names = [p.name for p in paths]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in paths
        for line in path.read_text().splitlines()
        if re.match(r"\s*(from|import) test_", line)
    ]
    assert not offenders, offenders
