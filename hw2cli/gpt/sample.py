"""``hw2 gpt generate``: continue a prompt with a trained run's model (safetensors + JSON only)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from hw2cli.common.device import resolve_device
from hw2cli.common.errors import Hw2Error
from hw2cli.gpt.checkpoint import load_run
from hw2cli.gpt.model import check_sampling
from hw2cli.gpt.pretrained import load_pretrained
from hw2cli.gpt.tokens import TOKENIZER_FILE, BPETokenizer


@dataclass
class GenerateResult:
    """The prompt, the decoding settings and one completion (without the prompt) per sample."""

    run_dir: str
    prompt: str
    settings: dict[str, Any]
    completions: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def generate_samples(
    run_dir: str | os.PathLike | None,
    prompt: str,
    init_from: str | None = None,
    num_samples: int = 5,
    max_new_tokens: int = 200,
    greedy: bool = False,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    device: str = "auto",
) -> GenerateResult:
    """Sample ``num_samples`` continuations of ``prompt`` in one batch.

    Greedy decoding gives one sample (all would be equal). Otherwise logits are divided by
    ``temperature`` (default 1), filtered by ``top_k`` or ``top_p`` (not both) and sampled
    from a generator seeded with ``seed``: the same seed on the same device gives the same text.
    The model is a training run's (``run_dir``) or a pretrained GPT-2 (``init_from``).
    """
    if (run_dir is None) == (init_from is None):
        raise Hw2Error("give a run directory or --init-from MODEL, one of the two")
    if num_samples < 1:
        raise Hw2Error(f"--num-samples must be at least 1, got {num_samples}")
    if max_new_tokens < 1:
        raise Hw2Error(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    if seed < 0:
        raise Hw2Error(f"--seed must be 0 or more, got {seed}")
    if greedy and (temperature is not None or top_k is not None or top_p is not None):
        raise Hw2Error("--greedy takes no --temperature, --top-k or --top-p; drop one or the other")
    if top_k is not None and top_p is not None:
        raise Hw2Error("give --top-k or --top-p, not both")
    check_sampling(temperature, top_k, top_p)
    if not prompt:
        raise Hw2Error("--prompt is empty; give at least one character to continue")
    dev = resolve_device(device)
    if init_from is not None:
        model, folder = load_pretrained(init_from)
        model, tokenizer = model.to(dev).eval(), BPETokenizer.from_file(folder / TOKENIZER_FILE)
    else:
        model, tokenizer, _ = load_run(run_dir, dev)
    ids = tokenizer.encode(prompt, what="prompt")
    n = 1 if greedy else num_samples
    idx = torch.tensor([ids] * n, dtype=torch.long, device=dev)
    generator = torch.Generator(device=dev).manual_seed(seed)
    t0 = time.perf_counter()
    out = model.generate(
        idx,
        max_new_tokens,
        temperature=1.0 if temperature is None else temperature,
        do_sample=not greedy,
        top_k=top_k,
        top_p=top_p,
        generator=generator,
    )
    elapsed = time.perf_counter() - t0
    settings = {
        "mode": "greedy" if greedy else ("top-k" if top_k else "top-p" if top_p else "sample"),
        "temperature": None if greedy else (1.0 if temperature is None else temperature),
        "top_k": top_k,
        "top_p": top_p,
        "num_samples": n,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "device": str(dev),
    }
    return GenerateResult(
        run_dir=str(run_dir if init_from is None else init_from),
        prompt=prompt,
        settings=settings,
        completions=[tokenizer.decode(row[len(ids) :].tolist()) for row in out],
        elapsed_s=elapsed,
    )
