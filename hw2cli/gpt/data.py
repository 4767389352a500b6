"""The training text, its train/validation split and the batches of random windows. The default
corpus, Grimm's fairy tales (Gutenberg eBook 2591, or ``$HW2_GRIMM_URL``), is downloaded once."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from hw2cli.common.cache import cache_dir
from hw2cli.common.errors import Hw2Error
from hw2cli.common.inputs import check_input, read_input
from hw2cli.common.io import atomic_write_text
from hw2cli.common.options import OptionError

GRIMM_URL = "https://www.gutenberg.org/cache/epub/2591/pg2591.txt"
GRIMM_FILE = "grimms_fairy_tales.txt"


def strip_gutenberg(text: str) -> str:
    """Drop a byte-order mark and Project Gutenberg's header and licence, when present."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith("*** START OF")), None)
    end = next((i for i, line in enumerate(lines) if line.startswith("*** END OF")), None)
    if start is not None and end is not None and start < end:
        lines = lines[start + 1 : end]
    return "\n".join(lines).strip("\n") + "\n"


def default_corpus(url: str | None = None, cache: Path | None = None, timeout: float = 30.0) -> Path:
    """Path of the cached Grimm text, downloading and cleaning it on first use."""
    url = url or os.environ.get("HW2_GRIMM_URL") or GRIMM_URL
    path = (cache or cache_dir()) / GRIMM_FILE
    if path.is_file():
        return path
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            raw = response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OptionError(
            f"cannot download Grimm's fairy tales from {url} ({reason}); "
            "give a local UTF-8 text with {txt_file}"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise OptionError(
            f"{url} did not return UTF-8 text; give a local UTF-8 text with {{txt_file}}"
        ) from None
    try:
        atomic_write_text(path, strip_gutenberg(text))
    except OSError as exc:
        raise Hw2Error(
            f"cannot write the downloaded text to {path} ({exc.strerror}); set HW2_CACHE_DIR to a writable folder"
        ) from None
    return path


def load_text(txt_file: str | os.PathLike | None = None) -> tuple[str, Path]:
    """The text of ``txt_file`` (UTF-8) or the default corpus, without Gutenberg's boilerplate."""
    path = Path(txt_file) if txt_file is not None else default_corpus()
    data = read_input(path, "{txt_file}", pipes=False)
    try:
        text = strip_gutenberg(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise OptionError(
            f"{{txt_file}} {path} is not UTF-8 text (byte {exc.start}); convert it to UTF-8"
        ) from None
    if len(text.strip()) == 0:
        raise OptionError(f"{{txt_file}} {path} is empty; give a text to train on")
    return text, path


def check_text_file(txt_file: str | os.PathLike | None) -> None:
    """Refuse, before anything is written, a ``txt_file`` that is missing, too large or not a
    regular file (resuming reads the text again)."""
    if txt_file is not None:
        check_input(txt_file, "{txt_file}", pipes=False)


def split_data(data: torch.Tensor, val_fraction: float, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``1 - val_fraction`` of the ids for training, the rest for validation; each
    must hold a window of ``block_size + 1`` ids."""
    n_train = len(data) - int(round(len(data) * val_fraction))
    train, val = data[:n_train], data[n_train:]
    if len(train) < block_size + 1:
        raise OptionError(
            f"the training split has {len(train)} characters, fewer than {{block_size}} {block_size} + 1; "
            "use a longer text or a smaller {block_size}"
        )
    if val_fraction > 0 and len(val) < block_size + 1:
        raise OptionError(
            f"the validation split has {len(val)} characters, fewer than {{block_size}} {block_size} + 1; "
            "raise {val_fraction}, use a longer text or a smaller {block_size}"
        )
    return train, val


def step_seeds(seed: int, rank: int, step: int, purpose: int = 0) -> tuple[int, int]:
    """Two independent 63-bit seeds (batch windows, dropout) for one step of one rank;
    ``purpose`` 1 gives the fixed validation batches instead."""
    a, b = np.random.SeedSequence([purpose, seed, rank, step]).generate_state(2, dtype=np.uint64)
    return int(a) >> 1, int(b) >> 1


def gather_windows(
    data: torch.Tensor | np.ndarray, starts: torch.Tensor, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets (int64) of the windows at ``starts`` in ``data`` (ids on
    the device of ``starts``, or a memory-mapped numpy array)."""
    positions = starts[:, None] + torch.arange(block_size + 1, device=starts.device)
    if isinstance(data, np.ndarray):
        windows = torch.from_numpy(data[positions.numpy()].astype(np.int64))
    else:
        windows = data[positions].long()
    return windows[:, :-1], windows[:, 1:]


def get_batch(
    data: torch.Tensor | np.ndarray, block_size: int, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows drawn uniformly with replacement: inputs and next-token targets."""
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    return gather_windows(data, starts, block_size)


class Batches:
    """One process's batches: the training batch of each step, or the ``count`` fixed validation
    batches. A batch is one draw of ``batch_size x world_size`` windows (as :func:`get_batch`), of
    which process ``rank`` takes its slice. Training batch ``s`` comes from a generator seeded by
    ``s``, the validation batches in order from a fixed seed. The starts are drawn on the CPU,
    ``chunk`` batches at a time (the same windows on every device), and copied over at once."""

    def __init__(
        self,
        data: torch.Tensor | np.ndarray,
        block_size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
        count: int | None = None,
        chunk: int = 64,
    ) -> None:
        self.device = torch.device(device)
        if self.device.type != "cpu":
            if isinstance(data, np.ndarray):  # the memory-mapped ids of a BPE corpus
                data = torch.from_numpy(data.astype(np.int64))
            data = data.to(self.device)
        self.data, self.n_ids, self.block_size, self.batch_size = data, len(data), block_size, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.validation, self.count, self.chunk = count is not None, count, chunk
        self._first, self._starts = 0, torch.empty(0, batch_size, dtype=torch.long)
        self._generator = torch.Generator()

    def __call__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of training step ``index``, or of validation batch ``index`` (in
        order: batch 0 starts the draws again)."""
        if not self._first <= index < self._first + len(self._starts) or (self.validation and index == 0):
            self._draw(index)
        return gather_windows(self.data, self._starts[index - self._first], self.block_size)

    def _draw(self, first: int) -> None:
        """The starts of this process's slices of the batches from ``first`` on."""
        if self.validation:
            if first == 0:
                self._generator.manual_seed(step_seeds(self.seed, 0, 0, purpose=1)[0])
            elif first != self._first + len(self._starts):
                raise ValueError(f"validation batch {first} asked for out of order")
            generators = [self._generator] * min(self.chunk, self.count - first)
        else:
            seeds = [step_seeds(self.seed, 0, s)[0] for s in range(first, first + self.chunk)]
            generators = [torch.Generator().manual_seed(s) for s in seeds]
        size = self.batch_size * self.world_size
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        starts = torch.stack(
            [torch.randint(self.n_ids - self.block_size, (size,), generator=g)[mine] for g in generators]
        )
        if self.device.type == "cuda":  # page-locked: the copy does not wait for the device
            starts = starts.pin_memory()
        self._first, self._starts = first, starts.to(self.device, non_blocking=True)
