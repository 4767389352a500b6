"""`hw2 reproduce` as a library call: run the selected parts, then write ``report.md``.

A part works in ``DIR/.<part>.next``, its ``part.json`` committed after every step, and replaces
``DIR/<part>`` once finished: an unfinished attempt never touches a finished part, and the same
call continues it (the steps done are skipped, a GPT run resumes). What hw2 did not write is
replaced only with ``force``. Each ``hw2`` command runs in its own process, so that its memory
goes back and a crash stays there; Ctrl-C (or SIGTERM) is handed to them (:class:`_Stop`). The
quick profile runs :func:`slots` commands at once, the longest parts first; a command that times
itself (``Step.alone``) runs with nothing beside it. Messages name the options' fields
(OptionError's ``{field}``): the command shows its flags.
"""

from __future__ import annotations

import contextlib
import heapq
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
from typing import Any, BinaryIO

import hw2cli
from hw2cli.common.errors import Hw2Error
from hw2cli.common.estimate import Estimate
from hw2cli.common.io import atomic_write_text, check_writable_dir, fsync_dir, open_regular
from hw2cli.common.options import OptionError
from hw2cli.common.progress import Reporter
from hw2cli.common.rundir import lock, staged_name
from hw2cli.common.signals import note_terminated
from hw2cli.reproduce import manifest
from hw2cli.reproduce.manifest import REPORT, TITLE
from hw2cli.reproduce.options import ReproduceOptions
from hw2cli.reproduce.parts import PARTS, PROFILES, RECORDED_S, Part, Step


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
    """The run's SIGINT/SIGTERM handlers (main thread only): the first two signals go to the
    running commands' process groups as SIGINT, as a terminal's Ctrl-C (the first stops them
    between steps, the second at once), a third kills them; no step starts after the first."""

    def __init__(self) -> None:
        self.count = 0
        self.children: set[subprocess.Popen] = set()  # started and not reaped yet
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

    def forward(self) -> None:  # to the running commands, if any
        for child in list(self.children) if self.count else ():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGINT if self.count <= 2 else signal.SIGKILL)


@dataclass
class _Plan:
    part: Part
    action: str  # run, skipped, not selected
    staged: manifest.PartManifest | None = None  # an earlier attempt to continue
    discard: bool = False  # an earlier attempt of another profile, dropped (force)


def _read(
    folder: Path, fix: str, force: bool, recover: bool, **values: str
) -> tuple[manifest.PartManifest | None, bool]:
    """The folder's manifest (a staged one recovered first) and whether it could be read; without
    ``force`` an unreadable one is an error, an OptionError when it ends with ``fix`` (whose
    ``{name}``s are fields or ``values``)."""
    try:
        if recover:
            manifest.recover(folder)
        return manifest.read(folder, fix), True
    except Hw2Error as exc:
        if force:
            return None, False
        if str(exc).endswith(fix):
            raise OptionError("{problem}" + fix, problem=str(exc).removesuffix(fix), **values) from None
        raise


