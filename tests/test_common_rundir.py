"""The generic run-directory layer (hw2cli/common/rundir.py) on a made-up manifest, without
any model: durable commits (the order of fsync and rename calls)."""

from __future__ import annotations

from pathlib import Path

from test_common_io import record_fsync_and_replace

from hw2cli.common import rundir, schema


class Manifest(schema.ManifestFields):
    step: int


def commit_two_files(folder: Path, step: int) -> None:
    files = {
        "a.bin": lambda p: p.write_bytes(b"A" * step),
        "b.bin": lambda p: p.write_bytes(b"B" * step),
    }
    rundir.commit(folder, "manifest.json", Manifest, {"step": step}, files)


def test_commit_flushes_every_file_before_the_commit_point_and_the_folder_after(tmp_path, monkeypatch):
    """Issue 22 item 8: a power cut leaves the old or the new checkpoint set. Every file of the
    set and the manifest are fsynced before the rename that commits (``.manifest.json.next``),
    the folder right after each rename that makes a name durable, and once more after the set
    is moved into place."""
    folder = tmp_path / "run"
    folder.mkdir()
    commit_two_files(folder, 1)
    events = record_fsync_and_replace(monkeypatch)
    commit_two_files(folder, 2)
    replaces = [i for i, e in enumerate(events) if e[0] == "replace"]
    for i in replaces:  # every rename: its source's data synced before it, the folder after it
        src = events[i][1]
        synced = [j for j, e in enumerate(events[:i]) if e == ("fsync", src)]
        renamed_into = [j for j, e in enumerate(events[:i]) if e[0] == "replace" and e[2] == src]
        assert synced or renamed_into, f"{src} renamed without its data synced"
        later = events[i + 1 :]
        assert ("fsync", str(folder)) in later, f"no folder fsync after renaming {src}"
    point = next(
        i for i, e in enumerate(events) if e[0] == "replace" and e[2].endswith(".manifest.json.next")
    )
    staged = {str(folder / f".{n}.next") for n in ("a.bin", "b.bin")}
    assert staged <= {e[2] for e in events[:point] if e[0] == "replace"}  # the set is staged first
    assert events[point + 1] == ("fsync", str(folder))  # the commit point itself is durable
    final = next(
        i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(folder / "manifest.json")
    )
    assert final > point and ("fsync", str(folder)) in events[final + 1 :]
    data = rundir.read_checkpoint(folder, "manifest.json", Manifest, "fix")
    assert data.manifest.step == 2 and (folder / "a.bin").read_bytes() == b"AA"
