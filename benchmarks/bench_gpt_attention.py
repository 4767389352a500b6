"""Training-step speed of the GPT model: flash against explicit attention (block 128 and 512),
and bf16 autocast against fp32 at 128 and at 384 dims (to pick the precision per model size, measured).

A step is what the trainer does: forward, cross-entropy, backward, AdamW step. Each
comparison builds both variants from the same weights and alternates them step by step in
one process, so a shared machine's load hits both alike; it prints medians and the ratio.
GFLOP/s use nanoGPT's estimate (6N + 12·L·H·Q·T flops per token, N without the position
embedding), so they compare with nanoGPT's numbers.

    python benchmarks/bench_gpt_attention.py --threads 1      # all four comparisons
    python benchmarks/bench_gpt_attention.py --only precision-128 --repeats 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from hw2cli.common.device import autocast  # noqa: E402
from hw2cli.gpt.model import GPT, GPTConfig  # noqa: E402

VOCAB = 65
# name -> (model sizes, block, batch, {variant label: (use_flash_attn, precision)})
COMPARISONS = {
    "attention": (
        dict(n_layer=6, n_head=6, n_embd=384),
        128,
        8,
        {"explicit fp32": (False, "fp32"), "flash fp32": (True, "fp32")},
    ),
    # a long context, where attention is ~40% of the flops
    "attention-512": (
        dict(n_layer=4, n_head=4, n_embd=128),
        512,
        4,
        {"explicit fp32": (False, "fp32"), "flash fp32": (True, "fp32")},
    ),
    # nanoGPT's documented CPU configuration
    "precision-128": (
        dict(n_layer=4, n_head=4, n_embd=128),
        64,
        12,
        {"fp32": (True, "fp32"), "bf16 autocast": (True, "bf16")},
    ),
    # nanoGPT's Shakespeare-char model, batch 32 as in the GFLOP/s anchor
    "precision-384": (
        dict(n_layer=6, n_head=6, n_embd=384),
        128,
        32,
        {"fp32": (True, "fp32"), "bf16 autocast": (True, "bf16")},
    ),
}


def train_step(model, opt, x, y, precision):
    with autocast(torch.device("cpu"), precision):
        logits = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def compare(name: str, repeats: int, batch_override: int | None) -> None:
    sizes, block, batch, variants = COMPARISONS[name]
    batch = batch_override or batch
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, VOCAB, (batch, block), generator=gen)
    y = torch.randint(0, VOCAB, (batch, block), generator=gen)
    runs = {}
    for label, (flash, precision) in variants.items():
        torch.manual_seed(0)
        cfg = GPTConfig(
            **sizes,
            vocab_size=VOCAB,
            block_size=block,
            use_flash_attn=flash,
            dropout=0.0,
        )
        model = GPT(cfg).train()
        opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3)
        train_step(model, opt, x, y, precision)  # warm-up
        runs[label] = (model, opt, precision, [])
    for r in range(repeats):
        for label in list(runs) if r % 2 == 0 else list(reversed(runs)):
            model, opt, precision, times = runs[label]
            start = time.perf_counter()
            train_step(model, opt, x, y, precision)
            times.append(time.perf_counter() - start)

    model = next(iter(runs.values()))[0]
    L, H, Q = sizes["n_layer"], sizes["n_head"], sizes["n_embd"] // sizes["n_head"]
    flops_per_step = (6 * model.num_params() + 12 * L * H * Q * block) * block * batch
    print(
        f"{name}: {L} layers, {H} heads, {sizes['n_embd']} dims, block {block}, batch {batch}, "
        f"{model.num_params() / 1e6:.2f}M params, {torch.get_num_threads()} threads, {repeats} alternating steps"
    )
    med = {}
    for label, (_, _, _, times) in runs.items():
        med[label] = statistics.median(times)
        print(
            f"  {label:14s} {med[label] * 1e3:9.1f} ms/step  {batch * block / med[label]:9.0f} tokens/s  "
            f"{flops_per_step / med[label] / 1e9:6.1f} GFLOP/s"
        )
    base, new = list(med)
    print(f"  speed-up ({new} vs {base}): {med[base] / med[new]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(COMPARISONS), action="append")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=None, help="override every comparison's batch")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.only or COMPARISONS:
        compare(name, args.repeats, args.batch_size)


if __name__ == "__main__":
    main()
