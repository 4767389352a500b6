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
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from hw2cli.common.errors import Hw2Error

#: Outputs that may be standard output (text); the others need a file.
TEXT_OUTPUTS = ("json", "csv", "out")

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

    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None

    return wrapper


class PlainUsage(TyperCommand):
    """A command whose usage line names a required argument plainly (``EDGES``), not in the
    braces Typer puts around it (``{EDGES}``)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


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
        sys.exit(rv if isinstance(rv, int) else 0)


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
        typer.echo(f"error: {where}{message}{hint}", err=True)
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    if os.environ.get("HW2_DEBUG"):
        raise exc
    reason = " ".join(str(exc).split()) or type(exc).__name__
    typer.echo(
        f"error: unexpected {type(exc).__name__}: {reason}; rerun with HW2_DEBUG=1 "
        "for the traceback and report it",
        err=True,
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
        return ("path", str(path.expanduser().resolve()))


def _inside(path: Path, folder: Path) -> bool:
    resolved, base = path.expanduser().resolve(), folder.expanduser().resolve()
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
    from hw2cli.common.io import check_name_length, check_writable, is_stdout

    catch_interrupts()  # every command checks its outputs first: its work starts here
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
