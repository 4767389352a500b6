"""The side-by-side baselines of scripts/gpu-check.sh, each run from a checkout as its users run it.

    python scripts/gpu_check_baselines.py nanogpt DIR --txt FILE --device cuda [--smoke]
    python scripts/gpu_check_baselines.py course DIR [--args "..."] [--networks 60]

nanogpt: nanoGPT's own train.py with its config/train_shakespeare_char.py (6 layers, 6 heads,
384 dims, block 256, batch 64, dropout 0.2, lr 1e-3 cosine to 1e-4, 100 warm-up steps, bf16 and
torch.compile where the GPU has them), 2,000 steps as gpu-check's hw2 run, on the same text:
hw2's cleaned text, written as nanoGPT's data/shakespeare_char/prepare.py writes its data
(sorted characters as uint16 ids, the first 90% for training). --smoke: the toy sizes of
gpu-check's smoke GPT run, eager fp32. Writes result.json: wall time of train.py, its median
milliseconds per iteration (the logged iterations after the first, so evaluations and
compilation are left out), its validation losses and the best of them after step 0.

course: the course's Q1.1 code, ``python net.py ARGS`` in a copy of DIR (so its outputs stay
out of the checkout). --networks: how many networks that command trains (60: a full Table 1),
so that its time per network compares with hw2's. Writes result.json with its wall time.

Both exit with the baseline's exit code; its output is in log.txt of gpu-check's check folder.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = 2000  # gpu-check's full GPT run
SMOKE = dict(
    max_iters=10,
    lr_decay_iters=10,
    eval_interval=5,
    eval_iters=2,
    log_interval=1,
    block_size=32,
    batch_size=4,
    n_layer=3,
    n_head=3,
    n_embd=48,
    dropout=0.0,
    warmup_iters=2,
    compile=False,
    dtype="float32",
)


def cleaned_text(path: str) -> str:
    """The text hw2 trains on: the file without its Gutenberg header and licence."""
    sys.path.insert(0, str(ROOT))
    try:
        from hw2cli.gpt.data import load_text
    except ImportError:  # the GPT data module moved: the raw text is close enough for a baseline
        return Path(path).read_text(encoding="utf-8")
    return load_text(path)[0]


def prepare_nanogpt(text: str, work: Path, nanogpt: Path) -> None:
    """What nanoGPT's prepare.py writes for a character-level data set, as data/hw2check, and
    its configurator beside (train.py reads both from its working directory)."""
    import numpy as np

    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    data = work / "data" / "hw2check"
    data.mkdir(parents=True, exist_ok=True)
    n = int(len(ids) * 0.9)
    ids[:n].tofile(data / "train.bin")
    ids[n:].tofile(data / "val.bin")
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}
    (data / "meta.pkl").write_bytes(pickle.dumps(meta))
    shutil.copy(nanogpt / "configurator.py", work / "configurator.py")


def parse_nanogpt_log(log: str) -> dict:
    """Validation losses, best validation loss after step 0 and median ms per iteration."""
    vals = [
        (int(s), float(v)) for s, v in re.findall(r"step (\d+): train loss [0-9.]+, val loss ([0-9.]+)", log)
    ]
    times = [(int(i), float(t)) for i, t in re.findall(r"iter (\d+): loss [0-9.]+, time ([0-9.]+)ms", log)]
    after_start = [v for s, v in vals if s > 0]
    steady = [t for i, t in times if i > 0]
    return {
        "val_losses": vals,
        "best_val_loss": min(after_start) if after_start else None,
        "ms_per_iter": statistics.median(steady) if steady else None,
        "iters": max((i for i, _ in times), default=0),
    }


def run_nanogpt(args: argparse.Namespace) -> int:
    nanogpt = Path(args.dir).resolve()
    work = Path("nanogpt-work").resolve()
    prepare_nanogpt(cleaned_text(args.txt), work, nanogpt)
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = dict(SMOKE) if args.smoke else {"max_iters": STEPS, "lr_decay_iters": STEPS}
    if device == "cpu":
        settings["compile"] = False  # nanoGPT's README: no compile on a CPU
    settings.update(dataset="hw2check", out_dir=str(work / "out"), device=device)
    cmd = [sys.executable, str(nanogpt / "train.py"), str(nanogpt / "config" / "train_shakespeare_char.py")]
    cmd += [f"--{k}={v}" for k, v in settings.items()]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    print(proc.stdout + proc.stderr)
    result = {"command": shlex.join(cmd), "rc": proc.returncode, "wall_s": wall, **settings}
    result["batch_size"] = settings.get("batch_size", 64)  # the shakespeare-char config's
    result["block_size"] = settings.get("block_size", 256)
    result.update(parse_nanogpt_log(proc.stdout + proc.stderr))
    Path("result.json").write_text(json.dumps(result, indent=2))
    return proc.returncode


def run_course(args: argparse.Namespace) -> int:
    work = Path("course-work").resolve()
    shutil.copytree(Path(args.dir).resolve(), work, ignore=shutil.ignore_patterns(".git"), dirs_exist_ok=True)
    cmd = [sys.executable, "net.py", *shlex.split(args.args)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    print(proc.stdout + proc.stderr)
    result = {"command": shlex.join(cmd), "rc": proc.returncode, "wall_s": wall, "networks": args.networks}
    Path("result.json").write_text(json.dumps(result, indent=2))
    return proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="baseline", required=True)
    nano = sub.add_parser("nanogpt")
    nano.add_argument("dir")
    nano.add_argument("--txt", required=True)
    nano.add_argument("--device", default="cuda")
    nano.add_argument("--smoke", action="store_true")
    course = sub.add_parser("course")
    course.add_argument("dir")
    course.add_argument("--args", default="")
    course.add_argument("--networks", type=int, default=60)
    args = ap.parse_args()
    return run_nanogpt(args) if args.baseline == "nanogpt" else run_course(args)


if __name__ == "__main__":
    sys.exit(main())
