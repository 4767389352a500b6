"""`hw2 reproduce` as a library call: run the selected parts, each ``hw2`` command in its own
process, then write ``report.md``.

**Folders.** A part works in ``DIR/.<part>.next`` (hw2cli.common.rundir.staged_name), whose
``part.json`` is committed after every step; once finished, the staged folder replaces
``DIR/<part>``. So a finished part is never touched by a later attempt until that attempt is
finished too, and an interrupted or failed part leaves its staged folder, from which the same
call continues: the steps done are skipped, and a GPT run with a checkpoint resumes. A folder
``DIR/<part>`` without ``part.json`` was not written by hw2 and is replaced only with ``force``,
as is a ``DIR/report.md`` that hw2 did not write. One writer at a time holds DIR's lock.

**Processes.** Each command runs as ``python -m hw2cli`` in its own process group, its output
appended to the part's ``log.txt``. Why not in-process: a part's memory (CIFAR-10, a GPT, the
padding workers) is returned when its process ends, and a crash, a kill for memory or a
library's own signal handling stays in that process: the finished parts and this run's
bookkeeping survive it. Ctrl-C (SIGINT, or SIGTERM) is caught here and handed to the running
command, which stops between steps and keeps its checkpoint; a second one stops it at once, a
third kills it (its committed files are whole by construction). The run then returns at once,
with what finished.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hw2cli
from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import atomic_write_text, check_writable_dir, fsync_dir, open_regular
from hw2cli.common.progress import Reporter, estimate_message
from hw2cli.common.rundir import lock, staged_name
from hw2cli.common.signals import note_terminated
from hw2cli.reproduce import manifest
from hw2cli.reproduce.manifest import REPORT, TITLE
from hw2cli.reproduce.options import ReproduceOptions, flags
from hw2cli.reproduce.parts import PARTS, PROFILES, RECORDED_BASIS, RECORDED_S, Part, Step


@dataclass
class PartRun:
    """What happened to one part in this run."""

    name: str
    title: str
    status: str  # finished, skipped, failed, interrupted, not selected, not reached
    folder: str
    seconds: float = 0.0  # this run's time on the part
    log: str | None = None
    exit_code: int | None = None  # of the step that failed
    step: str | None = None  # the step that failed or was interrupted
    resumed: bool = False  # continued from an earlier attempt's staged folder


@dataclass
class ReproduceResult:
    out: str
    profile: str
    device: str
    parts: list[PartRun] = field(default_factory=list)
    report: str | None = None  # report.md, once written
    conclusions: list = field(default_factory=list)  # the report's findings, decided by this run
    estimate_s: float | None = None
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> PartRun | None:
        return next((p for p in self.parts if p.status == "failed"), None)


class _Stop:
    """SIGINT/SIGTERM handlers for the run: the first two signals are handed to the running
    command as SIGINT (its process group, as a terminal's Ctrl-C would be: the first stops it
    between steps, the second at once), a third kills it; the run stops before its next step.
    Installed only in the main thread (where Python delivers signals)."""

    def __init__(self) -> None:
        self.count = 0
        self.child: subprocess.Popen | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is not signal.SIG_IGN:  # ignored stays ignored
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        if signum == signal.SIGTERM:
            note_terminated()  # the command exits 143, not 130
        self.forward()

    def forward(self) -> None:
        """Hand the stop to the running command, if any."""
        child = self.child
        if child is not None and child.poll() is None and self.count:
            try:
                os.killpg(child.pid, signal.SIGINT if self.count <= 2 else signal.SIGKILL)
            except ProcessLookupError:
                pass


# ----------------------------------------------------------------------------- planning


@dataclass
class _Plan:
    part: Part
    action: str  # run, skip, not selected
    staged: manifest.PartManifest | None = None  # an earlier attempt to continue
    discard: bool = False  # an earlier attempt of another profile, dropped (force)


def _read(folder: Path, fix: str, force: bool, recover: bool) -> tuple[manifest.PartManifest | None, bool]:
    """The folder's manifest (a staged one recovered first) and whether it could be read; a
    damaged one raises unless ``force``."""
    try:
        if recover:
            manifest.recover(folder)
        return manifest.read(folder, fix), True
    except Hw2Error:
        if not force:
            raise
        return None, False


def _plan_part(out: Path, part: Part, opts: ReproduceOptions) -> _Plan:
    """Skip, run or continue ``part``; Hw2Error when that would replace what hw2 did not
    write, or work of another profile, without ``force``."""
    final, staged, force = out / part.name, out / staged_name(part.name), opts.force
    earlier = None
    if staged.is_dir():
        fix = f"add {flags(force=True)} to start the {part.name} part again"
        earlier, read = _read(staged, fix, force, recover=True)
        if not read:
            return _Plan(part, "run", discard=True)
    if final.exists() and not final.is_dir():
        raise Hw2Error(
            f"{final} is a file, not a part folder; move it away or choose another {flags(out=True)}"
        )
    done = None
    if final.is_dir():
        fix = f"rerun with {flags(out=out, parts=part.name, force=True)} to redo that part"
        done, _ = _read(final, fix, force, recover=False)
        if done is None and not force:
            raise Hw2Error(
                f"{final} was not written by hw2 reproduce (it has no part.json); move it away, choose "
                f"another {flags(out=True)}, or add {flags(force=True)} to replace it once the new part is finished"
            )
    if done is not None and done.status == "finished" and not force:
        if done.profile == opts.profile:
            return _Plan(part, "skip")
        raise Hw2Error(
            f"{final} holds the {part.name} part of the {done.profile} profile; choose another "
            f"{flags(out=True)}, or add {flags(force=True)} to redo it with the {opts.profile} profile"
        )
    if earlier is not None and earlier.profile != opts.profile:
        if not force:
            raise Hw2Error(
                f"{staged} holds an unfinished {part.name} part of the {earlier.profile} profile; continue it "
                f"with {flags(profile=earlier.profile)}, or add {flags(force=True)} to start it again with "
                f"{opts.profile}"
            )
        return _Plan(part, "run", discard=True)
    return _Plan(part, "run", staged=earlier)


def _check_report(out: Path, force: bool) -> None:
    """Refuse, before any work, a report.md that hw2 did not write (unless ``force``) and,
    even with ``force``, one that is a link, a FIFO or a device (never written through)."""
    path = out / REPORT
    try:
        fh = open(open_regular(path, follow=False), encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise Hw2Error(
            f"cannot read {path} ({exc.strerror}); move it away or choose another {flags(out=True)}"
        ) from None
    with fh:
        if not force and fh.readline().rstrip("\n") != TITLE:
            raise Hw2Error(
                f"{path} was not written by hw2 (it does not start with {TITLE!r}); move it away, "
                f"choose another {flags(out=True)}, or add {flags(force=True)} to replace it"
            )


# ----------------------------------------------------------------------------- estimate


def _cuda_present() -> bool:
    """Whether ``device`` auto will find a CUDA GPU, without importing torch here."""
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def _load_factor() -> tuple[float, str]:
    """How much slower than alone the commands will run beside the work the machine already
    does: (1-minute load average + 1) / cores, at least 1 (POSIX; else 1)."""
    from hw2cli.common.threads import cpu_cores, slowdown

    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 1.0, ""
    factor = slowdown(1, load)
    why = f", times {factor:.1f} for the load average of {load:.1f} on {cpu_cores()} cores"
    return factor, why if factor > 1 else ""


def estimate(out: Path, profile: str, device: str, plans: list[_Plan]) -> tuple[float, str] | None:
    """Seconds the parts to run will take and where the number comes from: the recorded part
    times of this profile and device kind (hw2cli.reproduce.parts.RECORDED_S), scaled by how
    much slower or faster the parts already finished in ``out`` were than their record, or,
    with none finished, by the machine's load."""
    kind = "cuda" if device == "cuda" or (device == "auto" and _cuda_present()) else "cpu"
    recorded = RECORDED_S.get((profile, kind), {})
    if not recorded:
        return None
    ratios = []
    for name, seconds in recorded.items():
        meta = manifest.read(out / name, "") if (out / name / manifest.MANIFEST).is_file() else None
        if meta is not None and meta.status == "finished" and meta.profile == profile and meta.seconds > 0:
            ratios.append(meta.seconds / seconds)
    basis = RECORDED_BASIS[(profile, kind)]
    if ratios:
        scale = statistics.median(ratios)
        basis += f", times {scale:.2f} as the parts finished here took"
    else:
        scale, why = _load_factor()
        basis += why
    todo = [p.part.name for p in plans if p.action == "run"]
    unknown = [name for name in todo if name not in recorded]
    if unknown:
        basis += f"; no record for {', '.join(unknown)}, not counted"
    return scale * sum(recorded.get(name, 0.0) for name in todo), basis


