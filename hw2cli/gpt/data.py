"""The training text, its train/validation split and the batches of random windows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from hw2cli.common.inputs import check_input, read_input
from hw2cli.common.options import OptionError
from hw2cli.gpt.corpus import default_corpus, strip_gutenberg


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
    """Refuse a missing, too large or irregular ``txt_file`` before anything is written."""
    if txt_file is not None:
        check_input(txt_file, "{txt_file}", pipes=False)


def split_data(data: torch.Tensor, val_fraction: float, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``1 - val_fraction`` of the ids for training, the rest for validation."""
    n_train = len(data) - int(round(len(data) * val_fraction))
    train, val = data[:n_train], data[n_train:]
    for name, part, needed, fix in (
        ("training", train, True, ""),
        ("validation", val, val_fraction > 0, "raise {val_fraction}, "),
    ):
        if needed and len(part) < block_size + 1:
            raise OptionError(
                f"the {name} split has {len(part)} characters, fewer than {{block_size}} {block_size} + 1; "
                f"{fix}use a longer text or a smaller {{block_size}}"
            )
    return train, val


def step_seeds(seed: int, rank: int, step: int, purpose: int = 0) -> tuple[int, int]:
    """Two independent 63-bit seeds (windows, dropout) of one step of one rank (``purpose`` 1: validation)."""
    a, b = np.random.SeedSequence([purpose, seed, rank, step]).generate_state(2, dtype=np.uint64)
    return int(a) >> 1, int(b) >> 1


def gather_windows(
    data: torch.Tensor | np.ndarray, starts: torch.Tensor, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets (int64) of the windows at ``starts`` in ``data`` (on the device
    of ``starts``, or a memory-mapped numpy array)."""
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
    """One process's slice of each batch of ``batch_size x world_size`` windows, drawn on the CPU (the
    same on every device): step ``s``'s from seed ``s``, the ``count`` validation ones from a fixed seed."""

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
        """Inputs and targets of step ``index`` (validation: in order, batch 0 starts again)."""
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
