"""Training speed of `hw2 gpt train` against a plain fp32 eager loop, and against nanoGPT.

1. ratio: the trainer (``hw2cli.gpt.train.train``; flash attention, --precision, optional
   --compile) and a plain loop (fp32, explicit attention, the course's loop: batch, forward,
   loss, backward, clip, AdamW step) train the same model on the same text for the same number
   of steps; rounds alternate so both see the same machine load. Prints tokens/s and the ratio.
2. --e2e: nanoGPT's documented CPU configuration (4 layers, 4 heads, 128 dims, block 64,
   batch 12, no dropout, lr 1e-3 cosine to 1e-4 after 100 warm-up steps, 2,000 steps, an
   evaluation of 20 batches every 250) run as a user runs it: the `hw2 gpt train` command in a
   fresh process (start-up, evaluation, samples, checkpoints and Figure 3 included), timed from
   outside. With --nanogpt DIR (a checkout of karpathy/nanoGPT) nanoGPT's own ``train.py`` runs
   the same configuration on the same cleaned text in alternation, and the ratio of wall times
   is printed. --cold gives every hw2 run an empty Inductor cache, so --compile pays its whole
   compilation each time; without it, runs after the first reuse the cache, as a user's do.
   --before DIR (another checkout of hw2, e.g. the main branch before a change) runs that
   checkout's `hw2 gpt train` in the same rounds, so that a change is timed against the code
   before it under the same machine load. --threads N sets OMP_NUM_THREADS for every run (both
   programs follow it), --steps shortens the runs; each run's CPU time is printed beside its
   wall time, with the medians over the rounds and their ratios.

    python benchmarks/bench_gpt_train.py --txt-file ../shared/data/grimms_fairy_tales.txt
    python benchmarks/bench_gpt_train.py --txt-file ../shared/data/grimms_fairy_tales.txt \
        --e2e --nanogpt /path/to/nanoGPT --rounds 2 --hw2-args="--flash-attn --compile"
    python benchmarks/bench_gpt_train.py --txt-file ../shared/data/grimms_fairy_tales.txt \
        --e2e --nanogpt /path/to/nanoGPT --before /path/to/hw2-main --rounds 3 \
        --hw2-args="--flash-attn --compile --threads 2"
    python benchmarks/bench_gpt_train.py --txt-file ../shared/data/grimms_fairy_tales.txt \
        --e2e --nanogpt /path/to/nanoGPT --threads 1 --rounds 1 --hw2-args=""
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hw2cli.gpt.data import get_batch, load_text, split_data  # noqa: E402
from hw2cli.gpt.model import GPT, GPTConfig  # noqa: E402
from hw2cli.gpt.tokens import CharTokenizer  # noqa: E402
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
            dropout=0.0,
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


E2E_STEPS = 2000
HW2_E2E = (
    "--model-type gpt-micro --block-size 64 --batch-size 12 --dropout 0 --lr 1e-3 --lr-schedule cosine "
    "--min-lr 1e-4 --warmup-steps 100 --max-steps {steps} --eval-interval 250 --eval-steps 20 --device cpu"
)
NANOGPT_E2E = (  # nanoGPT's README command for a CPU
    "--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 "
    "--n_layer=4 --n_head=4 --n_embd=128 --max_iters={steps} --lr_decay_iters={steps} --dropout=0.0"
)


def nanogpt_workdir(text: str, folder: Path, nanogpt: Path) -> None:
    """What nanoGPT's data/shakespeare_char/prepare.py writes, from hw2's cleaned text: ids of
    the sorted characters as uint16, the first 90% for training; and its configurator beside."""
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    data = folder / "data" / "hw2bench"
    data.mkdir(parents=True)
    n = int(len(ids) * 0.9)
    ids[:n].tofile(data / "train.bin")
    ids[n:].tofile(data / "val.bin")
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}
    (data / "meta.pkl").write_bytes(pickle.dumps(meta))
    (folder / "configurator.py").write_text((nanogpt / "configurator.py").read_text())


def timed(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, float, str]:
    """Wall time, CPU time (user + system, all its threads) and output of a command in a fresh
    process (it must succeed). On a shared machine the CPU time at one thread is the steadier
    measure: it leaves out the time other processes held the core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, proc.stdout + proc.stderr


def run_nanogpt(nanogpt: Path, work: Path, out: Path, steps: int, env: dict) -> tuple[float, float, float]:
    """Wall time, CPU time and best validation loss of nanoGPT's CPU configuration."""
    cmd = [sys.executable, str(nanogpt / "train.py"), str(nanogpt / "config" / "train_shakespeare_char.py")]
    cmd += NANOGPT_E2E.format(steps=steps).split() + ["--dataset=hw2bench", f"--out_dir={out}"]
    wall, cpu, log = timed(cmd, cwd=work, env=env)
    vals = [float(v) for v in re.findall(r"val loss ([0-9.]+)", log)]
    return wall, cpu, min(vals[1:])  # the loss of step 0 is the untrained model's