def _plan_part(out: Path, part: Part, opts: ReproduceOptions) -> _Plan:
    """Skip, run or continue ``part``; OptionError when that would replace what hw2 did not
    write, or work of another profile, without ``force``."""
    final, staged, force, name = out / part.name, out / staged_name(part.name), opts.force, part.name
    paths = {"final": str(final), "staged": str(staged)}
    earlier = None
    if staged.is_dir():
        fix = "add {force} to start the {part} part again"
        earlier, read = _read(staged, fix, force, True, part=name)
        if not read:
            return _Plan(part, "run", discard=True)
    if final.exists() and not final.is_dir():
        raise OptionError(
            "{final} is a file, not a part folder; move it away or choose another {out}", **paths
        )
    done = None
    if final.is_dir():
        fix = "rerun with {out} {dir} {parts} {part} {force} to redo that part"
        done, _ = _read(final, fix, force, False, dir=str(out), part=name)
        if done is None and not force:
            raise OptionError(
                "{final} was not written by hw2 reproduce (it has no part.json); move it away, choose "
                "another {out}, or add {force} to replace it once the new part is finished",
                **paths,
            )
    if done is not None and done.status == "finished" and not force:
        if done.profile == opts.profile:
            return _Plan(part, "skipped")
        raise OptionError(
            f"{{final}} holds the {name} part of the {{was}} profile; choose another {{out}}, or add "
            f"{{force}} to redo it with the {opts.profile} profile",
            was=done.profile,  # as the file says it, braces and all
            **paths,
        )
    if earlier is not None and earlier.profile != opts.profile:
        if not force:
            raise OptionError(
                f"{{staged}} holds an unfinished {name} part of the {{was}} profile; continue it "
                f"with {{profile}} {{was}}, or add {{force}} to start it again with {opts.profile}",
                was=earlier.profile,
                **paths,
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
        raise OptionError(
            f"cannot read {{path}} ({exc.strerror}); move it away or choose another {{out}}", path=str(path)
        ) from None
    with fh:
        if not force and fh.readline().rstrip("\n") != TITLE:
            raise OptionError(
                f"{{path}} was not written by hw2 (it does not start with {TITLE!r}); move it away, "
                "choose another {out}, or add {force} to replace it",
                path=str(path),
            )


def slots(profile: str) -> int:
    """Steps run at once: one per core, at most 4 (beyond, Table 1 bounds the run), where the
    profile runs its commands side by side; else one."""
    from hw2cli.common.threads import cpu_cores

    return min(cpu_cores(), 4) if PROFILES[profile].side_by_side else 1


def _recorded(profile: str, device: str) -> tuple[dict[str, float], str]:
    """The recorded part times for this device kind, and the estimate's basis."""
    if device == "auto":  # a CUDA GPU, looked for without importing torch here
        torch, gpus = sys.modules.get("torch"), Path("/proc/driver/nvidia/gpus")
        cuda = torch.cuda.is_available() if torch is not None else gpus.is_dir() and any(gpus.iterdir())
        device = "cuda" if cuda else "cpu"
    kind = "cuda" if device == "cuda" else "cpu"
    on = "an H100/H200" if kind == "cuda" else "a 2-core CPU"
    return RECORDED_S.get((profile, kind), {}), f"from the part times recorded on {on}"


def estimate(out: Path, profile: str, device: str, plans: list[_Plan]) -> Estimate | None:
    """The wall time of the parts to run: their recorded times (parts.RECORDED_S) laid out over
    the slots, scaled by how much slower or faster the parts already finished in ``out`` were
    than their record or, with none finished, by the other processes' use of the cores."""
    recorded, basis = _recorded(profile, device)
    if not recorded:
        return None
    ratios = []
    for name, seconds in recorded.items():
        meta = manifest.read(out / name, "") if (out / name / manifest.MANIFEST).is_file() else None
        if meta is not None and meta.status == "finished" and meta.profile == profile and meta.seconds > 0:
            ratios.append(meta.seconds / seconds)
    scale = statistics.median(ratios) if ratios else 1.0
    basis += f", times {scale:.2f} as the parts finished here took" if ratios else ""
    todo = [p.part.name for p in plans if p.action == "run"]
    if unknown := [name for name in todo if name not in recorded]:
        basis += f"; no record for {', '.join(unknown)}, not counted"
    ends = [0.0] * slots(profile)  # the parts laid out over the slots, the longest first
    for seconds in sorted((recorded.get(name, 0.0) for name in todo), reverse=True):
        heapq.heapreplace(ends, ends[0] + seconds)
    shorter = "use {profile} quick or fewer {parts}"
    found = Estimate(scale * max(ends), f"the {profile} reproduction", basis, shorter)
    return found if ratios else found.on_shared_cpu(len(ends))


@dataclass
class _Active:
    """A part to run: its manifest (``data``), the commands not started yet, this run's record."""

    part: Part
    staged: Path
    data: dict[str, Any]
    steps: list[Step]
    waiting: list[Step]
    run: PartRun
    running: bool = False

    def log(self) -> BinaryIO:  # appended to only as hw2's own file (never through a planted link)
        mode = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        return open(open_regular(self.staged / "log.txt", mode, follow=False), "ab")


def _part_run(out: Path, part: Part, status: str) -> PartRun:
    return PartRun(part.name, part.title, status, str(out / part.name))


def _prepare(out: Path, plan: _Plan, opts: ReproduceOptions) -> _Active:
    """The part as its staged folder stands (a dropped attempt is removed); nothing is written yet."""
    part, staged = plan.part, out / staged_name(plan.part.name)
    if plan.discard:
        shutil.rmtree(staged)
    run = _part_run(out, part, "not reached")
    if plan.staged is not None:
        data = plan.staged.model_dump()
        data.update(device=opts.device, status="running")
        run.resumed = True
    else:
        data = manifest.new(part.name, part.title, opts.profile, opts.device)
    steps = part.steps(PROFILES[opts.profile], opts.device, staged)
    waiting = [s for s in steps if s.run is None and s.name not in data["steps_done"]]
    return _Active(part, staged, data, steps, waiting, run)


def _open(active: _Active, reporter: Reporter) -> None:
    """Make the part's staged folder hw2's (its manifest) and run its Python set-up steps."""
    staged, done = active.staged, active.data["steps_done"]
    staged.mkdir(exist_ok=True)
    manifest.commit(staged, active.data)  # the folder is hw2's from now on
    active.run.log = str(staged / "log.txt")
    what = f"continues ({len(done)} of {len(active.steps)} steps done before)" if done else "starts"
    reporter.note(f"== {active.part.name}: {active.part.title}: {what}; log {active.run.log}")
    for step in active.steps:
        if step.run is not None and step.name not in done:
            try:
                step.run(staged)
            except OSError as exc:
                raise Hw2Error(
                    f"cannot write into {staged} ({exc.strerror}); free some space or fix its permissions"
                ) from None
            done.append(step.name)
            manifest.commit(staged, active.data)
    active.run.status = "running"


def _spawn(active: _Active, step: Step, stop: _Stop) -> subprocess.Popen:
    """Start ``hw2 <step.argv>`` in the part's folder, with the hw2cli it runs importable."""
    root, path = str(Path(hw2cli.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
    with active.log() as fh:
        fh.write(f"\n$ hw2 {shlex.join(step.argv)}\n".encode())
        fh.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "hw2cli", *step.argv],
            cwd=active.staged,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            process_group=0,  # Ctrl-C reaches it through _Stop only: exactly once
        )
    stop.children.add(proc)
    stop.forward()  # a signal that came while it started
    return proc


def _pick(parts: list[_Active], running: dict) -> tuple[_Active, Step] | None:
    """The next command to start: one that must run alone goes first, once nothing runs, and
    nothing starts beside it; else the next of the first part with none running."""
    if any(step.alone for _, step, _ in running.values()):
        return None
    ready = [(a, a.waiting[0]) for a in parts if a.waiting and not a.running]
    alone = [r for r in ready if r[1].alone]
    if alone:
        return None if running else alone[0]
    return ready[0] if ready else None


def _run_parts(
    out: Path, plans: list[_Plan], opts: ReproduceOptions, stop: _Stop, reporter: Reporter
) -> dict:
    """Run the planned parts, ``slots`` commands at a time; a failed step starts nothing new (the
    commands beside it finish). This run's record per part."""
    recorded, _ = _recorded(opts.profile, opts.device)
    todo = [p for p in plans if p.action == "run"]
    n = slots(opts.profile)
    if n > 1:  # the longest first: the short ones fill the gaps at the end
        todo.sort(key=lambda p: -recorded.get(p.part.name, 0.0))
    parts = [_prepare(out, p, opts) for p in todo]
    for active in parts:
        if not active.waiting:  # nothing left to run (a run cut before its last commit)
            _open(active, reporter)
            _finish_part(out, active, reporter)
    running: dict[subprocess.Popen, tuple[_Active, Step, float]] = {}
    shown = None  # the running commands, as the bar describes them
    try:
        while True:
            failed = any(a.run.status == "failed" for a in parts)
            while not (stop.count or failed) and len(running) < n and (pick := _pick(parts, running)):
                active, step = pick
                if active.run.status == "not reached":  # its folder is made hw2's at its first command
                    _open(active, reporter)
                active.waiting.remove(step)
                active.running = True
                running[_spawn(active, step, stop)] = (active, step, time.monotonic())
            if not running:
                break
            if (names := " · ".join(f"{a.part.name}: {s.name}" for a, s, _ in running.values())) != shown:
                reporter.update("parts", description=names)
                shown = names
            time.sleep(0.05)
            for proc, (active, step, start) in list(running.items()):
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # its CPU time, children included
                if pid == 0:
                    continue
                del running[proc]
                stop.children.discard(proc)
                proc.returncode = rc = os.waitstatus_to_exitcode(status)
                rc = 128 - rc if rc < 0 else rc  # killed by signal N: 128 + N, as shells say
                elapsed = time.monotonic() - start
                with active.log() as fh:
                    cpu = usage.ru_utime + usage.ru_stime
                    fh.write(f"[exit {rc} after {elapsed:.1f} s, {cpu:.1f} s of CPU]\n".encode())
                _finish_step(out, active, step, rc, elapsed, stop, reporter)
    except BaseException:  # a part that could not open (a full disk): stop the others, as Ctrl-C
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            proc.wait()
        raise
    for active in parts:
        if active.run.status == "running":
            active.run.status, active.run.step = "interrupted", active.waiting[0].name
    return {a.part.name: a.run for a in parts}


def _finish_step(
    out: Path, active: _Active, step: Step, rc: int, elapsed: float, stop: _Stop, reporter: Reporter
) -> None:
    """Record a command that ended; put the part in place once all its steps are done."""
    active.running = False
    active.run.seconds += elapsed
    if rc not in step.ok and not stop.count:
        active.run.status, active.run.exit_code, active.run.step = "failed", rc, step.name
        return
    data = active.data
    data["seconds"] += elapsed  # an interrupted step's time counts: its checkpoint is kept
    if rc in step.ok:
        data["steps_done"].append(step.name)
    else:
        active.waiting.insert(0, step)  # interrupted: the next call runs it again
    manifest.commit(active.staged, data)
    _finish_part(out, active, reporter)


def _finish_part(out: Path, active: _Active, reporter: Reporter) -> None:
    """Once all its steps are done, commit the part as finished and put it in place."""
    data = active.data
    if len(data["steps_done"]) < len(active.steps):
        return
    manifest.commit(active.staged, data, finished=True)
    _promote(out, active.part.name)
    active.run.status, active.run.log = "finished", str(out / active.part.name / "log.txt")
    reporter.note(f"   {active.part.name} finished in {data['seconds']:.1f} s")
    reporter.update("parts", advance=1)


def _promote(out: Path, name: str) -> None:
    """Put the finished staged folder of ``name`` in place (a cut here: the next run does it)."""
    final = out / name
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    elif final.exists() or final.is_symlink():
        final.unlink()
    os.replace(out / staged_name(name), final)
    fsync_dir(out)


def _finish_promotion(out: Path, name: str, force: bool) -> None:
    """Put in place a part an earlier run finished but did not move, unless that would replace a
    folder hw2 did not write."""
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
    """Run the parts ``opts`` selects, then write ``DIR/report.md`` with ``report`` (given:
    hw2cli.report imports this package, never the reverse). Refuses up front (OptionError, nothing
    written) what would replace files hw2 did not write, or work of another profile, without
    ``force``. A failed or interrupted step stops the run; the finished parts stay."""
    reporter = reporter or Reporter()
    out = Path(opts.folder())
    check_writable_dir(out, "{out} folder")
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
            f"{len(todo)} part(s) to run, {sum(p.action == 'skipped' for p in plans)} finished before (skipped)"
        )
        if PROFILES[opts.profile].leaves_out:
            reporter.note(f"this is the {opts.profile} profile: {PROFILES[opts.profile].leaves_out}")
        if (found := estimate(out, opts.profile, opts.device, plans)) is not None:
            result.estimate_s = found.seconds
            if found.message:
                reporter.note(found.message)
        for plan in (p for p in plans if p.action == "skipped"):
            reporter.note(f"== {plan.part.name}: finished before, skipped ({{force}} redoes it)")
        reporter.start("parts", f"reproduce ({opts.profile})", total=len(todo))
        with _Stop() as stop:
            runs = _run_parts(out, plans, opts, stop, reporter)
            result.interrupted = stop.count > 0
        result.parts = [runs.get(p.part.name) or _part_run(out, p.part, p.action) for p in plans]
        reporter.finish("parts")
        if report is not None and not result.interrupted and result.failed is None:
            built = report(out)
            atomic_write_text(out / REPORT, built.markdown)
            result.report, result.conclusions = str(out / REPORT), built.conclusions.findings
    result.seconds = time.monotonic() - started
    return result
