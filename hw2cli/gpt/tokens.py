"""The tokenizers (characters, or a Hugging Face ``tokenizer.json`` such as GPT-2's), the cached
token file, bits per character. ``tiktoken`` encodes GPT-2's BPE 8x faster
(benchmarks/bench_gpt_tokenizer.py) but reads no ``tokenizer.json``; the corpus is encoded once,
into ``<cache>/tokens/`` (uint16 when the vocabulary fits, as nanoGPT's ``prepare.py``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw2cli.common.cache import cache_dir
from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import atomic_path

TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class CharTokenizer:
    """Characters to ids and back; the vocabulary is the sorted set of the text's characters."""

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(tuple(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def stoi(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str, what: str = "text") -> list[int]:
        """Ids of ``text``; characters outside the vocabulary are named in a Hw2Error."""
        stoi = self.stoi
        unknown = sorted({c for c in text if c not in stoi})
        if unknown:
            shown = ", ".join(repr(c) for c in unknown)
            raise Hw2Error(
                f"the {what} has characters the model's vocabulary lacks: {shown}; remove or replace them"
            )
        return [stoi[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> dict:
        return {"chars": list(self.chars)}

    @classmethod
    def from_json(cls, obj: dict) -> CharTokenizer:
        return cls(tuple(obj["chars"]))


class BPETokenizer:
    """A ``tokenizers`` tokenizer; equal when their ``tokenizer.json`` texts are equal."""

    def __init__(self, json_text: str, source: str = ""):
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_str(json_text)
        except Exception as exc:  # the Rust library raises a bare Exception for bad JSON
            raise Hw2Error(f"{source or 'the tokenizer'} is not a tokenizer.json ({exc}); give one") from None
        self.json_text = json_text
        self.key = hashlib.sha256(json_text.encode()).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: str | Path) -> BPETokenizer:
        path = Path(path).expanduser()
        if not path.is_file():
            raise Hw2Error(f"tokenizer file {path} does not exist; give a tokenizer.json, gpt2 or char")
        return cls(path.read_text(encoding="utf-8"), str(path))

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode(self, text: str, what: str = "text") -> list[int]:
        ids = self._tok.encode(text, add_special_tokens=False).ids
        if not ids:
            raise Hw2Error(f"the {what} encodes to no tokens; give a longer {what}")
        return ids

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BPETokenizer) and other.json_text == self.json_text

    __hash__ = None  # mutable library object inside; compare, don't hash


Tokenizer = CharTokenizer | BPETokenizer


def make_tokenizer(spec: str | None, text: str, init_from: str | None = None) -> Tokenizer:
    """The tokenizer of a new run: ``char`` (the text's characters; the default), ``gpt2`` or the path
    of a tokenizer.json; with ``init_from`` (a GPT-2 name or folder) by default the model's own."""
    if spec == "char" or (spec is None and init_from is None):
        return CharTokenizer.from_text(text)
    from hw2cli.gpt.pretrained import resolve

    folder = None if init_from is None else resolve(init_from)
    if spec in (None, "gpt2"):
        return BPETokenizer.from_file((folder or resolve("gpt2")) / TOKENIZER_FILE)
    return BPETokenizer.from_file(spec)


def encode_cached(text: str, tokenizer: BPETokenizer, cache: Path | None = None) -> np.ndarray:
    """The ids of ``text``, read-only and memory-mapped from ``<cache>/tokens/<text>-<tokenizer>.bin``
    (written on first use: uint16 when the vocabulary fits, else uint32)."""
    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32
    text_key = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = (cache or cache_dir()) / "tokens" / f"{text_key}-{tokenizer.key}-{np.dtype(dtype).name}.bin"
    if not path.is_file():
        ids = np.asarray(tokenizer.encode(text), dtype=dtype)
        try:
            with atomic_path(path) as tmp:
                ids.tofile(tmp)
        except OSError as exc:
            raise Hw2Error(
                f"cannot write the token cache {path} ({exc.strerror}); set HW2_CACHE_DIR"
            ) from None
    return np.memmap(path, dtype=dtype, mode="r")


def bits_per_char(nats_per_token: float, n_tokens: int, n_chars: int) -> float:
    """A per-token loss in nats as bits per character of the text those tokens spell."""
    return nats_per_token * n_tokens / n_chars / math.log(2)