def run_hw2(
    txt_file: str,
    extra: str,
    out: Path,
    cache: Path | None,
    steps: int,
    env: dict,
    checkout: Path | None = None,
) -> tuple[float, float, float, float]:
    """Wall time, CPU time, best validation loss and steady tokens/s of `hw2 gpt train` (of this
    checkout, or of ``checkout``)."""
    env = dict(env)
    env["PYTHONPATH"] = str(checkout or Path(__file__).resolve().parents[1])
    if cache is not None:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
    cmd = [sys.executable, "-m", "hw2cli", "gpt", "train", "--txt-file", txt_file]
    cmd += HW2_E2E.format(steps=steps).split() + shlex.split(extra)
    cmd += ["--out", str(out / "run"), "--json", str(out / "run.json"), "--quiet"]
    wall, cpu, _ = timed(cmd, env=env)
    result = json.loads((out / "run.json").read_text())
    rows = [r["tokens_per_s"] for r in result["metrics"][1:]]
    return wall, cpu, result["best_val_loss"], float(np.median(rows))


def end_to_end(args: argparse.Namespace, text: str, tmp: Path) -> None:
    """Alternate the runs round by round (hw2, hw2 before, nanoGPT) and print each with the
    medians over the rounds and their ratios, of wall time and of CPU time."""
    nanogpt = Path(args.nanogpt).resolve() if args.nanogpt else None
    if nanogpt is not None:
        nanogpt_workdir(text, tmp / "nanogpt", nanogpt)
    before = Path(args.before).resolve() if args.before else None
    steps = args.steps or E2E_STEPS
    env = dict(os.environ)
    if args.threads:  # both programs read it: hw2's thread rule defers to it, torch's default too
        env["OMP_NUM_THREADS"] = str(args.threads)
    sides = {"hw2": None, **({"hw2 before": before} if before else {})}
    runs: dict[str, list[tuple[float, float]]] = {"nanoGPT": [], **{side: [] for side in sides}}
    for r in range(args.rounds):
        cache = tmp / f"inductor{r}" if args.cold else None
        for side, checkout in sides.items():
            out = tmp / f"{side.replace(' ', '-')}-{r}"
            wall, cpu, best, tps = run_hw2(args.txt_file, args.hw2_args, out, cache, steps, env, checkout)
            runs[side].append((wall, cpu))
            print(
                f"round {r}: {side} gpt train {args.hw2_args}: {wall:.1f} s (CPU {cpu:.1f} s), best val loss "
                f"{best:.4f}, {tps:,.0f} tok/s after the first interval ({1000 * 768 / tps:.1f} ms/step)",
                flush=True,
            )
        if nanogpt is not None:
            wall, cpu, best = run_nanogpt(nanogpt, tmp / "nanogpt", tmp / f"nanogpt-out{r}", steps, env)
            runs["nanoGPT"].append((wall, cpu))
            print(
                f"round {r}: nanoGPT train.py: {wall:.1f} s (CPU {cpu:.1f} s), best val loss {best:.4f}",
                flush=True,
            )
    medians = {
        side: [statistics.median(col) for col in zip(*pairs, strict=True)]
        for side, pairs in runs.items()
        if pairs
    }
    print(f"{steps} steps, medians of {args.rounds} rounds:")
    for side, (wall, cpu) in medians.items():
        line = f"  {side}: {wall:.1f} s wall, {cpu:.1f} s CPU"
        for other in ("nanoGPT", "hw2 before"):
            if other in medians and other != side and side.startswith("hw2"):
                w, c = medians[other]
                line += f"; speed / {other}'s: {w / wall:.2f}x wall, {c / cpu:.2f}x CPU"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--txt-file", required=True)
    ap.add_argument("--steps", type=int, help="steps of each run (default: 200, with --e2e 2000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument(
        "--e2e", action="store_true", help="nanoGPT's 2000-step CPU configuration through the CLI"
    )
    ap.add_argument("--nanogpt", help="a nanoGPT checkout to run side by side (with --e2e)")
    ap.add_argument("--hw2-args", default="--flash-attn", help="extra `hw2 gpt train` options (with --e2e)")
    ap.add_argument(
        "--cold", action="store_true", help="an empty Inductor cache for every hw2 run (with --e2e)"
    )
    ap.add_argument("--before", help="another hw2 checkout to run in the same rounds (with --e2e)")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every run (with --e2e; default: as set)")
    args = ap.parse_args()
    text, _ = load_text(args.txt_file)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, text {len(text):,} chars")
    with tempfile.TemporaryDirectory() as tmp:
        if args.e2e:
            end_to_end(args, text, Path(tmp))
            return
        base, new = [], []
        for r in range(args.rounds):
            base.append(plain_loop(text, args.steps or 200))
            new.append(trainer(args.txt_file, args.steps or 200, args.precision, args.compile, f"{tmp}/r{r}"))
            print(f"round {r}: plain fp32 loop {base[-1]:,.0f} tok/s, trainer {new[-1]:,.0f} tok/s")
        b, n = max(base), max(new)
        print(
            f"best of {args.rounds}: plain {b:,.0f} tok/s, trainer ({args.precision}, flash"
            f"{', compile' if args.compile else ''}) {n:,.0f} tok/s, ratio {n / b:.2f}x"
        )


if __name__ == "__main__":
    main()
