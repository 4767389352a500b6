"""Does ``keep_freed_memory()`` speed up the GPT and rotation trainers on the CPU?

padding-bench's workers call it (mallopt: keep freed memory instead of unmapping it), which
cut a Net1 step from 160 to 100 ms. This checks the two other CPU trainers on their default
settings. Each measurement runs in a fresh child process, with glibc's default malloc
("default") or after ``keep_freed_memory()`` ("kept"), because the setting is per process and
cannot be undone; the two kinds alternate (A B A B ...) so both see the same machine load.

- gpt: ``hw2cli.gpt.train.train`` with the course's model (gpt-mini, block 128) at
  ``--gpt-batch`` windows per step (the course's 128 takes about 20 s a step here);
  tokens/s of the steps after the first logged row.
- rotation: ``hw2cli.rotation.experiment.train_model`` (batch 64, the default) for one epoch
  on ``--images`` random CIFAR-sized images; images/s. (``run_rotation_experiment`` calls
  ``keep_freed_memory()`` on the CPU since this measurement; ``train_model`` does not, so
  both kinds can still be compared.)

    python benchmarks/bench_freed_memory.py [--rounds 2] [--gpt-batch 64] [--gpt-steps 6] [--images 10000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def gpt_tokens_per_s(batch: int, steps: int) -> float:
    from hw2cli.gpt.train import TrainOptions, train

    text = (ROOT / "README.md").read_text(encoding="utf-8") * 4  # any text: speed, not loss
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(text, encoding="utf-8")
        opts = TrainOptions(
            txt_file=str(corpus),
            model_type="gpt-mini",
            block_size=128,
            batch_size=batch,
            max_steps=steps,
            eval_interval=steps,
            eval_steps=1,
            log_interval=1,
            sample_interval=0,
            device="cpu",
            out=f"{tmp}/run",
        )
        rows = train(opts).metrics[1:]
    return len(rows) / sum(1 / r["tokens_per_s"] for r in rows)  # one step per row: harmonic mean


def rotation_images_per_s(images: int) -> float:
    import torch

    from hw2cli.rotation.data import ImageData
    from hw2cli.rotation.experiment import train_model
    from hw2cli.rotation.model import RotationCNNConfig

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (images,), generator=gen)
    data = ImageData("random", x, y, x[:64], y[:64], [str(c) for c in range(10)])
    start = time.perf_counter()
    train_model(
        data,
        RotationCNNConfig(n_classes=10, image_size=32),
        augment=False,
        epochs=1,
        batch_size=64,
        lr=1e-3,
        seed=0,
        device=torch.device("cpu"),
    )
    return images / (time.perf_counter() - start)


def child(args: argparse.Namespace) -> None:
    if args.kept:
        from hw2cli.common.device import keep_freed_memory

        assert keep_freed_memory(), "not glibc: nothing to compare"
    value = (
        gpt_tokens_per_s(args.gpt_batch, args.gpt_steps)
        if args.child == "gpt"
        else rotation_images_per_s(args.images)
    )
    print(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--gpt-batch", type=int, default=64)
    ap.add_argument("--gpt-steps", type=int, default=6)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--workloads", default="gpt,rotation")
    ap.add_argument("--child", choices=["gpt", "rotation"], help=argparse.SUPPRESS)
    ap.add_argument("--kept", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    common = [
        "--gpt-batch",
        str(args.gpt_batch),
        "--gpt-steps",
        str(args.gpt_steps),
        "--images",
        str(args.images),
    ]
    units = {"gpt": "tokens/s", "rotation": "images/s"}
    for workload in args.workloads.split(","):
        runs: dict[str, list[float]] = {"default": [], "kept": []}
        for r in range(args.rounds):
            for kind in runs:
                cmd = [sys.executable, __file__, "--child", workload, *common] + (
                    ["--kept"] if kind == "kept" else []
                )
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs[kind].append(float(out.split()[-1]))
                print(f"{workload} round {r} {kind}: {runs[kind][-1]:,.1f} {units[workload]}", flush=True)
        base, kept = statistics.median(runs["default"]), statistics.median(runs["kept"])
        print(
            f"{workload}: default malloc {base:,.1f}, keep_freed_memory {kept:,.1f} {units[workload]} "
            f"(median of {args.rounds}), ratio {kept / base:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
