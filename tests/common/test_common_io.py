"""Atomic output helpers: a failed write leaves the old file intact, errors are Hw2Error."""

from __future__ import annotations

import json
import os
import signal
import tempfile

import numpy as np
import pytest
from helpers import record_fsync_and_replace

from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import atomic_path, check_writable, write_json


def test_write_json_handles_numpy(tmp_path):
    path = write_json(tmp_path / "a" / "out.json", {"m": np.eye(2, dtype=int), "x": np.float64(0.5)})
    assert json.loads(path.read_text()) == {"m": [[1, 0], [0, 1]], "x": 0.5}


@pytest.mark.kind("must work")
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


@pytest.mark.kind("power cuts")
def test_atomic_write_syncs_the_data_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """Power-cut safety: fsync(temporary file) -> rename onto the name -> fsync(folder)."""
    events = record_fsync_and_replace(monkeypatch)
    write_json(tmp_path / "out.json", {"a": 1})
    [replace] = [e for e in events if e[0] == "replace"]
    tmp, final = replace[1], replace[2]
    assert final == str(tmp_path / "out.json") and tmp != final
    assert events == [("fsync", tmp), replace, ("fsync", str(tmp_path))]
    assert json.loads((tmp_path / "out.json").read_text()) == {"a": 1}


@pytest.mark.kind("power cuts")
def test_atomic_path_syncs_what_an_outside_writer_wrote(tmp_path, monkeypatch):
    """Writers that open and close the file themselves (matplotlib, safetensors) get the same order."""
    events = record_fsync_and_replace(monkeypatch)
    with atomic_path(tmp_path / "w.bin") as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"\x00" * 10)
    assert [e[0] for e in events] == ["fsync", "replace", "fsync"]
    assert events[0][1] == events[1][1] and events[2][1] == str(tmp_path)
    assert (tmp_path / "w.bin").read_bytes() == b"\x00" * 10


def test_devices_are_written_without_rename_or_sync(tmp_path, monkeypatch):
    events = record_fsync_and_replace(monkeypatch)
    write_json("/dev/null", {"a": 1})
    assert events == []


@pytest.fixture
def ctrl_c(monkeypatch):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield lambda module, name: _patch_ctrl_c(monkeypatch, module, name)
    signal.signal(signal.SIGINT, previous)


def _patch_ctrl_c(monkeypatch, module, name: str) -> None:
    real = getattr(module, name)

    def then_ctrl_c(*args, **kwargs):
        result = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # Python raises it at the next statement it can
        return result

    monkeypatch.setattr(module, name, then_ctrl_c)


@pytest.mark.kind("signals")
@pytest.mark.parametrize("step", ["mkstemp", "close", "replace"])
def test_ctrl_c_beside_a_temporary_file_leaves_none(tmp_path, ctrl_c, step):
    """Ctrl-C right after the temporary file is made, closed or renamed: KeyboardInterrupt,
    and the folder holds the old file or the new one, never a temporary (it used to leave
    `.out.json.XXXX.tmp.json` when the signal came between mkstemp and the clean-up's `try`)."""
    target = tmp_path / "out.json"
    target.write_text("old")
    ctrl_c(tempfile if step == "mkstemp" else os, step)
    with pytest.raises(KeyboardInterrupt):
        write_json(target, {"new": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    if step == "replace":  # renamed before the Ctrl-C: the new file
        assert json.loads(target.read_text()) == {"new": 1}
    else:
        assert target.read_text() == "old"


@pytest.mark.kind("signals")
def test_ctrl_c_during_the_output_check_leaves_no_probe_file(tmp_path, ctrl_c):
    ctrl_c(tempfile, "mkstemp")
    with pytest.raises(KeyboardInterrupt):
        check_writable(tmp_path / "out.json")
    assert list(tmp_path.iterdir()) == []


def test_a_sigterm_taken_as_ctrl_c_is_held_to_the_end_of_the_block_too():
    """A script's background job ignores Ctrl-C, and SIGTERM then raises KeyboardInterrupt
    (hw2cli.common.signals): inside sigint_deferred it waits, so no temporary file is left."""
    from hw2cli.common import signals
    from hw2cli.common.io import sigint_deferred

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    finished = False
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signals.as_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            with sigint_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):  # the handler would have run by now
                    pass
                finished = True
        assert finished and signal.getsignal(signal.SIGTERM) is signals.as_ctrl_c
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
