"""SIGTERM as Ctrl-C: batch systems (SLURM, Kubernetes, ``timeout``) stop a job with SIGTERM,
and a long command must then keep what it finished, as on Ctrl-C. From the start of a
command's work (``catch_interrupts``) SIGTERM goes to whatever handles SIGINT then; the
command ends as on Ctrl-C, with exit status 143 (128 + SIGTERM) instead of 130."""

from __future__ import annotations

import signal
import threading

INTERRUPTED_EXIT = 130  # 128 + SIGINT
TERMINATED_EXIT = 143  # 128 + SIGTERM

_received = threading.Event()


def as_ctrl_c(signum, frame) -> None:
    """SIGTERM's handler: what Ctrl-C would do now."""
    _received.set()
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # Ctrl-C ignored (`hw2 ... &`) or at its default action: still stop as on Ctrl-C
        signal.default_int_handler(signal.SIGINT, frame)


def sigterm_as_ctrl_c() -> None:
    """Route SIGTERM to the SIGINT handler (main thread only; an ignored SIGTERM stays ignored),
    for a command whose work starts now: a SIGTERM an earlier command of the same process took
    (a notebook, CliRunner) no longer counts."""
    _received.clear()
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        as_ctrl_c,
    ):
        signal.signal(signal.SIGTERM, as_ctrl_c)


def note_terminated() -> None:
    """Record a SIGTERM that another handler took (hw2 reproduce forwards it to its part)."""
    _received.set()


def interrupted_exit() -> int:
    """The exit status of a stopped command: 143 after SIGTERM, else 130 (Ctrl-C)."""
    return TERMINATED_EXIT if _received.is_set() else INTERRUPTED_EXIT
