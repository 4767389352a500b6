"""Training speed of `hw2 gpt train` against a plain fp32 eager loop, and nanoGPT's CPU anchor.

1. ratio: the trainer (``hw2cli.gpt.train.train``; flash attention, --precision, optional
   --compile) and a plain loop (fp32, explicit attention, the course's loop: batch, forward,
   loss, backward, clip, AdamW step) train the same model on the same text for the same number
   of steps; rounds alternate so both see the same machine load. Prints tokens/s and the ratio.
2. --anchor: nanoGPT's documented CPU configuration (4 layers, 4 heads, 128 dims, block 64,
   batch 12, no dropout, lr 1e-3 cosine to 1e-4, 2000 steps) trained by the trainer; prints
   wall time, steps/s and validation loss (nanoGPT here: 74 s, 1.92 on a 1.1 MB text).

    python benchmarks/bench_gpt_train.py --txt-file ../shared/data/grimms_fairy_tales.txt [--anchor]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hw2cli.gpt.data import CharTokenizer, get_batch, load_text, split_data  # noqa: E402
from hw2cli.gpt.model import GPT, GPTConfig  # noqa: E402
from hw2cli.gpt.train import TrainOptions, train  # noqa: E402

NANOGPT_CPU = dict(
    model_type="gpt-micro",
    block_size=64,
    batch_size=12,
    dropout=0.0,
    lr=1e-3,
    lr_schedule="cosine",
    min_lr=1e-4,
    warmup_steps=100,
    clip_grad_norm=1.0,
)


def plain_loop(text: str, steps: int, seed: int = 0) -> float:
    """The baseline: tokens/s of a bare fp32 eager loop (explicit attention)."""
    tok = CharTokenizer.from_text(text)
    data = torch.tensor(tok.encode(text))
    train_data, _ = split_data(data, 0.1, NANOGPT_CPU["block_size"])
    torch.manual_seed(seed)
    model = GPT(
        GPTConfig.from_preset(
            "gpt-micro",
            vocab_size=tok.vocab_size,
            block_size=64,
            embd_pdrop=0.0,
            resid_pdrop=0.0,
            attn_pdrop=0.0,
        )
    )
    opt = model.configure_optimizers(0.1, 1e-3)
    gen = torch.Generator().manual_seed(seed)
    warm = steps // 4  # timed from here, like the trainer's rows after the first
    for i in range(steps):
        if i == warm:
            t0 = time.perf_counter()
        x, y = get_batch(train_data, 64, 12, gen)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return (steps - warm) * 12 * 64 / (time.perf_counter() - t0)


def trainer(txt_file: str, steps: int, precision: str, compile: bool, out: str) -> float:
    """Tokens/s of the trainer's training steps after the first quarter (warm-up, compilation)."""
    opts = TrainOptions(
        txt_file=txt_file,
        **NANOGPT_CPU,
        max_steps=steps,
        eval_interval=steps,
        eval_steps=1,
        log_interval=steps // 4,
        sample_interval=0,
        flash_attn=True,
        precision=precision,
        compile=compile,
        device="cpu",
        out=out,
    )
    rows = train(opts).metrics[1:]
    return len(rows) / sum(1 / r["tokens_per_s"] for r in rows)  # equal steps per row: harmonic mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--txt-file", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--anchor", action="store_true", help="also run nanoGPT's 2000-step CPU configuration")
    args = ap.parse_args()
    text, _ = load_text(args.txt_file)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, text {len(text):,} chars")
    with tempfile.TemporaryDirectory() as tmp:
        base, new = [], []
        for r in range(args.rounds):
            base.append(plain_loop(text, args.steps))
            new.append(trainer(args.txt_file, args.steps, args.precision, args.compile, f"{tmp}/r{r}"))
            print(f"round {r}: plain fp32 loop {base[-1]:,.0f} tok/s, trainer {new[-1]:,.0f} tok/s")
        b, n = max(base), max(new)
        print(
            f"best of {args.rounds}: plain {b:,.0f} tok/s, trainer ({args.precision}, flash"
            f"{', compile' if args.compile else ''}) {n:,.0f} tok/s, ratio {n / b:.2f}x"
        )
        if args.anchor:
            opts = TrainOptions(
                txt_file=args.txt_file,
                **NANOGPT_CPU,
                max_steps=2000,
                eval_interval=250,
                eval_steps=20,
                log_interval=50,
                sample_interval=0,
                flash_attn=True,
                precision=args.precision,
                compile=args.compile,
                device="cpu",
                out=f"{tmp}/anchor",
            )
            t0 = time.perf_counter()
            result = train(opts)
            wall = time.perf_counter() - t0
            print(
                f"nanoGPT CPU config, 2000 steps: {wall:.1f} s ({2000 / wall:.1f} steps/s), "
                f"val loss {result.val_loss:.4f} (best {result.best_val_loss:.4f}), train loss {result.train_loss:.4f}"
            )


if __name__ == "__main__":
    main()
