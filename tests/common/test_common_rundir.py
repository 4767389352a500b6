"""The generic run-directory layer (hw2cli/common/rundir.py) on a made-up manifest, without
any model: durable commits (the order of fsync and rename calls) and the marker of what hw2
wrote (a folder holding files hw2 did not write is refused without --force)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import record_fsync_and_replace

from hw2cli.common import io, rundir, schema
from hw2cli.common.errors import Hw2Error


class Manifest(schema.ManifestFields):
    step: int


def commit_two_files(folder: Path, step: int) -> None:
    files = {
        "a.bin": lambda p: p.write_bytes(b"A" * step),
        "b.bin": lambda p: p.write_bytes(b"B" * step),
    }
    rundir.commit(folder, "manifest.json", Manifest, {"step": step}, files)


@pytest.mark.kind("power cuts")
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


# ----------------------------------------------------------------------------- hw2 replaces only what it wrote


def prepare(folder: Path, force: bool = False) -> Path:
    return rundir.prepare(
        folder, what="--out folder", manifest="manifest.json", leftovers=("metrics.csv",), force=force
    )


@pytest.mark.kind("folders hw2 did not write")
def test_a_users_file_named_like_a_leftover_is_refused_without_force(tmp_path):
    """Issue 22 item 7: the user's own metrics.csv in --out is not a leftover of hw2's."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.csv").write_text("my,own\n1,2\n")
    with pytest.raises(Hw2Error, match=r"holds files hw2 did not write \(metrics.csv\).* add force to"):
        prepare(out)  # the field, which the CLI shows as its flag
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv"]  # nothing written on refusal
    prepare(out, force=True)
    assert io.is_marked(out) and (out / "metrics.csv").read_text() == "my,own\n1,2\n"


def test_a_refusal_names_the_force_field_and_keeps_a_path_with_braces_as_it_is(tmp_path):
    from hw2cli.common.options import OptionError

    out = tmp_path / "{force}"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    with pytest.raises(OptionError) as info:
        prepare(out)
    assert info.value.fields == ["force"] and str(out) in str(info.value)
    assert f"{out} holds files" in info.value.named(lambda field: "--" + field)
    assert "or add --force to write the run there" in info.value.named(lambda field: "--" + field)


@pytest.mark.kind("folders hw2 did not write")
def test_a_leftover_hw2_wrote_is_taken_and_one_changed_since_is_not(tmp_path):
    out = prepare(tmp_path / "out")
    assert io.is_marked(out) and io.written_by_hw2(out) == set()
    io.atomic_write_text(out / "metrics.csv", "step,loss\n1,2.5\n")  # as a run cut before its checkpoint
    assert io.written_by_hw2(out) == {"metrics.csv"}
    assert prepare(out) == out  # hw2's own leftover: a new run may start there
    with open(out / "metrics.csv", "a") as fh:  # the user appends a line: now it is theirs
        fh.write("2,2.4\n")
    assert io.written_by_hw2(out) == set()
    with pytest.raises(Hw2Error, match="did not write"):
        prepare(out)


@pytest.mark.kind("folders hw2 did not write")
def test_a_file_hw2_wrote_that_is_not_a_leftover_is_an_earlier_run(tmp_path):
    out = prepare(tmp_path / "out")
    io.atomic_write_text(out / "model.bin", "weights")
    with pytest.raises(Hw2Error, match="already holds an earlier run"):
        prepare(out)


@pytest.mark.kind("folders hw2 did not write")
def test_a_committed_run_is_an_earlier_run_and_its_files_are_hw2s(tmp_path):
    out = prepare(tmp_path / "out")
    commit_two_files(out, 1)
    assert io.written_by_hw2(out) == {"a.bin", "b.bin", "manifest.json"}
    with pytest.raises(Hw2Error, match="already holds an earlier run"):
        prepare(out)
    commit_two_files(out, 2)  # the next checkpoint replaces them: still hw2's
    assert io.written_by_hw2(out) == {"a.bin", "b.bin", "manifest.json"}


@pytest.mark.kind("folders hw2 did not write")
def test_a_run_directory_from_before_markers_still_resumes_and_gets_one(tmp_path):
    """Old run directories (a valid manifest, no marker) are read and continued as before; their
    next commit marks them."""
    out = tmp_path / "old"
    out.mkdir()
    commit_two_files(out, 1)
    (out / io.MARKER).unlink()
    assert rundir.read_checkpoint(out, "manifest.json", Manifest, "fix").manifest.step == 1
    commit_two_files(out, 2)  # what a resume does
    assert io.written_by_hw2(out) == {"a.bin", "b.bin", "manifest.json"}


@pytest.mark.kind("folders hw2 did not write")
def test_a_damaged_marker_claims_nothing(tmp_path):
    out = prepare(tmp_path / "out")
    io.atomic_write_text(out / "metrics.csv", "x\n")
    (out / io.MARKER).write_text('{"format": "hw2 written files", "files": {"metrics.csv": 5}}')
    assert io.written_by_hw2(out) == set()
    with pytest.raises(Hw2Error, match="did not write"):
        prepare(out)


@pytest.mark.kind("folders hw2 did not write")
def test_named_single_files_are_replaced_as_users_expect(tmp_path):
    """--json out.json in a folder hw2 never marked: replaced atomically, no marker appears."""
    (tmp_path / "out.json").write_text("old")
    io.write_json(tmp_path / "out.json", {"new": 1})
    assert json.loads((tmp_path / "out.json").read_text()) == {"new": 1}
    assert not io.is_marked(tmp_path)


@pytest.mark.kind("folders hw2 did not write")
def test_prepare_folder_replaces_only_what_hw2_wrote(tmp_path):
    folder = tmp_path / "preview"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    (folder / "a.png").write_text("my picture")
    with pytest.raises(Hw2Error, match=r"holds files hw2 did not write \(a.png\); .*move them away$"):
        rundir.prepare_folder(folder, what="preview folder", replaces=("a.png", "b.png"))
    with pytest.raises(Hw2Error, match=r"\(a.png, keep.txt\); choose another folder or move them away$"):
        rundir.prepare_folder(folder, what="part folder")
    (folder / "a.png").unlink()
    rundir.prepare_folder(folder, what="preview folder", replaces=("a.png", "b.png"))
    io.atomic_write_text(folder / "a.png", "hw2's picture")
    assert io.written_by_hw2(folder) == {"a.png"}
    rundir.prepare_folder(folder, what="preview folder", replaces=("a.png", "b.png"))  # its own: fine
    parent = rundir.prepare_folder(tmp_path / "out", what="--out folder")
    rundir.prepare_folder(parent / "part", what="part folder")
    assert io.written_by_hw2(parent) == {"part"}  # a sub-folder hw2 marked is hw2's


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_an_input_path_with_braces_is_shown_as_it_is(tmp_path, make):
    from hw2cli.common.inputs import check_input
    from hw2cli.common.options import OptionError

    path = tmp_path / "m{mode}"
    if make == "directory":
        path.mkdir()
    with pytest.raises(OptionError) as info:
        check_input(path, "{txt_file}")
    assert info.value.fields == ["txt_file"]
    assert info.value.named(lambda field: f"<{field}>").startswith(f"<txt_file> {path} ")