# ----------------------------------------------------------------------------- running


def _run_step(step: Step, folder: Path, log: Path, stop: _Stop) -> int:
    """Run a Python step, or ``hw2 <step.argv>`` in ``folder`` with its output appended to
    ``log`` and the hw2cli it runs importable; the step's exit code."""
    if step.run is not None:
        try:
            step.run(folder)
        except OSError as exc:
            raise Hw2Error(
                f"cannot write into {folder} ({exc.strerror}); free some space or fix its permissions"
            ) from None
        return 0
    root, path = str(Path(hw2cli.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
    # appended to as hw2's own file only: a link planted in a kept staged folder is refused
    with open(open_regular(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, follow=False), "ab") as fh:
        fh.write(f"\n$ hw2 {shlex.join(step.argv)}\n".encode())
        fh.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "hw2cli", *step.argv],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            process_group=0,  # Ctrl-C reaches it through _Stop only: exactly once
        )
        stop.child = proc
        stop.forward()  # a signal that came while it started
        try:
            rc = proc.wait()
        finally:
            stop.child = None
    return 128 - rc if rc < 0 else rc  # killed by signal N: 128 + N, as shells say


def _run_part(out: Path, plan: _Plan, opts: ReproduceOptions, stop: _Stop, reporter: Reporter) -> PartRun:
    """Run the steps of one part in its staged folder and, once all are done, put it in place."""
    part = plan.part
    staged = out / staged_name(part.name)
    if plan.discard:
        shutil.rmtree(staged)
    staged.mkdir(exist_ok=True)
    log = staged / "log.txt"
    run = PartRun(part.name, part.title, "running", str(out / part.name), log=str(log))
    if plan.staged is not None:
        data = plan.staged.model_dump(exclude={"files", "staged", "remove"})
        data.update(device=opts.device, status="running")
        run.resumed = True
    else:
        data = manifest.new(part.name, part.title, opts.profile, opts.device)
    manifest.commit(staged, data)  # the folder is hw2's from now on
    steps = part.steps(PROFILES[opts.profile], opts.device, staged)
    done = data["steps_done"]
    what = f"continues ({len(done)} of {len(steps)} steps done before)" if done else "starts"
    reporter.note(f"== {part.name}: {part.title}: {what}; log {log}")
    for step in steps:
        if step.name in done:
            continue
        if stop.count:
            break
        reporter.update("parts", description=f"{part.name}: {step.name}")
        start = time.monotonic()
        rc = _run_step(step, staged, log, stop)
        elapsed = time.monotonic() - start
        run.seconds += elapsed
        if rc not in step.ok and not stop.count:
            run.status, run.exit_code, run.step = "failed", rc, step.name
            return run
        data["seconds"] += elapsed  # an interrupted step's time counts: its checkpoint is kept
        if rc in step.ok:
            done.append(step.name)
        manifest.commit(staged, data)
    if len(done) < len(steps):
        run.status, run.step = "interrupted", next(s.name for s in steps if s.name not in done)
        return run
    manifest.commit(staged, data, finished=True)
    _promote(out, part.name)
    run.status, run.log = "finished", str(out / part.name / "log.txt")
    reporter.note(f"   {part.name} finished in {data['seconds']:.1f} s")
    return run


