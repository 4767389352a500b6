"""The `hw2` entry point (console script and ``python -m hw2cli``).

Its first statement makes Ctrl-C end the process at once and silently (exit status 130): while
modules load nothing has been written, and a KeyboardInterrupt inside an import could only end
in a traceback. A command switches back to KeyboardInterrupt when its work starts
(``catch_interrupts``), so that Ctrl-C keeps what finished. A Ctrl-C the parent ignores (``hw2
... &``) stays ignored. ``import hw2cli`` alone changes nothing (notebooks)."""

import contextlib
import os
import signal


def check_environment(environ: dict | None = None) -> str | None:
    """Before torch loads: remove an invalid ``OMP_NUM_THREADS`` (torch would fail or start
    100,000 threads) and return the warning to print, else None."""
    from hw2cli.common.threads import MAX_THREADS, omp_threads

    environ = os.environ if environ is None else environ
    text = environ.get("OMP_NUM_THREADS")
    if text is None or omp_threads(environ) is not None:
        return None
    del environ["OMP_NUM_THREADS"]
    shown = text if len(text) <= 24 else text[:21] + "..."
    return (
        f"OMP_NUM_THREADS={shown!r} is not a thread count from 1 to {MAX_THREADS}; ignored: "
        "hw2 chooses the count (set it to a whole number, or use --threads)"
    )


def main() -> None:
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if not ignored:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import sys

        from hw2cli.common import console

        console.check_working_folder()  # before torch loads: oneMKL dies in a deleted folder
        console.use_plain_fallback()
        console.quiet_libraries()
        console.guard_torch_import()
        warning = check_environment()  # before anything loads torch and its OpenMP runtime
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        from hw2cli.cli import app
        from hw2cli.common.signals import INTERRUPTED_EXIT, TERMINATED_EXIT, interrupted_exit

        try:
            app(prog_name="hw2")
        except KeyboardInterrupt:  # a stop after the command's own handling: its status, no line
            status = interrupted_exit()
        except SystemExit as end:
            if end.code not in (INTERRUPTED_EXIT, TERMINATED_EXIT):
                raise
            status = end.code
        # A stopped command leaves without the interpreter's exit: a Ctrl-C that arrived inside
        # code run by exec() (dataclasses and namedtuple build methods so, also on lazy imports)
        # marks the interpreter, even once handled, and it would then end by SIGINT in place of
        # this status (a SIGTERM's 143 read as Ctrl-C). What the command keeps is written already.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a full or closed stream: still leave
                stream.flush()
        os._exit(status)
    finally:  # at exit too: Ctrl-C during the interpreter's shutdown ends it quietly
        if not ignored:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
