"""Course-style sequential training against the path `hw2 padding-bench` chooses, same work;
or (--compare batched) the CPU's worker processes against the batched trainer on the CPU.

The course-style loop trains one model at a time with PyTorch's default threads, nn.Conv2d's
built-in padding modes, a DataLoader, and torch.save of the best weights after every
improvement. The chosen path is `run_padding_bench(path="auto")` (on the CPU: one worker
process per core, one thread each, channels-last, explicit padding, in-place ReLU, glibc's
malloc told to keep freed memory). Both run here on the same rounds and epochs; the script
prints seconds, GFLOP/s and the ratio, per conv type and in all, and the share of the
machine's measured matmul peak each path reached (one thread's fp32 peak times the cores).

--compare batched: the two trainers a CPU could use for a table, each on all cores, on the same
rounds and epochs, alternating ``--repeats`` times: ``cpu-processes`` (what `hw2 padding-bench`
chooses on a CPU) and ``batched`` (one stacked model per padding width, what it chooses on a
GPU, here eager on torch's default threads). It prints both times, their ratio (above 1: the
batched trainer is faster), and whether both trained every round for the same epochs. The
batched trainer should become the CPU's choice only where this shows it is not slower.

Usage:

    python benchmarks/bench_padding.py --rounds 2 --epochs 3 [--net net1] [--conv-types ...]
    python benchmarks/bench_padding.py --compare batched --rounds 2 --epochs 10 --repeats 2
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from hw2cli.padding.bench import run_padding_bench  # noqa: E402
from hw2cli.padding.data import SIZES, make_data  # noqa: E402
from hw2cli.padding.model import PaddingNetConfig, make_model  # noqa: E402
from hw2cli.padding.options import PaddingOptions, parse_conv_types  # noqa: E402
from hw2cli.padding.train import train_flops  # noqa: E402


def course_round(
    net: str, conv_type: str, seed: int, data, epochs: int, patience: int = 8
) -> tuple[float, float, int]:
    """One round the way the course code trains it; returns (val acc, test acc, epochs)."""
    model = make_model(PaddingNetConfig(net, conv_type, padding_impl="builtin"), seed)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.9, eps=1e-6, weight_decay=5e-5)
    train = DataLoader(TensorDataset(data.train_x, data.train_y), batch_size=200, shuffle=False)
    val = DataLoader(TensorDataset(data.val_x, data.val_y), batch_size=200, shuffle=False)
    test = DataLoader(TensorDataset(data.test_x, data.test_y), batch_size=200, shuffle=False)

    def run_eval(loader):
        model.eval()
        loss, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for x, y in loader:
                out = model(x)
                loss += F.cross_entropy(out, y).item() * len(y)
                correct += (out.argmax(1) == y).sum().item()
                n += len(y)
        return loss / n, 100.0 * correct / n

    best, counter, epoch = float("inf"), 0, 0  # epoch: the epochs trained, returned
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "best.pt")
        for epoch in range(1, epochs + 1):  # noqa: B007 -- read after the loop
            model.train()
            for x, y in train:
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
            val_loss, val_acc = run_eval(val)
            if val_loss < best:
                best, counter = val_loss, 0
                torch.save(copy.deepcopy(model.state_dict()), ckpt)
            else:
                counter += 1
            if counter > patience:
                break
        model.load_state_dict(torch.load(ckpt))
        return val_acc, run_eval(test)[1], epoch


def compare_batched(args: argparse.Namespace, conv_types: list[str]) -> None:
    """cpu-processes against batched on the CPU, same work, alternating; best time of each."""
    opts = PaddingOptions(
        net=args.net,
        conv_types=",".join(conv_types),
        rounds=args.rounds,
        epochs=args.epochs,
        device="cpu",
        workers=args.workers,
    )
    print(f"work: {args.net}, {len(conv_types)} conv types x {args.rounds} rounds x {args.epochs} epochs")
    runs: dict[str, list] = {"cpu-processes": [], "batched": []}
    for r in range(args.repeats):
        for path, results in runs.items():
            result = run_padding_bench(opts, path=path)
            results.append(result)
            print(
                f"  repeat {r + 1} {path:<14} {result.seconds:8.1f} s {result.gflops:7.1f} GFLOP/s  "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    procs, batched = (min(results, key=lambda res: res.seconds) for results in runs.values())
    peak = procs.peak_gflops  # one thread's measured peak times the worker processes (all cores)
    for name, res in (("cpu-processes", procs), ("batched", batched)):
        print(f"{name:<14} best {res.seconds:8.1f} s  {100 * res.gflops / peak:.0f}% of {peak:.0f} GFLOP/s")
    same_epochs = all(
        [o.epochs for o in procs.outcomes[ct]] == [o.epochs for o in batched.outcomes[ct]]
        for ct in conv_types
    )
    d_test = max(
        abs(a.test_acc - b.test_acc)
        for ct in conv_types
        for a, b in zip(procs.outcomes[ct], batched.outcomes[ct], strict=True)
    )
    print(f"same epochs in every round: {same_epochs}; max |dTest| {d_test:.2f} points")
    print(
        f"ratio cpu-processes / batched: {procs.seconds / batched.seconds:.2f}x (above 1: batched is faster)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="net1")
    ap.add_argument("--conv-types", default=None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--compare", choices=("course", "batched"), default="course")
    ap.add_argument("--repeats", type=int, default=2, help="alternations (with --compare batched)")
    args = ap.parse_args()
    conv_types = parse_conv_types(args.conv_types)
    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
        f"cpu capability {torch.backends.cpu.get_cpu_capability()}; load average {os.getloadavg()[0]:.1f}"
    )
    if args.compare == "batched":
        compare_batched(args, conv_types)
        return
    data = make_data(0)

    # The course-style loop (one model at a time) conv type by conv type, then the chosen path
    # on the same rounds in one call, as `hw2 padding-bench` runs a table (its time includes
    # starting the worker processes, each of which imports torch and draws the data).
    print(f"work: {args.net}, {len(conv_types)} conv types x {args.rounds} rounds x {args.epochs} epochs")
    base, base_sec, base_flop = {}, {}, {}
    sizes = (SIZES["train"], SIZES["val"], SIZES["test"] // 2)  # the course loop tests once
    for ct in conv_types:
        t0 = time.perf_counter()
        base[ct] = [course_round(args.net, ct, r, data, args.epochs) for r in range(args.rounds)]
        base_sec[ct] = time.perf_counter() - t0
        base_flop[ct] = sum(train_flops(PaddingNetConfig(args.net, ct), e, *sizes) for _, _, e in base[ct])
        print(f"  course-style {ct:<10} {base_sec[ct]:7.1f} s  load {os.getloadavg()[0]:.1f}", flush=True)
    opts = PaddingOptions(
        net=args.net,
        conv_types=",".join(conv_types),
        rounds=args.rounds,
        epochs=args.epochs,
        workers=args.workers,
    )
    result = run_padding_bench(opts)
    print(
        f"  chosen path ({result.path} on {result.device}): {result.seconds:.1f} s  load {os.getloadavg()[0]:.1f}"
    )
    # The peak: one thread's measured fp32 matmul speed times the cores used (both paths use all).
    peak = result.peak_gflops
    print(f"  measured matmul peak: {peak:.0f} GFLOP/s ({result.workers} x one thread)")

    def pct(flop: float, seconds: float) -> str:
        return f"{100 * flop / seconds / 1e9 / peak:.0f}%"

    print(
        f"\n{'conv type':<10} {'course s':>9} {'chosen s/worker':>16} {'ratio':>6} "
        f"{'course peak':>12} {'chosen peak':>12} {'max |dTest| %':>14}"
    )
    workers = result.workers
    for ct in conv_types:
        outcomes = result.outcomes[ct]
        worker_sec = sum(o.seconds for o in outcomes) / workers
        flop = sum(
            train_flops(PaddingNetConfig(args.net, ct), o.epochs, *sizes[:2], SIZES["test"]) for o in outcomes
        )
        d_test = max(abs(b[1] - o.test_acc) for b, o in zip(base[ct], outcomes, strict=False))
        print(
            f"{ct:<10} {base_sec[ct]:>9.1f} {worker_sec:>16.1f} {base_sec[ct] / worker_sec:>5.2f}x "
            f"{pct(base_flop[ct], base_sec[ct]):>12} {pct(flop, worker_sec):>12} {d_test:>14.2f}"
        )
    base_total = sum(base_sec.values())
    print(f"\ncourse-style: {base_total:8.1f} s  {sum(base_flop.values()) / base_total / 1e9:6.1f} GFLOP/s")
    share = pct(result.flop, result.seconds)
    print(f"chosen path:  {result.seconds:8.1f} s  {result.gflops:6.1f} GFLOP/s ({share} of peak)")
    print(f"ratio: {base_total / result.seconds:.2f}x")


if __name__ == "__main__":
    main()
