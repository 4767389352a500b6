"""The `hw2` entry point (console script and ``python -m hw2cli``).

Its first statement makes Ctrl-C end the process at once and silently (exit status 130): while
modules load nothing has been written, and a KeyboardInterrupt inside an import could only end
in a traceback. A command switches back to KeyboardInterrupt when its work starts
(``catch_interrupts``), so that Ctrl-C keeps what finished. A Ctrl-C the parent ignores (``hw2
... &``) stays ignored. ``import hw2cli`` alone changes nothing (notebooks)."""

import signal


def main() -> None:
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if not ignored:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import sys

        from hw2cli.common.console import (
            check_working_folder,
            guard_torch_import,
            quiet_libraries,
            use_plain_fallback,
        )
        from hw2cli.common.threads import check_environment

        check_working_folder()  # before torch loads: oneMKL dies in a deleted folder
        use_plain_fallback()
        quiet_libraries()
        guard_torch_import()
        warning = check_environment()  # before anything loads torch and its OpenMP runtime
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        from hw2cli.cli import app

        try:
            app(prog_name="hw2")
        except KeyboardInterrupt:  # a stop after the command's own handling: its status, no line
            from hw2cli.common.signals import interrupted_exit

            sys.exit(interrupted_exit())
    finally:  # at exit too: Ctrl-C during the interpreter's shutdown ends it quietly
        if not ignored:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
