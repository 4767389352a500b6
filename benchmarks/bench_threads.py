"""How many intra-op threads a CPU command should use: 1 against all cores, with and without
OpenMP's passive waiting, on the machine as found and beside a competing CPU-bound process.

Each measurement is a fresh child process (thread settings must be fixed before torch starts)
that trains for a fixed number of steps and prints its steps/s; variants alternate within a
round so that all see the same machine load. Workloads: nanoGPT's CPU configuration of the GPT
(gpt-micro, block 64, batch 12) and the rotate-eval CNN (batch 64, 32x32x3).

    python benchmarks/bench_threads.py [--rounds 3] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name -> environment of the child
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "all cores, spinning (torch default)": {},
    "all cores, OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
}


def child(workload: str, steps: int) -> None:
    """Train ``steps`` steps of ``workload`` (after 5 warm-up steps) and print steps/s as JSON."""
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(ROOT))
    torch.manual_seed(0)
    if workload == "gpt":
        from hw2cli.gpt.model import GPT, GPTConfig

        model = GPT(GPTConfig.from_preset("gpt-micro", vocab_size=80, block_size=64, dropout=0.0))
        x = torch.randint(0, 80, (12, 64))

        def loss_fn():
            return F.cross_entropy(model(x).flatten(0, 1), x.flatten())
    else:
        from hw2cli.rotation.model import RotationCNN, RotationCNNConfig

        model = RotationCNN(RotationCNNConfig())
        x, y = torch.rand(64, 3, 32, 32), torch.randint(0, 10, (64,))

        def loss_fn():
            return F.cross_entropy(model(x), y)

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for i in range(steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - t0), "threads": torch.get_num_threads()}))


def _busy(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def measure(workload: str, steps: int, env: dict[str, str]) -> float:
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    out = subprocess.run(
        [sys.executable, __file__, "--child", workload, "--steps", str(steps)],
        env={**full, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.steps)
        return
    import torch

    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, capability {torch.backends.cpu.get_cpu_capability()}, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    for condition in ("as found", "+1 busy process"):
        stop = mp.Event()
        busy = mp.Process(target=_busy, args=(stop,)) if condition != "as found" else None
        if busy:
            busy.start()
        for workload in ("gpt", "cnn"):
            rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for _ in range(args.rounds):
                for name, env in VARIANTS.items():
                    rates[name].append(measure(workload, args.steps, env))
            base = statistics.median(rates["1 thread"])
            for name, r in rates.items():
                med = statistics.median(r)
                print(
                    f"{condition:<16} {workload:<4} {name:<38} {med:7.2f} steps/s  {med / base:5.2f}x of 1 thread"
                )
        if busy:
            stop.set()
            busy.join()


if __name__ == "__main__":
    main()
