"""The data sets of rotate-eval as uint8 (N, 3, 32, 32) tensors in memory: CIFAR-10 (downloaded
once into the cache folder), scikit-learn's 8x8 digits (offline, upscaled) or an image folder."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hw2cli.common.cache import cache_dir
from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import open_regular
from hw2cli.common.options import OptionError
from hw2cli.rotation.options import DATASETS_FORM

IMAGE_SIZE = 32
#: Largest image (width x height) decoded from an image folder: PIL's own default limit, kept
#: whatever a notebook sets PIL's to, since a 20000x20000 header would take 1.2 GB to decode.
MAX_IMAGE_PIXELS = 89_478_485
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


@dataclass
class ImageData:
    """Train and test images as uint8 (N, 3, H, W) tensors with int64 labels."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (the notebook's ToTensor, no normalisation)."""
    return images.float().div_(255)


default_data_dir = cache_dir


def load_dataset(spec: str, data_dir: str | os.PathLike | None = None) -> ImageData:
    """Load ``cifar10``, ``digits`` or ``imagefolder:PATH``."""
    if spec == "cifar10":
        return load_cifar10(Path(data_dir) if data_dir is not None else default_data_dir())
    if spec == "digits":
        return load_digits()
    if spec.startswith("imagefolder:"):
        return load_imagefolder(Path(spec.removeprefix("imagefolder:")))
    raise OptionError(f"unknown {{dataset}} {{name}}; use {DATASETS_FORM}", name=repr(spec))


