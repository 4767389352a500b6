"""What every command module shares: the one-line error wrapper and the output helpers.

Outputs (``--json``, ``--csv``, ``--plot``, ``--preview``, ``--npz``, ``report --out``) follow
one contract, enforced here so that every command gets it the same way:

* ``check_outputs`` runs before any work (from there on Ctrl-C raises KeyboardInterrupt, so
  the command keeps what finished; before, it ends the process at once). Each output path is
  resolved (``~``, symlinks) and refused with one line when its name is too long for the file
  system (NAME_MAX, PATH_MAX: checked before anything touches the disk), it is a folder,
  cannot be created, names the same file as an input (``inputs=``: the edge list,
  ``--matrix``, ``--txt-file``, an existing file of a run directory being read) or lies inside
  a run directory being written (``writes=``), or when two outputs name the same file. ``-``
  and ``/dev/stdout`` mean standard output (text outputs only); the tables then go to
  standard error so that the pipe carries only JSON.
* ``write_json_then_exit`` writes every output even when one of them fails: the others are
  written and one line names what was lost (exit 2; 130 when the work was interrupted).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from hw2cli.common.errors import Hw2Error
from hw2cli.common.io import resolve_path
from hw2cli.common.signals import INTERRUPTED_EXIT, interrupted_exit

#: Outputs that may be standard output (text); the others need a file.
TEXT_OUTPUTS = ("json", "csv", "out")
#: Inputs the user names (``inputs=`` label -> what the messages call it) that must exist
#: before any output is looked at.
NAMED_INPUTS = {
    "EDGES": "edge list",
    "--matrix": "matrix",
    "--features": "feature table",
    "--txt-file": "--txt-file",
    "--load-models": "--load-models",
    "RUN_DIR": "run directory",
}

# Per command call: the real standard output while tables are sent to stderr (``--json -``).
_real_stdout: contextvars.ContextVar = contextvars.ContextVar("hw2_real_stdout", default=None)
_scope: contextvars.ContextVar = contextvars.ContextVar("hw2_scope", default=None)
# Per command call: the thread choice of use_threads, recorded in --json.
_threads: contextvars.ContextVar = contextvars.ContextVar("hw2_threads", default=None)


def use_threads(requested: int):
    """Choose and set the intra-op thread count (hw2cli/common/threads.py has the rule) and
    record it: ``write_json_then_exit`` prints it after the tables and adds it to ``--json``."""
    from hw2cli.common.threads import apply_threads, choose_threads

    choice = apply_threads(choose_threads(requested or None))
    token = _threads.set(choice)
    stack = _scope.get()
    if stack is not None:
        stack.callback(_threads.reset, token)
    return choice


def catch_interrupts() -> None:
    """From here on Ctrl-C raises KeyboardInterrupt, which the command turns into its partial
    result (exit 130). Until a command's work starts, the entry point (hw2cli/main.py) lets
    Ctrl-C end the process at once; nothing changes where it did not (CliRunner, notebooks)."""
    import signal
    import threading

    from hw2cli.common.signals import sigterm_as_ctrl_c

    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    sigterm_as_ctrl_c()  # a batch system's stop keeps finished work too (exit 143)


def user_errors(fn: Callable) -> Callable:
    """Turn Hw2Error into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            token = _scope.set(stack)
            stack.callback(_scope.reset, token)
            try:
                return fn(*args, **kwargs)
            except Hw2Error as exc:
                say_error(str(exc))
                raise typer.Exit(2) from None

    return wrapper


def say_error(message: str) -> None:
    """``error: MESSAGE`` on stderr; a stderr that cannot be written (a full disk, closed)
    loses the line but never changes the exit code."""
    try:
        typer.echo(f"error: {message}", err=True)
    except (OSError, ValueError):
        _silence(2)


