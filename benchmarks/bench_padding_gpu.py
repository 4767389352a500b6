"""The batched padding trainer's settings on one GPU: which layout and precision make a table fastest.

Trains the same table (default: the full Net1 Table 1, 6 conv types x 10 rounds x up to 50
epochs) through ``train_rounds_batched`` once per variant, in one process, and prints per
variant the wall time (data and stacking included, after one warm-up variant run that is not
counted), the share of the device's measured matmul peak, and the largest change of a conv
type's mean test accuracy against the first variant (the tables must stay within the report's
tolerance, a few points):

- ``fp32``: fp32 with cuDNN's default TF32 convolutions, NCHW (what `hw2 padding-bench` runs);
- ``fp32-cl``: the same in channels-last (NHWC) tensors;
- ``fp32-bench``: NCHW with ``torch.backends.cudnn.benchmark`` (cuDNN times its algorithms);
- ``bf16``, ``bf16-cl``: bf16 autocast, NCHW and channels-last.

    python benchmarks/bench_padding_gpu.py                       # on the GPU: about a minute per variant
    python benchmarks/bench_padding_gpu.py --device cpu --rounds 1 --epochs 1 --conv-types valid,fconv

Run it where a GPU is lent; on the CPU it only checks that the script works.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from hw2cli.common.device import resolve_device  # noqa: E402
from hw2cli.common.peak import matmul_peak_gflops  # noqa: E402
from hw2cli.padding.data import SIZES, make_data  # noqa: E402
from hw2cli.padding.model import PaddingNetConfig  # noqa: E402
from hw2cli.padding.options import parse_conv_types  # noqa: E402
from hw2cli.padding.train import TrainSettings, train_flops, train_rounds_batched  # noqa: E402

# name -> (precision, channels-last, cudnn.benchmark)
VARIANTS = {
    "fp32": ("fp32", False, False),
    "fp32-cl": ("fp32", True, False),
    "fp32-bench": ("fp32", False, True),
    "bf16": ("bf16", False, False),
    "bf16-cl": ("bf16", True, False),
}


def run_table(args, conv_types, data, device, variant) -> tuple[float, dict, float]:
    """Seconds, mean test accuracy per conv type, and FLOPs of one table in ``variant``."""
    precision, channels_last, benchmark = VARIANTS[variant]
    settings = replace(TrainSettings(), epochs=args.epochs, precision=precision, channels_last=channels_last)
    configs = [PaddingNetConfig(args.net, ct) for ct in conv_types]
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = benchmark
    try:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        outcomes = list(train_rounds_batched(configs, list(range(args.rounds)), data, settings, device))
        seconds = time.perf_counter() - t0  # the outcomes are on the host: the device is done
    finally:
        torch.backends.cudnn.benchmark = before
    tests = {ct: statistics.fmean(o.test_acc for o in outcomes if o.conv_type == ct) for ct in conv_types}
    flop = sum(
        train_flops(
            PaddingNetConfig(args.net, o.conv_type), o.epochs, SIZES["train"], SIZES["val"], SIZES["test"]
        )
        for o in outcomes
    )
    return seconds, tests, flop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="net1")
    ap.add_argument("--conv-types", default=None)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}"
    )
    args = ap.parse_args()
    conv_types = parse_conv_types(args.conv_types)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        sys.exit(
            f"unknown variant(s) {', '.join(unknown) or args.variants!r}; use some of {', '.join(VARIANTS)}"
        )
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"torch {torch.__version__}, {name}; {args.net}, {len(conv_types)} conv types x {args.rounds} rounds"
    )
    data = make_data(0)
    warm_up = argparse.Namespace(**{**vars(args), "epochs": 1})  # CUDA context, cuDNN, allocator
    run_table(warm_up, conv_types, data, device, variants[0])
    peaks = {
        p: matmul_peak_gflops(device, torch.bfloat16 if p == "bf16" else torch.float32)
        for p in ("fp32", "bf16")
    }
    first = None
    header = f"{'variant':<11} {'seconds':>8} {'TFLOP/s':>8} {'of peak':>8} {'max |d mean test|':>18}"
    print(header + "  mean test per conv type")
    for variant in variants:
        seconds, tests, flop = run_table(args, conv_types, data, device, variant)
        first = first or tests
        change = max(abs(tests[ct] - first[ct]) for ct in conv_types)
        peak = peaks[VARIANTS[variant][0]]
        rate = flop / seconds / 1e12
        cells = " ".join(f"{ct} {tests[ct]:.1f}" for ct in conv_types)
        share = 100 * rate * 1e3 / peak
        print(f"{variant:<11} {seconds:8.2f} {rate:8.2f} {share:7.0f}% {change:18.2f}  {cells}", flush=True)


if __name__ == "__main__":
    main()
