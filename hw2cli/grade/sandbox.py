"""Grading runs: each submission in its own process, with a time limit, a memory limit, a
temporary working folder and Python audit hooks (docs/grade.md says what they contain).

The processes fork from one server process that imported torch and the checks once
(multiprocessing's forkserver), so a submission costs milliseconds to start, not seconds, and
this process (the CLI) never imports torch. A child reports each check as it starts and ends;
when it hangs past the time limit or dies, the check it was running fails with the reason and
the rest are not graded, while the other submissions still run.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from hw2cli.common.errors import Hw2Error
from hw2cli.common.progress import Reporter
from hw2cli.grade.options import GradeOptions

STATUSES = ("pass", "fail", "error", "skipped")
LOG = "output.log"  # what the submission printed, in its working folder


@dataclass
class CheckResult:
    name: str
    status: str  # one of STATUSES
    reason: str  # empty when it passed
    points: float  # earned
    max_points: float
    traceback: str = ""  # the student's, for an error


@dataclass
class SubmissionResult:
    name: str  # the path it was read from
    checks: list[CheckResult]
    seconds: float
    stopped: str | None  # why its process ended early (time limit, a signal), else None
    output: str  # the end of what it printed

    @property
    def score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_points for c in self.checks)

    @property
    def passed(self) -> bool:
        return all(c.status == "pass" for c in self.checks)


@dataclass
class GradeResult:
    submissions: list[SubmissionResult]
    time_limit: float
    memory_limit: int
    interrupted: bool = False
    checks: dict[str, float] = field(default_factory=dict)  # name -> points, in run order

    @property
    def passed(self) -> bool:
        return not self.interrupted and all(s.passed for s in self.submissions)


def find_submissions(paths: list[str]) -> list[tuple[str, Path]]:
    """(name, gpt.py) of each submission: a .py file, a folder holding gpt.py, or a folder of
    submissions (each sub-folder holding a gpt.py, each .py file beside them)."""
    found = []
    for given in paths:
        path = Path(given)
        if path.is_file():
            found.append((given, path))
        elif (path / "gpt.py").is_file():
            found.append((given, path / "gpt.py"))
        elif path.is_dir():
            inner = sorted(p for p in path.iterdir() if (p / "gpt.py").is_file() or p.suffix == ".py")
            if not inner:
                raise Hw2Error(
                    f"{given} holds no gpt.py, no folder with one and no .py file; give submissions"
                )
            found += [(str(p), p / "gpt.py" if p.is_dir() else p) for p in inner]
        else:
            raise Hw2Error(f"submission {given} does not exist; give a gpt.py or a folder of submissions")
    return found


def run_grade(opts: GradeOptions, reporter: Reporter | None = None) -> GradeResult:
    """Grade every submission of ``opts`` (``opts.jobs`` at a time); Ctrl-C stops the running
    ones and returns the finished ones with ``interrupted=True``."""
    reporter = reporter or Reporter()
    subs = find_submissions(opts.submissions)
    done: dict[int, SubmissionResult] = {}
    stop, interrupted = threading.Event(), False
    reporter.start("grade", "grading", total=len(subs))
    with ThreadPoolExecutor(opts.jobs) as pool:
        futures = {pool.submit(_grade_one, name, path, opts, stop): i for i, (name, path) in enumerate(subs)}
        try:
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                reporter.update("grade", advance=1)
        except KeyboardInterrupt:
            stop.set()
            interrupted = True
            pool.shutdown(cancel_futures=True)
    reporter.finish("grade")
    return GradeResult(
        [done[i] for i in sorted(done)], opts.time_limit, opts.memory_limit, interrupted, dict(opts.checks)
    )


# ----------------------------------------------------------------------------- the parent's side


@functools.cache
def _context():
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["hw2cli.grade.checks"])  # torch and hw2's model, imported once
    return ctx


def _grade_one(name: str, source: Path, opts: GradeOptions, stop: threading.Event) -> SubmissionResult:
    """One submission in its own process (see the module docstring)."""
    ctx = _context()
    with tempfile.TemporaryDirectory(prefix="hw2-grade-") as work:
        siblings = source.parent.glob("*.py") if source.name == "gpt.py" else []
        try:
            for py in siblings:
                shutil.copyfile(py, Path(work) / py.name)
            shutil.copyfile(source, Path(work) / "gpt.py")
        except OSError as exc:
            raise Hw2Error(f"cannot read submission {name}: {exc}; check its permissions") from None
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child,
            args=(send, work, opts.memory_limit, math.ceil(opts.time_limit) + 1, list(opts.checks)),
            daemon=True,
        )
        proc.start()  # the first one waits for the server to import torch: not counted
        start = time.monotonic()
        send.close()
        results: dict[str, tuple] = {}
        running, stopped = None, None
        while stopped is None:
            left = start + opts.time_limit - time.monotonic()
            if left <= 0 or stop.is_set():
                stopped = (
                    f"stopped at the time limit of {opts.time_limit:g} s" if left <= 0 else "interrupted"
                )
            elif receive.poll(min(left, 0.5)):
                try:
                    message = receive.recv()
                except (EOFError, OSError):  # the process ended
                    break
                if message[0] == "start":
                    running = message[1]
                else:
                    results[message[1]] = message[2:]
                    running = None
                    if len(results) == len(opts.checks):  # done, whatever threads it left behind
                        break
        seconds = time.monotonic() - start
        _kill(proc)
        if stopped is None and len(results) < len(opts.checks):
            code = proc.exitcode
            stopped = f"its process died ({_exit_reason(code)})"
        output = _tail(Path(work) / LOG)
    return SubmissionResult(
        name, _checks(opts, results, running, stopped), round(seconds, 2), stopped, output
    )


def _kill(proc) -> None:
    """End the child and everything in its session (it calls setsid first)."""
    if proc.is_alive():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
    proc.join()


def _exit_reason(code: int | None) -> str:
    if code is None or code >= 0:
        return f"exit code {code}"
    name = signal.Signals(-code).name
    known = {
        "SIGXCPU": "its CPU time reached the time limit",
        "SIGKILL": "killed by SIGKILL: over the memory limit?",
    }
    return known.get(name, f"killed by {name}")


def _tail(path: Path, keep: int = 2000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-keep:]
    except OSError:
        return ""


def _checks(opts: GradeOptions, results: dict, running: str | None, stopped: str | None) -> list[CheckResult]:
    out = []
    for name, points in opts.checks.items():
        if name in results:
            status, reason, trace = results[name]
            if reason.startswith("MemoryError"):
                reason += f" (the memory limit is {opts.memory_limit} MiB beyond the grader's own)"
        elif name == running:
            status, reason, trace = "fail", f"{stopped} during this check", ""
        else:
            status, reason, trace = "skipped", f"not graded: {stopped}", ""
        out.append(CheckResult(name, status, reason, points if status == "pass" else 0.0, points, trace))
    return out


# ----------------------------------------------------------------------------- the child's side

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
BLOCKED = {  # audit event -> what the submission tried
    "subprocess.Popen": "started a process",
    "os.system": "started a process",
    "os.exec": "started a program",
    "os.posix_spawn": "started a process",
    "os.spawn": "started a process",
    "os.fork": "forked",
    "os.forkpty": "forked",
    "os.kill": "sent a signal",
    "os.killpg": "sent a signal",
    "socket.connect": "used the network",
    "socket.bind": "used the network",
    "socket.sendto": "used the network",
    "socket.getaddrinfo": "used the network",
    "resource.setrlimit": "changed its limits",
    "ctypes.dlopen": "loaded native code",
}
PATH_EVENTS = {  # audit event -> what it does to the paths among its first two arguments
    "os.remove": "removed",
    "os.rename": "renamed",
    "os.rmdir": "removed",
    "os.mkdir": "created",
    "os.chmod": "changed",
    "os.truncate": "truncated",
    "os.symlink": "linked",
    "os.link": "linked",
    "shutil.rmtree": "removed",
}


def _guard(work: str, violations: list[str]):
    """An audit hook that blocks (PermissionError) and records what a submission must not do:
    write outside ``work``, start processes, signal them, use the network, load native code."""

    def outside(path) -> bool:
        if isinstance(path, int) or path is None:
            return False  # a file descriptor it already holds
        real = os.path.realpath(os.fsdecode(path))
        return real != work and not real.startswith(work + os.sep) and real != os.devnull

    def hook(event: str, args: tuple) -> None:
        what = BLOCKED.get(event)
        if event == "open" and args[2] & WRITE_FLAGS and outside(args[0]):
            what = f"opened {args[0]} for writing"
        elif event in PATH_EVENTS and any(outside(a) for a in args[:2] if isinstance(a, str | bytes)):
            what = f"{PATH_EVENTS[event]} {args[0]}"
        if what is not None:
            violations.append(what if event not in BLOCKED else f"{what} ({event})")
            raise PermissionError(f"hw2 grade's sandbox blocks this: {violations[-1]}")

    return hook


def _address_space() -> int:
    """Bytes of address space this process maps now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration):
        return 0


def _child(conn, work: str, memory_mib: int, cpu_seconds: int, names: list[str]) -> None:
    """The submission's process: its own session, output into its folder's log, its address
    space and CPU time capped, the audit hook on, then the checks (each reported through ``conn``)."""
    import resource

    os.setsid()
    log = os.open(os.path.join(work, LOG), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(work)
    os.environ["TMPDIR"] = tempfile.tempdir = work  # its temporary files stay inside
    limit = _address_space() + memory_mib * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # CPU seconds up to the time limit: a loop ends even if the grader that would kill it died.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    sys.dont_write_bytecode = True
    sys.path.insert(0, work)
    import torch

    from hw2cli.grade import checks

    torch.set_num_threads(1)
    if "train-loss" in names:
        # An optimizer's first step imports torch's compiler stack, which makes a cache folder:
        # take that step here, before the guard that refuses writes outside ``work``.
        weight = torch.zeros(1, requires_grad=True)
        weight.grad = torch.zeros(1)
        torch.optim.AdamW([weight]).step()
    violations: list[str] = []
    sys.addaudithook(_guard(os.path.realpath(work), violations))
    checks.run_checks(names, violations, lambda *message: conn.send(message))
    conn.close()
