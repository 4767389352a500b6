"""How close the wall-time estimates of `padding-bench` and `rotate-eval` come to the real time.

Each case computes the estimate the command prints (the same functions, the same timed steps)
and then runs the work and measures it, in one process; it prints both and their ratio, with the
load average before and after. The padding cases use few epochs, so that early stopping (which
the estimate does not predict) does not end rounds sooner. Run it on a quiet machine: under
load the timed steps and the run see different shares of the cores.

    OMP_NUM_THREADS=1 python benchmarks/bench_estimates.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from hw2cli.padding import CONV, bench  # noqa: E402
from hw2cli.padding.data import SIZES  # noqa: E402
from hw2cli.padding.model import PaddingNetConfig  # noqa: E402
from hw2cli.padding.options import PaddingOptions  # noqa: E402
from hw2cli.padding.train import TrainSettings  # noqa: E402
from hw2cli.rotation import experiment  # noqa: E402
from hw2cli.rotation.data import load_digits  # noqa: E402
from hw2cli.rotation.model import P4CNNConfig, RotationCNNConfig  # noqa: E402
from hw2cli.rotation.options import WEIGHTS, RotationOptions  # noqa: E402


def padding_case(conv_types: str, rounds: int, epochs: int, workers: int) -> tuple[float, float]:
    """(estimate, measured) seconds of a CPU padding-bench run with worker processes."""
    opts = PaddingOptions(conv_types=conv_types, rounds=rounds, epochs=epochs, device="cpu", workers=workers)
    settings = TrainSettings(epochs=epochs, channels_last=True)
    configs = [PaddingNetConfig(opts.net, ct) for ct in opts.types]
    jobs = sorted(
        ((c, r) for c in configs for r in range(rounds)), key=lambda j: -CONV[j[0].conv_type].cpu_cost
    )
    estimate = bench.estimate_seconds(jobs, "cpu-processes", settings, torch.device("cpu"), SIZES, workers)
    result = bench.run_padding_bench(opts)
    stopped = sum(o.epochs < epochs for v in result.outcomes.values() for o in v)
    if stopped:
        print(f"    ({stopped} round(s) stopped early: the estimate assumed every epoch)")
    return estimate, result.seconds


def rotation_case(mode: str, epochs: int, angles: str) -> tuple[float, float]:
    """(estimate, measured) seconds of training and evaluating on digits."""
    opts = RotationOptions(dataset="digits", mode=mode, epochs=epochs, angles=angles, device="cpu")
    data = load_digits()
    weights = list(dict.fromkeys(WEIGHTS[m] for m in opts.modes))
    configs = {w: P4CNNConfig() if w.startswith("p4") else RotationCNNConfig() for w in weights}
    estimate = experiment.estimate_seconds(data, opts, weights, configs, torch.device("cpu"))
    result = experiment.run_rotation_experiment(opts)
    trained = sum(m.train_seconds for m in result.models if m.weights == m.name)
    return estimate, trained + result.eval_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller cases (a smoke run)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    if args.quick:
        padding = [("valid,reflect", 1, 2, 2)]
        rotation = [("plain", 1, "0:360:90")]
    else:
        padding = [("valid,reflect", 2, 8, 2), ("valid,replicate,reflect,circular,sconv,fconv", 1, 6, 2)]
        rotation = [("both", 3, "0:360:30"), ("p4,augmented-tta", 2, "0:360:30")]
    print(f"{'case':<58} {'estimate s':>10} {'measured s':>10} {'ratio':>6}  load")
    for conv_types, rounds, epochs, workers in padding:
        load = os.getloadavg()[0]
        est, real = padding_case(conv_types, rounds, epochs, workers)
        name = f"padding {conv_types} x{rounds} rounds, {epochs} epochs, {workers} workers"
        print(
            f"{name:<58} {est:>10.1f} {real:>10.1f} {est / real:>6.2f}  {load:.1f}->{os.getloadavg()[0]:.1f}"
        )
    for mode, epochs, angles in rotation:
        load = os.getloadavg()[0]
        est, real = rotation_case(mode, epochs, angles)
        name = f"rotation digits {mode}, {epochs} epochs, angles {angles}"
        print(
            f"{name:<58} {est:>10.1f} {real:>10.1f} {est / real:>6.2f}  {load:.1f}->{os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
