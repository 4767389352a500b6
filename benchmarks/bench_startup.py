"""Start-up time of `hw2 --help` and `hw2 graph powers` from the installed wheel, beside the same
commands from the clone's sources (the baseline), with the ratio and the load printed.

Builds the wheel, installs it (without its dependencies) into a fresh virtual environment that
borrows this interpreter's installed dependencies (a .pth line: no 3 GB install to time a
start-up), and runs each command --repeats times alternately from the two, in an empty folder.
Targets (issue 30): --help under 0.3 s, graph under 1 s on a quiet 2-core CPU.

    python benchmarks/bench_startup.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRAPH = ROOT / "hw2cli" / "examples" / "graph1.txt"
COMMANDS = {
    "hw2 --help": (["--help"], 0.3),
    "hw2 graph powers": (["graph", "powers", str(GRAPH), "--walks", "1", "3", "--length", "3"], 1.0),
}


def wheel_env(tmp: Path) -> Path:
    """A venv with hw2 from its wheel (pip byte-compiles it, as for a user); its Python."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
        check=True,
    )
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    python = tmp / "venv" / "bin" / "python"
    wheel = next((tmp / "dist").glob("hw2-*.whl"))
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "zz_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [python, "-c", "import hw2cli; print(hw2cli.__file__)"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(site), where.stdout  # hw2 from the wheel, not the clone
    return python


def seconds(python: Path | str, args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run; the CPU time barely depends on the load."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(python), "-m", "hw2cli", *args], cwd=cwd, env=env, capture_output=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    repeats = parser.parse_args().repeats
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="hw2-startup-") as tmp:
        tmp = Path(tmp)
        wheel_python = wheel_env(tmp)
        run_dir = tmp / "run"
        run_dir.mkdir()
        clone_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        wheel_env_vars = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        load = os.getloadavg()[0]
        print(f"load average before: {load:.2f}")
        print("wall time, median (min) of the runs; CPU time (user + system), median")
        print(
            f"{'command':<18} {'clone':>15} {'wheel':>15} {'ratio':>6} "
            f"{'clone CPU':>10} {'wheel CPU':>10} {'target':>7}"
        )
        for name, (args, target) in COMMANDS.items():
            clone, wheel = [], []
            for _ in range(repeats):  # alternate, so that a change of load hits both
                clone.append(seconds(sys.executable, args, run_dir, clone_env))
                wheel.append(seconds(wheel_python, args, run_dir, wheel_env_vars))
            (c, c_cpu), (w, w_cpu) = (
                tuple(map(statistics.median, zip(*runs, strict=True))) for runs in (clone, wheel)
            )
            c_min, w_min = min(r[0] for r in clone), min(r[0] for r in wheel)
            print(
                f"{name:<18} {c:>6.3f}s ({c_min:.3f}) {w:>6.3f}s ({w_min:.3f}) {w / c:>6.2f} "
                f"{c_cpu:>9.3f}s {w_cpu:>9.3f}s {target:>6.1f}s"
            )
        print(f"load average after: {os.getloadavg()[0]:.2f} (quiet: under 0.3 on this 2-core machine)")
        shutil.rmtree(tmp / "venv")


if __name__ == "__main__":
    main()