def _promote(out: Path, name: str) -> None:
    """Put the finished staged folder of part ``name`` in place of the earlier one. A cut here
    leaves a finished staged folder, which the next run puts in place before anything else."""
    final, staged = out / name, out / staged_name(name)
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    elif final.exists() or final.is_symlink():
        final.unlink()
    os.replace(staged, final)
    fsync_dir(out)


def _finish_promotion(out: Path, name: str, force: bool) -> None:
    """Put in place a part that an earlier run finished but was cut before moving (its staged
    manifest says finished), unless that would replace a folder hw2 did not write."""
    staged, final = out / staged_name(name), out / name
    if not staged.is_dir():
        return
    meta, _ = _read(staged, "", force=True, recover=True)  # a damaged manifest: _plan_part names it
    if meta is None or meta.status != "finished":
        return
    if final.exists() and not (final / manifest.MANIFEST).is_file() and not force:
        return  # _plan_part refuses it, naming the folder
    _promote(out, name)


def run_reproduce(
    opts: ReproduceOptions, reporter: Reporter | None = None, report: Callable[[Path], Any] | None = None
) -> ReproduceResult:
    """Run the parts ``opts`` selects (see the module docstring); once all finished, write
    ``DIR/report.md`` with ``report`` (hw2cli.report.build.build_report: the report reads what
    this package writes, so this package does not import it).

    Refuses up front (Hw2Error, nothing written) what would replace files hw2 did not write,
    or work of another profile, without ``force``. A part that fails or is interrupted stops
    the run: the result says which, the finished parts stay, and the same call continues."""
    reporter = reporter or Reporter()
    out = Path(opts.folder())
    check_writable_dir(out, f"{flags(out=True)} folder")
    selected = opts.selected()
    result = ReproduceResult(str(out), opts.profile, opts.device)
    started = time.monotonic()
    with lock(out, what="reproduction folder"):
        for part in PARTS:
            _finish_promotion(out, part.name, opts.force)
        plans = [_plan_part(out, p, opts) if p.name in selected else _Plan(p, "not selected") for p in PARTS]
        _check_report(out, opts.force)
        todo = [p for p in plans if p.action == "run"]
        reporter.note(
            f"reproduce: profile {opts.profile}, device {opts.device}, into {out}: "
            f"{len(todo)} part(s) to run, {sum(p.action == 'skip' for p in plans)} finished before (skipped)"
        )
        if PROFILES[opts.profile].leaves_out:
            reporter.note(f"this is the {opts.profile} profile: {PROFILES[opts.profile].leaves_out}")
        found = estimate(out, opts.profile, opts.device, plans)
        if found is not None:
            result.estimate_s = found[0]
            shorter = f"use {flags(profile='quick')} or fewer {flags(parts=True)}"
            line = estimate_message(found[0], f"the {opts.profile} reproduction", found[1], shorter)
            if line:
                reporter.note(line)
        reporter.start("parts", f"reproduce ({opts.profile})", total=len(todo))
        with _Stop() as stop:
            for plan in plans:
                name, title, folder = plan.part.name, plan.part.title, str(out / plan.part.name)
                if plan.action != "run":
                    if plan.action == "skip":
                        reporter.note(f"== {name}: finished before, skipped ({flags(force=True)} redoes it)")
                    status = "skipped" if plan.action == "skip" else plan.action
                    result.parts.append(PartRun(name, title, status, folder))
                elif stop.count or result.failed:
                    result.parts.append(PartRun(name, title, "not reached", folder))
                else:
                    result.parts.append(_run_part(out, plan, opts, stop, reporter))
                    reporter.update("parts", advance=1)
            result.interrupted = stop.count > 0
        reporter.finish("parts")
        if report is not None and not result.interrupted and result.failed is None:
            built = report(out)
            atomic_write_text(out / REPORT, built.markdown)
            result.report, result.conclusions = str(out / REPORT), built.conclusions.findings
    result.seconds = time.monotonic() - started
    return result