def _silence(fd: int) -> None:
    """Point a broken standard stream at /dev/null, so that the interpreter's last flush at exit
    does not print "Exception ignored ..." about it."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)


def stdout_problem() -> str | None:
    """Why standard output does not take what is written to it (``> /dev/full``, a file at
    the size limit), as one line with the fix; None when it does."""
    if sys.stdout is None:  # started with standard output closed: nothing goes there
        return None
    import errno
    import resource
    import stat

    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
        os.write(fd, b"")  # /dev/full refuses even an empty write
        st, limit = os.fstat(fd), resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except io.UnsupportedOperation:  # a captured stdout (tests, notebooks) has no file descriptor
        return None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return f"cannot write to standard output ({reason}); send it to a file or a disk with space"
    # a file that reached the size limit (ulimit -f) takes an empty write, but no more
    if stat.S_ISREG(st.st_mode) and limit != resource.RLIM_INFINITY and st.st_size >= limit:
        return f"cannot write to standard output ({os.strerror(errno.EFBIG)}); raise the limit (ulimit -f unlimited)"
    return None


def environment_message(exc: BaseException) -> str | None:
    """One line with the fix when ``exc`` is the machine's limit, not hw2's fault: memory
    (``ulimit -v``, a size too large to allocate), open files (``ulimit -n``), file size
    (``ulimit -f``), a full disk, a standard output that takes nothing. None otherwise."""
    import errno
    import resource

    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())
    ):
        return (
            f"out of memory ({text or 'MemoryError'}); use smaller sizes (a smaller --batch-size, "
            "--block-size or model), free memory, or raise the limit (ulimit -v)"
        )
    if isinstance(exc, ImportError) and any(
        s in text.lower() for s in ("failed to map segment", "cannot allocate memory", "out of memory")
    ):
        from hw2cli.common.console import TORCH_ADDRESS_SPACE

        return (
            f"cannot load a library ({text}): the memory limit is too low for torch; raise it "
            f"(ulimit -v unlimited, or at least {TORCH_ADDRESS_SPACE / 2**30:.1f} GiB)"
        )
    if not isinstance(exc, OSError):
        return None
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return (
            f"too many open files (the limit is {soft}); raise it (ulimit -n 1024) "
            "or start fewer worker processes (--workers)"
        )
    broken = stdout_problem()
    if broken is not None:
        _silence(1)
        return broken
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno == errno.EFBIG:
        return f"cannot write{where}: the file grew past the size limit (ulimit -f); raise it (ulimit -f unlimited)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write{where}: {exc.strerror}; free space on that disk or write elsewhere"
    return None


class PlainUsage(TyperCommand):
    """A command whose usage line names a required argument plainly (``EDGES``,
    ``SUBMISSION...``), not in the braces Typer puts around it (``{EDGES}``)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [re.sub(r"^\{(.*)\}(\.\.\.)?$", r"\1\2", p) for p in pieces]


