"""The CIFAR-10 loader on small files in CIFAR-10's own on-disk format; nothing is downloaded.

torchvision's CIFAR10 checks every file against the md5 sums of the real data set. Rather than
switch that check off (patching ``_check_integrity``), these tests point torchvision's md5
lists at the sums of the files they write, so the real code runs end to end: the integrity
check (a corrupted file is still refused), the pickle reading, the HWC layout and, for the
archive case, the tar.gz verification and extraction. The download URL is pointed at a
``file://`` path that does not exist, so an attempted download fails at once without network.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common.errors import Hw2Error
from hw2cli.rotation.data import load_cifar10, load_dataset

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH = 3


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _write_batches(folder, rng) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Write data_batch_1..5, test_batch and batches.meta as CIFAR-10 does (rows of 3072 bytes:
    1024 red, 1024 green, 1024 blue, each row-major). Returns the images as (N, 3, 32, 32)."""
    folder.mkdir(parents=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, size=(PER_BATCH, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=PER_BATCH).tolist()
        entry = {
            "batch_label": name,
            "labels": labels,
            "data": images.reshape(PER_BATCH, 3072),
            "filenames": [f"{name}_{i}.png" for i in range(PER_BATCH)],
        }
        (folder / name).write_bytes(pickle.dumps(entry))
        written[name] = (images, labels)
    meta = {"num_cases_per_batch": PER_BATCH, "label_names": LABEL_NAMES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return written


def _trust(monkeypatch, folder) -> None:
    """Point torchvision's md5 lists at the files just written."""
    monkeypatch.setattr(
        CIFAR10, "train_list", [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")] for i in range(1, 6)]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": _md5(folder / "batches.meta")})


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    monkeypatch.setattr(CIFAR10, "url", (tmp_path / "no-such-server" / CIFAR10.filename).as_uri())


def _check(data, written) -> None:
    train = [written[f"data_batch_{i}"] for i in range(1, 6)]
    assert torch.equal(data.train_images, torch.from_numpy(np.concatenate([x for x, _ in train])))
    assert data.train_labels.tolist() == [label for _, labels in train for label in labels]
    assert torch.equal(data.test_images, torch.from_numpy(written["test_batch"][0]))
    assert data.test_labels.tolist() == written["test_batch"][1]
    assert data.classes == LABEL_NAMES and data.train_images.dtype == torch.uint8


def test_reads_an_extracted_folder(tmp_path, monkeypatch):
    folder = tmp_path / "cache" / "cifar-10-batches-py"
    written = _write_batches(folder, np.random.default_rng(0))
    _trust(monkeypatch, folder)
    data = load_dataset("cifar10", tmp_path / "cache")
    assert data.name == "cifar10" and data.train_images.shape == (5 * PER_BATCH, 3, 32, 32)
    _check(data, written)


def test_default_folder_comes_from_hw2_cache_dir(tmp_path, monkeypatch):
    written = _write_batches(tmp_path / "env-cache" / "cifar-10-batches-py", np.random.default_rng(1))
    _trust(monkeypatch, tmp_path / "env-cache" / "cifar-10-batches-py")
    monkeypatch.setenv("HW2_CACHE_DIR", str(tmp_path / "env-cache"))
    _check(load_dataset("cifar10"), written)


def test_extracts_a_placed_tar_gz(tmp_path, monkeypatch):
    staging = tmp_path / "staging" / "cifar-10-batches-py"
    written = _write_batches(staging, np.random.default_rng(2))
    _trust(monkeypatch, staging)
    cache = tmp_path / "cache"
    cache.mkdir()
    archive = cache / CIFAR10.filename
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging, arcname="cifar-10-batches-py")
    monkeypatch.setattr(CIFAR10, "tgz_md5", _md5(archive))
    _check(load_cifar10(cache), written)
    assert (cache / "cifar-10-batches-py" / "test_batch").is_file()


def test_offline_with_nothing_cached_says_where_and_how(tmp_path):
    with pytest.raises(Hw2Error) as info:
        load_cifar10(tmp_path / "empty")
    message = str(info.value)
    assert str(tmp_path / "empty" / "cifar-10-batches-py") in message
    assert (
        "cifar-10-python.tar.gz" in message
        and "another folder with data_dir" in message
        and "dataset digits works offline" in message
    )


def test_a_corrupted_file_is_refused_by_the_md5_check(tmp_path, monkeypatch):
    folder = tmp_path / "cache" / "cifar-10-batches-py"
    _write_batches(folder, np.random.default_rng(3))
    _trust(monkeypatch, folder)
    (folder / "data_batch_3").write_bytes(b"not the file that was checksummed")
    with pytest.raises(Hw2Error, match="fail torchvision's md5 check"):
        load_cifar10(tmp_path / "cache")


def test_cli_offline_error_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(
        app, ["rotate-eval", "--data-dir", str(tmp_path / "nothing"), "--epochs", "1"]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("error: CIFAR-10 is not in ")
        and "--dataset digits" in lines[0]
        and "another folder with --data-dir" in lines[0]
    )
