"""KV-cached against uncached greedy generation of the GPT model (hw2cli/gpt/model.py).

Both paths produce the same tokens (checked here); the cached one feeds one new position
per step while the context fits in block_size, the uncached one re-runs the whole cropped
context every step (the course code). Timings alternate between the paths in one process,
so a shared machine's load hits both alike; the ratio of medians is the result.

    python benchmarks/bench_gpt_generate.py                       # gpt-micro, block 512
    python benchmarks/bench_gpt_generate.py --preset gpt-mini --repeats 2
    python benchmarks/bench_gpt_generate.py --block-size 128      # the course's window: cache rebuilt
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from hw2cli.gpt.model import GPT, GPTConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gpt-micro")
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--vocab-size", type=int, default=65)
    parser.add_argument("--prompt-len", type=int, default=12)
    parser.add_argument("--new-tokens", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--flash-attn", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    cfg = GPTConfig.from_preset(
        args.preset, vocab_size=args.vocab_size, block_size=args.block_size, use_flash_attn=args.flash_attn
    )
    model = GPT(cfg).eval()
    prompt = torch.randint(0, args.vocab_size, (1, args.prompt_len))

    times: dict[str, list[float]] = {"uncached": [], "cached": []}
    outputs = {}
    for r in range(args.repeats):
        order = ("uncached", "cached") if r % 2 == 0 else ("cached", "uncached")
        for name in order:
            start = time.perf_counter()
            outputs[name] = model.generate(
                prompt, args.new_tokens, do_sample=False, use_cache=name == "cached"
            )
            times[name].append(time.perf_counter() - start)
    assert torch.equal(outputs["cached"], outputs["uncached"]), "cached and uncached greedy tokens differ"

    print(
        f"{args.preset} ({model.num_params() / 1e6:.2f}M params), block_size {args.block_size}, "
        f"prompt {args.prompt_len}, {args.new_tokens} new tokens, batch 1, fp32, "
        f"{'flash' if args.flash_attn else 'explicit'} attention, {torch.get_num_threads()} threads, "
        f"{args.repeats} alternating repeats; tokens identical: yes"
    )
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in med.items():
        print(
            f"  {name:9s} median {t:7.2f} s  ({args.new_tokens / t:8.1f} tokens/s)  runs: "
            + ", ".join(f"{x:.2f}" for x in times[name])
        )
    print(f"  speed-up (uncached / cached): {med['uncached'] / med['cached']:.1f}x")


if __name__ == "__main__":
    main()