def load_digits() -> ImageData:
    """scikit-learn's 1,797 8x8 digits, split 75/25 stratified with a fixed seed, upscaled to 32x32
    (bilinear), in 3 channels: the CIFAR-10 CNN runs unchanged."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8)
    images = F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    images = (images * 255).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    split = dict(test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=bunch.target)
    train, test = (torch.from_numpy(i) for i in train_test_split(np.arange(len(labels)), **split))
    classes = [str(c) for c in bunch.target_names]
    return ImageData("digits", images[train], labels[train], images[test], labels[test], classes)


def load_cifar10(root: Path) -> ImageData:
    """CIFAR-10 from ``root/cifar-10-batches-py``, downloading it (or extracting a
    ``cifar-10-python.tar.gz`` placed in ``root``) when missing; one clear Hw2Error offline."""
    from torchvision.datasets import CIFAR10

    def read(train: bool):
        return CIFAR10(str(root), train=train, download=False)

    try:
        train = read(True)
    except RuntimeError:  # missing, or failing torchvision's md5 check
        _fetch_cifar10(root, CIFAR10)
        train = None
    try:
        if train is None:
            train = read(True)
        test = read(False)
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        raise Hw2Error(
            f"cannot read CIFAR-10 in {root / CIFAR10.base_folder}: {exc}; delete the folder to download it again"
        ) from None

    def tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:  # HWC -> CHW
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)

    return ImageData("cifar10", *tensors(train), *tensors(test), list(train.classes))


def _fetch_cifar10(root: Path, cifar10_cls) -> None:
    """Download and extract CIFAR-10 into ``root`` (torchvision reuses a valid tar.gz there)."""
    folder = root / cifar10_cls.base_folder
    how = (
        f"place the extracted {cifar10_cls.base_folder} folder or {cifar10_cls.filename} "
        f"(from {cifar10_cls.url}) in {{root}}, or choose another folder with {{data_dir}}; "
        "{dataset} digits works offline"
    )
    paths = dict(folder=str(folder), root=str(root))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(
            f"CIFAR-10 is not in {{folder}} and {{root}} cannot be created ({exc.strerror}); {how}", **paths
        ) from None
    found = " ({folder} exists but its files fail torchvision's md5 check)" if folder.exists() else ""
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torchvision prints "Extracting ..." to stdout
            cifar10_cls(str(root), train=True, download=True)
    except Exception as exc:  # URLError, socket errors, md5 mismatch of the archive, ...
        reason = str(getattr(exc, "reason", "") or exc).strip() or type(exc).__name__
        raise OptionError(
            f"CIFAR-10 is not in {{folder}}{found} and could not be downloaded ({{reason}}); {how}",
            reason=reason,
            **paths,
        ) from None


def load_imagefolder(path: Path) -> ImageData:
    """``path/train`` and ``path/test`` in ImageFolder layout (one sub-folder per class, the
    same classes in both), every image converted to RGB and resized to 32x32."""
    from torchvision.datasets.folder import find_classes

    form = "give a folder holding train/ and test/, each with one sub-folder of images per class"
    if not path.is_dir():
        raise Hw2Error(f"image folder {path} does not exist or is not a folder; {form}")
    for split in ("train", "test"):
        if not (path / split).is_dir():
            raise Hw2Error(f"image folder {path} has no {split}/ sub-folder; {form}")
    splits = {}
    for split in ("train", "test"):
        try:
            classes, class_to_idx = find_classes(str(path / split))
        except FileNotFoundError as exc:
            raise Hw2Error(f"image folder {path / split}: {exc}; {form}") from None
        splits[split] = (classes, _image_files(path / split, class_to_idx))
    (classes, train), (test_classes, test) = splits["train"], splits["test"]
    if classes != test_classes:
        raise Hw2Error(
            f"image folder {path}: train classes {classes} differ from test classes "
            f"{test_classes}; give both the same class sub-folders"
        )
    return ImageData(f"imagefolder:{path}", *_read_images(train), *_read_images(test), list(classes))


def _image_files(folder: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """(image file, class) of every image under ``folder/<class>``, in torchvision's order; unlike
    torchvision, a folder reached twice (a link up the tree) is walked once, and an image name
    that is not a regular file (a FIFO would block the read) is refused."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    samples = []
    for name, index in sorted(class_to_idx.items()):
        seen, found = set(), []
        for root, dirs, files in os.walk(folder / name, followlinks=True):
            st = os.stat(root)
            if (st.st_dev, st.st_ino) in seen:
                dirs.clear()
                continue
            seen.add((st.st_dev, st.st_ino))
            found.append((root, sorted(f for f in files if f.lower().endswith(IMG_EXTENSIONS))))
        for root, names in sorted(found):
            for file in (os.path.join(root, n) for n in names):
                try:
                    os.close(open_regular(file))
                except OSError as exc:
                    raise Hw2Error(
                        f"cannot read image {file}: {exc.strerror}; remove or replace it"
                    ) from None
                samples.append((file, index))
        if not any(names for _, names in found):
            raise Hw2Error(
                f"image folder {folder}: class {name} holds no image ({', '.join(IMG_EXTENSIONS)}); "
                "add images or remove the class folder"
            )
    return samples


def _read_images(samples: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every (file, class) into uint8 (N, 3, 32, 32) images and labels; a header claiming
    more than MAX_IMAGE_PIXELS is refused before decoding."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2 import functional as TF

    images = []
    for file, _ in samples:
        try:
            with warnings.catch_warnings():  # PIL warns about a possible decompression bomb ...
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(file) as img:  # ... or refuses one here, from the header
                    if img.width * img.height > MAX_IMAGE_PIXELS:
                        raise _too_large(file, f"{img.width}x{img.height} pixels")
                    img = img.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            claimed = re.search(r"\((\d+) pixels\)", str(exc))
            raise _too_large(
                file, f"{int(claimed.group(1)):,} pixels" if claimed else "too many pixels"
            ) from None
        except (UnidentifiedImageError, OSError) as exc:
            raise Hw2Error(f"cannot read image {file}: {exc}; remove or replace the file") from None
        images.append(TF.pil_to_tensor(img))
    return torch.stack(images), torch.tensor([label for _, label in samples], dtype=torch.int64)


def _too_large(file: str, claimed: str) -> Hw2Error:
    return Hw2Error(
        f"image {file} claims {claimed}, more than the {MAX_IMAGE_PIXELS:,} that hw2 decodes "
        "(a huge photo or a decompression bomb); shrink it or remove it from the data set"
    )