class OneLineErrors(TyperGroup):
    """The root command group: usage errors (a non-number for a number option, a value out of
    its range, a missing argument, an unknown option) are one line ``error: ...`` on stderr
    and exit code 2, like every other bad input, instead of Click's framed usage box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except Exception as exc:  # noqa: BLE001 -- sorted below; the last guard: never a traceback
            _exit_one_line(exc, args)
        code = rv if isinstance(rv, int) else 0
        if code == INTERRUPTED_EXIT:
            code = interrupted_exit()  # 143 when SIGTERM stopped it
        broken = stdout_problem()  # what the command printed is still buffered: it would fail at exit
        if broken is not None:
            _silence(1)
            if code == 0:  # else the command already said what failed
                say_error(broken)
                code = 2
        sys.exit(code)


def _is_a(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is a Click exception of class ``name`` (or a subclass). By name: Typer
    raises the classes of its own private copy of Click (0.27 and later) or of the click
    package (before), and neither is public API to import."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _exit_one_line(exc: Exception, args) -> NoReturn:
    """Print what went wrong in one line (the help for a group called alone) and exit."""
    if _is_a(exc, "NoArgsIsHelpError"):  # `hw2` or `hw2 graph` alone: the help, as before
        typer.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        sys.exit(exc.exit_code)
    if _is_a(exc, "ClickException"):
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = " ".join(exc.format_message().split()).replace("Value error, ", "")
        param = getattr(exc, "param", None)
        bounded = param if hasattr(param, "min") else getattr(param, "type", None)  # Click < 8.2: its type
        low, high = getattr(bounded, "min", None), getattr(bounded, "max", None)
        if low is not None or high is not None:
            low, high = (
                None if x is None else f"{x:,}" if isinstance(x, int) else f"{x:g}" for x in (low, high)
            )
            valid = (
                f"{low} to {high}"
                if low is not None and high is not None
                else f"at least {low}"
                if low is not None
                else f"at most {high}"
            )
            given = _given_value(param, sys.argv[1:] if args is None else list(args))
            whole = "int" in str(getattr(getattr(param, "type_descriptor", None), "annotation", "")) or (
                type(bounded).__name__ == "IntRange"
            )
            if given is not None and _is_number(given, whole):
                message = f"{param.opts[0]} {given} is out of range; use {valid}"
            else:
                message = f"{message.rstrip('.')}; use {valid}"
        say_error(f"{where}{message}{hint}")
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    if os.environ.get("HW2_DEBUG"):
        raise exc
    known = environment_message(exc)  # a resource limit or a broken environment: one line, exit 2
    if known is not None:
        say_error(known)
        sys.exit(2)
    reason = " ".join(str(exc).split()) or type(exc).__name__
    say_error(
        f"unexpected {type(exc).__name__}: {reason}; rerun with HW2_DEBUG=1 for the traceback and report it"
    )
    sys.exit(1)


def _given_value(param, argv: list[str]) -> str | None:
    """The text given on the command line for option ``param`` (its last occurrence)."""
    found = None
    for i, arg in enumerate(argv):
        for opt in getattr(param, "opts", []):
            if arg == opt and i + 1 < len(argv):
                found = argv[i + 1]
            elif arg.startswith(opt + "="):
                found = arg[len(opt) + 1 :]
    return found


def _is_number(text: str, whole: bool = False) -> bool:
    try:
        int(text) if whole else float(text)
    except ValueError:
        return False
    return True


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _identity(path: Path) -> tuple:
    """What makes two paths the same file: device and inode when it exists, else the resolved path."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", str(resolve_path(path)))


def _inside(path: Path, folder: Path) -> bool:
    resolved, base = resolve_path(path), resolve_path(folder)
    return resolved == base or base in resolved.parents


def check_outputs(
    *,
    inputs: dict[str, Path | None] | None = None,
    writes: dict[str, Path | None] | None = None,
    **paths: Path | None,
) -> None:
    """Fail before any long work if an output given as ``--NAME PATH`` cannot be written or
    would overwrite something this command reads or writes (see the module docstring).

    ``inputs``: label -> file or folder read (every existing file inside a folder counts);
    ``writes``: label -> run directory this command writes (no output may go inside it).
    """
    from hw2cli.common.inputs import stat_input
    from hw2cli.common.io import check_name_length, check_writable, is_stdout

    catch_interrupts()  # every command checks its outputs first: its work starts here
    for label, source in (inputs or {}).items():  # a missing input is the first thing to say
        if label in NAMED_INPUTS and source is not None:
            stat_input(source, NAMED_INPUTS[label])
    given = {name: path for name, path in paths.items() if path is not None}
    to_stdout = [name for name, path in given.items() if is_stdout(path)]
    for name in to_stdout:
        if name not in TEXT_OUTPUTS:
            raise Hw2Error(
                f"{_flag(name)} {given[name]}: standard output takes only text (--json, --csv); "
                "give a file path"
            )
    if len(to_stdout) > 1:
        both = " and ".join(_flag(n) for n in to_stdout)
        raise Hw2Error(f"{both} both write to standard output; send one to a file")
    if to_stdout and sys.stdout is None:  # `>&-`: the JSON would go to whatever opens fd 1 next
        raise Hw2Error(
            f"{_flag(to_stdout[0])} {given[to_stdout[0]]}: standard output is closed; "
            "give a file path, or run hw2 with standard output open"
        )
    files = {name: Path(path) for name, path in given.items() if name not in to_stdout}
    for name, path in files.items():  # before any look at the disk: a too-long name fails every call
        check_name_length(path, f"{_flag(name)} file")
    seen: dict[tuple, str] = {}
    for name, path in files.items():
        key = _identity(path)
        if key in seen:
            raise Hw2Error(
                f"{_flag(seen[key])} and {_flag(name)} both name {path}; give each output its own file"
            )
        seen[key] = name
        for label, source in (inputs or {}).items():
            if source is None:
                continue
            source = Path(source)
            if os.path.isdir(source):
                clash = _inside(path, source) and os.path.exists(path)
            else:
                clash = _identity(source) == key
            if clash:
                raise Hw2Error(
                    f"{_flag(name)} {path} would overwrite the input {label} {source}; "
                    "write the output somewhere else"
                )
        for label, folder in (writes or {}).items():
            if folder is not None and _inside(path, Path(folder)):
                raise Hw2Error(
                    f"{_flag(name)} {path} lies inside the run directory {label} {folder} "
                    "that this command writes; put the output outside it"
                )
    for name, path in files.items():
        check_writable(path, f"{_flag(name)} file", create=False)
    for name, path in files.items():  # only once every check passed: create missing folders
        check_writable(path, f"{_flag(name)} file")
    if to_stdout:
        scope = _scope.get()
        if scope is not None:  # tables and messages go to stderr; the JSON alone to stdout
            scope.callback(_real_stdout.reset, _real_stdout.set(sys.stdout))
            scope.enter_context(contextlib.redirect_stdout(sys.stderr))


