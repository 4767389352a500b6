"""Atomic output helpers: a failed write leaves the old file intact, errors are Hw2Error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import atomic_path, check_writable, write_json


def test_write_json_handles_numpy(tmp_path):
    path = write_json(tmp_path / "a" / "out.json", {"m": np.eye(2, dtype=int), "x": np.float64(0.5)})
    assert json.loads(path.read_text()) == {"m": [[1, 0], [0, 1]], "x": 0.5}


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_check_writable_rejects_directory_and_unwritable(tmp_path):
    with pytest.raises(Hw2Error, match="is a directory"):
        check_writable(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(Hw2Error, match="cannot create folder"):
        check_writable(blocker / "sub" / "out.json")


def test_atomic_files_get_the_usual_mode(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = write_json(tmp_path / "out.json", {})
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
