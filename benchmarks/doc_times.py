"""The wall times the README and the docs state, measured: each documented command run in a
fresh copy of the clone, on the machine as found ("quiet") and beside one CPU-bound process
("busy", as users' machines are), repeated, and printed as ranges with the machine.

    python benchmarks/doc_times.py                       # every job, 1 run quiet + 1 busy
    python benchmarks/doc_times.py --only graph,table1 --repeats 2
    python benchmarks/doc_times.py --only gpt-default --txt ../shared/data/grimms_fairy_tales.txt
    python benchmarks/doc_times.py --only reproduce --keep /tmp/kept   # then /tmp/kept/reproduce/repro
                                                  # (and each part's and command's time printed)

The jobs are the README's quick-start lines, the default `hw2 gpt train`, the quick
reproduction and the test suite (the README's test command). Paste the table into
docs/benchmarks.md#documented-times; the README and docs quote its ranges.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_TEXT = ROOT.parent / "shared" / "data" / "grimms_fairy_tales.txt"

# name -> (what the docs call it, shell lines run in the copy's root; {txt} is the GPT text)
JOBS: dict[str, tuple[str, list[str]]] = {
    "graph": (
        "README quick start: the three graph lines",
        [
            "hw2 graph powers examples/graph1.txt --walks 1 3 --length 3",
            "hw2 graph laplacian examples/graph2.txt --json out/graph2.json",
            "hw2 graph check examples/report_graph2.txt --kind laplacian "
            "--matrix examples/report_graph2_laplacian.txt || test $? -eq 1",
        ],
    ),
    "table1": (
        "README quick start: Table 1 in miniature",
        ["hw2 padding-bench --net net1 --rounds 2 --epochs 10 --json out/table1.json"],
    ),
    "gpt-default": (
        "`hw2 gpt train --txt-file T` with no other option",
        ["hw2 gpt train --txt-file {txt} --out runs/gpt"],
    ),
    "reproduce": ("the quick reproduction", ["hw2 reproduce --profile quick --out repro"]),
    "suite": ("the test suite (`python -m pytest -q`)", ["python -m pytest -q -p no:cacheprovider"]),
}


def machine() -> str:
    """CPU model, cores, the vector ISA torch uses, and the load average when measured."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import torch

        isa = torch.backends.cpu.get_cpu_capability()
        version = torch.__version__
    except ImportError:
        isa, version = "?", "not installed"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores, {isa}, Python {platform.python_version()}, torch {version}"


def fresh_copy(dest: Path) -> Path:
    """The committed tree (git archive HEAD) unpacked in ``dest``: what a user clones, with the
    README's first line run (`hw2 examples`, untimed: the inputs the graph lines read)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    env = {**os.environ, "PYTHONPATH": str(dest)}
    subprocess.run(
        [sys.executable, "-m", "hw2cli", "examples"], cwd=dest, env=env, capture_output=True, check=True
    )
    return dest


@contextlib.contextmanager
def busy(on: bool):
    """One CPU-bound process beside the job (``on``), stopped afterwards."""
    if not on:
        yield
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def run_job(lines: list[str], txt: Path, load: bool, keep: Path | None = None) -> float | None:
    """Seconds of wall time for ``lines`` in a fresh copy; None if a line failed. With ``keep``,
    the copy's outputs (out/, repro/, runs/) are copied there (e.g. the committed example report)."""
    with tempfile.TemporaryDirectory(prefix="hw2-doc-times-") as tmp:
        root = fresh_copy(Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(root), "HW2_CACHE_DIR": str(Path(tmp) / "cache")}
        env.pop("OMP_NUM_THREADS", None)  # the commands choose their threads as for a user
        script = "set -e\n" + "\n".join(line.format(txt=txt) for line in lines)
        with busy(load):
            start = time.perf_counter()
            done = subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
        for folder in ("out", "repro", "runs") if keep else ():
            if (root / folder).is_dir():
                shutil.copytree(root / folder, keep / folder, dirs_exist_ok=True)
    if done.returncode != 0:
        print(f"  failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return seconds


def reproduction_times(folder: Path) -> None:
    """Each part's time as its part.json records it (its commands' times summed: what
    hw2cli/reproduce/parts.py RECORDED_S holds) and each command's exit, wall and CPU time."""
    for path in sorted(folder.glob("*/part.json")):
        meta = json.loads(path.read_text())
        print(f"  {meta['part']}: {meta['seconds']:.1f} s")
        log = path.with_name("log.txt").read_text(errors="replace").splitlines()
        commands = [line for line in log if line.startswith("$ hw2 ")]
        for command, end in zip(commands, [line for line in log if line.startswith("[exit ")], strict=False):
            print(f"    {end} {command[:100]}")


def fmt(values: list[float]) -> str:
    def one(s: float) -> str:
        whole = round(s)  # rounded once: 239.7 s is 4:00, not 3:60
        return f"{whole} s" if whole < 100 else f"{whole // 60}:{whole % 60:02d}"

    if not values:
        return "failed"
    low, high = min(values), max(values)
    return one(low) if len(values) == 1 or one(low) == one(high) else f"{one(low)}–{one(high)}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(JOBS), help=f"comma list of {', '.join(JOBS)}")
    parser.add_argument("--repeats", type=int, default=1, help="runs per job and load")
    parser.add_argument("--loads", default="quiet,busy", help="quiet, busy or both")
    parser.add_argument(
        "--keep", type=Path, help="copy each job's outputs of its first quiet run into KEEP/JOB"
    )
    parser.add_argument("--txt", type=Path, default=SHARED_TEXT if SHARED_TEXT.is_file() else None)
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        parser.error(f"unknown job(s) {unknown}; use {', '.join(JOBS)}")
    txt = args.txt
    if txt is None:  # no shared text: hw2's own docstrings, written once
        from hw2cli.common.corpus import write_builtin_corpus

        txt = write_builtin_corpus(Path(tempfile.mkdtemp()) / "corpus.txt")
    loads = [x for x in args.loads.split(",") if x]
    print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for name in names:
        title, lines = JOBS[name]
        times: dict[str, list[float]] = {load: [] for load in loads}
        for repeat in range(args.repeats):
            for load in loads:
                keep = args.keep / name if args.keep and repeat == 0 and load == "quiet" else None
                seconds = run_job(lines, txt.resolve(), load == "busy", keep)
                print(f"{name} ({load}): {'failed' if seconds is None else f'{seconds:.1f} s'}", flush=True)
                if keep is not None and (keep / "repro").is_dir():
                    reproduction_times(keep / "repro")
                if seconds is not None:
                    times[load].append(seconds)
        rows.append((title, times))
    print(f"\n| job | {' | '.join(loads)} |\n|---|{'---:|' * len(loads)}")
    for title, times in rows:
        print(f"| {title} | {' | '.join(fmt(times[load]) for load in loads)} |")


if __name__ == "__main__":
    main()
