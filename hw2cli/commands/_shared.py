"""What every command shares: one-line errors (hw2's own, Click's usage errors, the machine's
limits), Ctrl-C from the start of a command's work, the exit for a disagreeing conclusion."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import sys
from collections.abc import Callable
from typing import NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import describe_range
from hw2cli.common.signals import INTERRUPTED_EXIT, interrupted_exit
from hw2cli.common.threads import use_threads as use_threads  # the commands' import

_ARGS = "hw2.args"  # key of Click's shared ctx.meta: the argument list the root command parsed


def catch_interrupts() -> None:
    """From here on Ctrl-C raises KeyboardInterrupt (the command keeps its partial result, exit
    130) instead of ending the process at once (hw2cli/main.py)."""
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
        try:
            return fn(*args, **kwargs)
        except Hw2Error as exc:
            say_error(str(exc))
            raise typer.Exit(2) from None

    return wrapper


def say_error(message: str) -> None:
    """``error: MESSAGE`` on stderr; a stderr that cannot be written loses the line, not the exit code."""
    try:
        typer.echo(f"error: {message}", err=True)
    except (OSError, ValueError):
        _silence(2)


def _silence(fd: int) -> None:
    """Point a broken standard stream at /dev/null: no "Exception ignored ..." at exit."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)


def stdout_problem() -> str | None:
    """Why standard output takes nothing (``> /dev/full``, a file at the size limit), with the fix."""
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
    """One line with the fix when ``exc`` is the machine's limit (memory, open files, file size,
    a full disk, a broken standard output), not hw2's fault; else None."""
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
    """A usage line naming a required argument plainly (``EDGES``), not in Typer's braces."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [re.sub(r"^\{(.*)\}(\.\.\.)?$", r"\1\2", p) for p in pieces]


class OneLineErrors(TyperGroup):
    """The root group: usage errors are one line ``error: ...`` and exit 2, not Click's box."""

    def parse_args(self, ctx, args):
        """Keep the arguments in ``ctx.meta`` (shared with every sub-command) for :func:`_usage_message`."""
        ctx.meta[_ARGS] = list(args)
        return super().parse_args(ctx, args)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except Exception as exc:  # noqa: BLE001 -- sorted below; the last guard: never a traceback
            _exit_one_line(exc)
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
    """Whether ``exc`` is a Click exception of class ``name``, by name: Typer 0.27 on raises
    those of its private copy of Click, no public API to import."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _exit_one_line(exc: Exception) -> NoReturn:
    """Print what went wrong in one line (the help for a group called alone) and exit."""
    if _is_a(exc, "NoArgsIsHelpError"):  # `hw2` or `hw2 graph` alone: the help, as before
        typer.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        sys.exit(exc.exit_code)
    if _is_a(exc, "ClickException"):
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        say_error(f"{where}{_usage_message(exc, ctx)}{hint}")
        sys.exit(exc.exit_code)
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


def _usage_message(exc, ctx) -> str:
    """Click's message in one line; a value out of a parameter's range is quoted as given, with
    the range (``--seed -1 is out of range; use 0 to 4,294,967,295``)."""
    message = " ".join(exc.format_message().split()).replace("Value error, ", "")
    param = getattr(exc, "param", None)
    bounded = param if hasattr(param, "min") else getattr(param, "type", None)  # Click < 8.2: its type
    low, high = getattr(bounded, "min", None), getattr(bounded, "max", None)
    if low is None and high is None:
        return message
    valid = describe_range(low, high)
    given = _given_value(param, [] if ctx is None else ctx.meta.get(_ARGS, []))
    whole = "int" in str(getattr(getattr(param, "type_descriptor", None), "annotation", "")) or (
        type(bounded).__name__ == "IntRange"
    )
    try:
        (int if whole else float)(given)  # None or not a number: Click's message
    except (TypeError, ValueError):
        return f"{message.rstrip('.')}; use {valid}"
    return f"{param.opts[0]} {given} is out of range; use {valid}"


def _given_value(param, argv: list[str]) -> str | None:
    """The text given for option ``param`` (its last occurrence) in the parsed arguments."""
    found = None
    for i, arg in enumerate(argv):
        for opt in getattr(param, "opts", []):
            if arg == opt and i + 1 < len(argv):
                found = argv[i + 1]
            elif arg.startswith(opt + "="):
                found = arg[len(opt) + 1 :]
    return found


def exit_if_a_conclusion_disagrees(findings: list) -> None:
    """Exit with DISAGREE_EXIT naming them when conclusions disagree with the run: a script can tell."""
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
