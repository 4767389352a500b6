"""Characters against BPE tokens for gpt-micro on Grimm's text, at the same wall-time budget.

A byte-level BPE (``tokenizers``, vocabulary ``--vocab``) is trained on the training split of
the text; then gpt-micro is trained twice for ``--budget`` seconds each, once on characters
and once on BPE tokens, with the same block size (in tokens), batch, learning rate and seed.
Each is scored on the same held-out last 10% of the text: validation loss per token turned
into bits per character (``hw2cli.gpt.tokens.bits_per_char``), so the two compare. Prints
steps, tokens/s, characters/s and validation bits/char of each, and the ratios BPE / char.

First, when ``tiktoken`` is installed (it is no dependency of hw2), the same BPE is loaded into
tiktoken (its ranks and GPT-2's split pattern) and both libraries encode the whole text, best of
3: the ids must be equal; prints the seconds of each.

    python benchmarks/bench_gpt_tokenizer.py --txt-file ../shared/data/grimms_fairy_tales.txt --budget 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hw2cli.gpt.data import get_batch, load_text  # noqa: E402
from hw2cli.gpt.model import GPT, GPTConfig  # noqa: E402
from hw2cli.gpt.tokens import (  # noqa: E402
    BPETokenizer,
    CharTokenizer,  # noqa: E402
    bits_per_char,
)


def train_bpe(text: str, vocab: int) -> BPETokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        [text],
        trainers.BpeTrainer(
            vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        ),
    )
    return BPETokenizer(tok.to_str())


def compare_encoders(bpe: BPETokenizer, text: str) -> None:
    """Seconds to encode ``text`` with ``tokenizers`` and with tiktoken holding the same BPE."""
    try:
        import tiktoken
    except ImportError:
        print("tiktoken is not installed: encoder comparison skipped")
        return
    # GPT-2's byte-level alphabet: the printable bytes stand for themselves, the rest for 256+n
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in keep]
    unicode_to_byte = {chr(b): b for b in keep} | {chr(256 + n): b for n, b in enumerate(others)}
    vocab = json.loads(bpe.json_text)["model"]["vocab"]
    ranks = {bytes(unicode_to_byte[c] for c in token): i for token, i in vocab.items()}
    pattern = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    enc = tiktoken.Encoding("grimm-bpe", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    if enc.encode_ordinary(text) != bpe.encode(text):
        raise SystemExit("tiktoken and tokenizers disagree on the ids")
    seconds = {}
    for name, encode in (("tokenizers", bpe.encode), ("tiktoken", enc.encode_ordinary)):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            encode(text)
            times.append(time.perf_counter() - t0)
        seconds[name] = min(times)
    print(
        f"encode {len(text):,} characters (same ids): tokenizers {seconds['tokenizers']:.3f} s, "
        f"tiktoken {seconds['tiktoken']:.3f} s ({seconds['tokenizers'] / seconds['tiktoken']:.1f}x)"
    )


def run(tokenizer, train_text: str, val_text: str, args) -> dict:
    """Train gpt-micro for ``args.budget`` seconds; tokens/s, chars/s and validation bits/char."""
    train_ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tokenizer.encode(val_text), dtype=torch.long)
    chars_per_token = len(train_text) / len(train_ids)
    torch.manual_seed(args.seed)
    config = GPTConfig.from_preset(
        "gpt-micro",
        vocab_size=tokenizer.vocab_size,
        block_size=args.block_size,
        dropout=0.1,
    )
    model = GPT(config)
    opt = model.configure_optimizers(0.1, args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.budget:
        x, y = get_batch(train_ids, args.block_size, args.batch_size, gen)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps += 1
    elapsed = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():  # every full window of the validation split, once
        windows = val_ids[: (len(val_ids) - 1) // args.block_size * args.block_size + 1]
        x = windows[:-1].view(-1, args.block_size)
        y = windows[1:].view(-1, args.block_size)
        batches = zip(x.split(64), y.split(64), strict=True)
        nats = sum(
            F.cross_entropy(model(xb).flatten(0, 1), yb.flatten(), reduction="sum").item()
            for xb, yb in batches
        )
    n_tokens = y.numel()
    n_chars = len(tokenizer.decode(windows[1:].tolist()))
    tps = steps * args.batch_size * args.block_size / elapsed
    return {
        "steps": steps,
        "tokens_per_s": tps,
        "chars_per_s": tps * chars_per_token,
        "chars_per_token": chars_per_token,
        "val_nats_per_token": nats / n_tokens,
        "val_bpc": bits_per_char(nats / n_tokens, n_tokens, n_chars),
        "vocab": tokenizer.vocab_size,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--txt-file", default="../shared/data/grimms_fairy_tales.txt")
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--budget", type=float, default=60.0, help="training seconds per tokenizer")
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    text, _ = load_text(args.txt_file)
    cut = int(len(text) * 0.9)
    train_text, val_text = text[:cut], text[cut:]
    t0 = time.perf_counter()
    bpe = train_bpe(train_text, args.vocab)
    print(f"BPE vocabulary {bpe.vocab_size} trained in {time.perf_counter() - t0:.1f} s")
    compare_encoders(bpe, text)
    results = {
        "char": run(CharTokenizer.from_text(text), train_text, val_text, args),
        "bpe": run(bpe, train_text, val_text, args),
    }
    print(
        f"gpt-micro, block {args.block_size} tokens, batch {args.batch_size}, "
        f"{args.budget:g} s each, 1 thread"
    )
    header = ("", "vocab", "steps", "chars/tok", "tokens/s", "chars/s", "val bits/char")
    widths = (7, 7, 10, 10, 10, 15)
    print(f"{header[0]:6}" + "".join(f"{h:>{w}}" for h, w in zip(header[1:], widths, strict=True)))
    for name, r in results.items():
        print(
            f"{name:6}{r['vocab']:>7}{r['steps']:>7}{r['chars_per_token']:>10.2f}{r['tokens_per_s']:>10.0f}"
            f"{r['chars_per_s']:>10.0f}{r['val_bpc']:>15.3f}"
        )
    c, b = results["char"], results["bpe"]
    print(
        f"BPE / char: tokens/s {b['tokens_per_s'] / c['tokens_per_s']:.2f}x, "
        f"chars/s {b['chars_per_s'] / c['chars_per_s']:.2f}x, bits/char {b['val_bpc'] / c['val_bpc']:.2f}x"
    )


if __name__ == "__main__":
    main()
