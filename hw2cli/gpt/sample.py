"""``hw2 gpt generate``: continue a prompt with a trained run's model (safetensors + JSON only)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from hw2cli.common.device import resolve_device
from hw2cli.gpt.generate_options import GenerateOptions
from hw2cli.gpt.model import GPT
from hw2cli.gpt.pretrained import load_pretrained
from hw2cli.gpt.saved import load_run
from hw2cli.gpt.stop import StopFlag, Stopped
from hw2cli.gpt.tokens import TOKENIZER_FILE, BPETokenizer, Tokenizer


@dataclass
class GenerateResult:
    """The prompt, the decoding settings and one completion (without the prompt) per sample."""

    run_dir: str
    prompt: str
    settings: dict[str, Any]
    completions: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def generate_samples(opts: GenerateOptions) -> GenerateResult:
    """``num_samples`` continuations of ``prompt`` in one batch (greedy: one), by a training run's
    model or GPT-2, sampled from a generator seeded with ``seed``: the same seed on the same device
    gives the same text."""
    dev = resolve_device(opts.device)
    if opts.init_from is not None:
        model, folder = load_pretrained(opts.init_from)
        model, tokenizer = model.to(dev).eval(), BPETokenizer.from_file(folder / TOKENIZER_FILE)
    else:
        model, tokenizer, _ = load_run(opts.run_dir, dev)
    ids = tokenizer.encode(opts.prompt, what="prompt")
    n = 1 if opts.greedy else opts.num_samples
    idx = torch.tensor([ids] * n, dtype=torch.long, device=dev)
    temperature = None if opts.greedy else (1.0 if opts.temperature is None else opts.temperature)
    t0 = time.perf_counter()
    out = model.generate(
        idx,
        opts.max_new_tokens,
        temperature=temperature or 1.0,
        do_sample=not opts.greedy,
        top_k=opts.top_k,
        top_p=opts.top_p,
        generator=torch.Generator(device=dev).manual_seed(opts.seed),
    )
    elapsed = time.perf_counter() - t0
    settings = {
        "mode": "greedy" if opts.greedy else ("top-k" if opts.top_k else "top-p" if opts.top_p else "sample"),
        "temperature": temperature,
        "top_k": opts.top_k,
        "top_p": opts.top_p,
        "num_samples": n,
        "max_new_tokens": opts.max_new_tokens,
        "seed": opts.seed,
        "device": str(dev),
    }
    return GenerateResult(
        run_dir=str(opts.run_dir if opts.init_from is None else opts.init_from),
        prompt=opts.prompt,
        settings=settings,
        completions=[tokenizer.decode(row[len(ids) :].tolist()) for row in out],
        elapsed_s=elapsed,
    )


# ----------------------------------------------------------------------------- during training

PROMPT_CHARS = 24  # the greedy samples during training continue this much of the validation split


def sample_prompt(tokenizer: Tokenizer, ids) -> str:
    """A prompt from the text itself: the first whole line of ``ids`` (the validation split),
    up to PROMPT_CHARS characters ending at a word."""
    head = tokenizer.decode(ids[: 8 * PROMPT_CHARS])
    line = next((s.strip() for s in head.split("\n")[1:] if s.strip()), head.strip())
    prompt = line[:PROMPT_CHARS]
    if len(line) > PROMPT_CHARS and " " in prompt[PROMPT_CHARS // 3 :]:
        prompt = prompt[: prompt.rindex(" ")]
    return prompt or head[:PROMPT_CHARS] or tokenizer.decode(ids[:1])


@torch.no_grad()
def greedy_sample(model: GPT, tokenizer: Tokenizer, prompt: str, tokens: int, stop: StopFlag) -> str | None:
    """``tokens`` greedy tokens after ``prompt`` (None when a Ctrl-C abandoned it)."""
    idx = torch.tensor([tokenizer.encode(prompt)], device=next(model.parameters()).device)
    try:
        with stop.abandonable():
            out = model.generate(idx, tokens, do_sample=False)
    except Stopped:
        return None
    return tokenizer.decode(out[0].tolist())
