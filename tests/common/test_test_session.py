"""The test session's own environment (tests/conftest.py): every cache in a temporary folder,
and the check that the user's folders are left alone can see a change."""

from __future__ import annotations

import os

from conftest import CACHES, SESSION_DIR, changes, listing


def test_every_cache_points_into_the_session_folder():
    from matplotlib import get_cachedir, get_configdir

    from hw2cli.common.cache import cache_dir

    for variable in CACHES:
        assert os.environ[variable].startswith(str(SESSION_DIR)), variable
    assert cache_dir().is_relative_to(SESSION_DIR)
    assert get_cachedir().startswith(str(SESSION_DIR)) and get_configdir().startswith(str(SESSION_DIR))


def test_the_listing_sees_files_added_changed_touched_and_removed(tmp_path):
    (tmp_path / "keep").write_text("same")
    (tmp_path / "grow").write_text("a")
    (tmp_path / "touch").write_text("t")
    (tmp_path / "gone").write_text("g")
    before = listing((tmp_path,))
    (tmp_path / "grow").write_text("ab")
    st = os.stat(tmp_path / "touch")
    os.utime(tmp_path / "touch", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    (tmp_path / "gone").unlink()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new").write_text("n")
    found = changes(before, listing((tmp_path,)))
    assert found == [
        f"new {tmp_path / 'sub'}",
        f"new {tmp_path / 'sub' / 'new'}",
        f"removed {tmp_path / 'gone'}",
        f"changed {tmp_path}",
        f"changed {tmp_path / 'grow'}",
        f"changed {tmp_path / 'touch'}",
    ]


def test_no_test_module_imports_another():
    """Shared helpers live in tests/helpers.py (and tests/tiny_gpt.py), not in test modules."""
    import re
    from pathlib import Path

    offenders = [
        f"{path.name}: {line.strip()}"
        for path in sorted(Path(__file__).parent.glob("*.py"))
        for line in path.read_text().splitlines()
        if re.match(r"\s*(from|import) test_", line)
    ]
    assert not offenders, offenders