@contextlib.contextmanager
def _stdout_for_outputs():
    real = _real_stdout.get()
    if real is None:
        yield
    else:
        with contextlib.redirect_stdout(real):
            yield


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _with_threads(make_json: Callable[[], dict], threads: dict) -> Callable[[], dict]:
    return lambda: {**make_json(), "threads": threads}


def write_json_then_exit(
    json_path: Path | None,
    make_json: Callable[[], dict],
    interrupted: bool = False,
    outputs: dict[str, tuple[Path | None, Callable[[Path], object]]] | None = None,
) -> None:
    """Write every output, then ``make_json()`` to ``--json`` if given; exit 130 when the work
    was interrupted.

    ``outputs``: name -> (path or None, writer(path)) for the other outputs (``--plot``,
    ``--csv``, ``--npz`` ...). An output that fails does not stop the others: they are written
    and one line names what was lost (exit 2, or 130 when interrupted).
    """
    from hw2cli.common.io import STDOUT, is_stdout, write_json

    lost, written = [], []
    jobs = list((outputs or {}).items())
    threads = _threads.get()
    if threads is not None:  # beside the tables (stderr when --json - holds standard output)
        typer.echo(f"threads: {threads.describe()}")
    if json_path is not None:
        if threads is not None:
            make_json = _with_threads(make_json, threads.to_json())
        jobs.append(("json", (json_path, lambda p: write_json(p, make_json()))))
    for name, (path, write) in jobs:
        if path is None:
            continue
        target = Path(STDOUT) if is_stdout(path) else Path(path)
        try:
            with _stdout_for_outputs():
                write(target)
            written.append(f"{_flag(name)} {path}")
        except Exception as exc:  # noqa: BLE001 -- any failure of one output must not lose the others
            lost.append(f"{_flag(name)} {path} ({_reason(exc)})")
    if lost:
        kept = f"; written: {', '.join(written)}" if written else ""
        typer.echo(f"error: could not write {', '.join(lost)}{kept}", err=True)
        raise typer.Exit(130 if interrupted else 2)
    if interrupted:
        raise typer.Exit(130)


def exit_if_a_conclusion_disagrees(findings: list) -> None:
    """Exit with DISAGREE_EXIT, naming the conclusions, when one of the report's conclusions
    disagrees with the run (`hw2 reproduce`, `hw2 report`): a script can tell."""
    from hw2cli.report.conclusions import DISAGREE_EXIT, DISAGREES

    wrong = [f for f in findings if f.status == DISAGREES]
    if wrong:
        typer.echo(
            f"{len(wrong)} of the report's conclusions disagree with this run: "
            + "; ".join(f"{f.source}: {f.claim}" for f in wrong)
            + f" (exit code {DISAGREE_EXIT}; see the conclusions table)",
            err=True,
        )
        raise typer.Exit(DISAGREE_EXIT)
