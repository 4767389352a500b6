"""Ctrl-C and SIGTERM during training: a step always completes, so the run stops between two; an
evaluation or a greedy sample, which change nothing, are abandoned at once. A second Ctrl-C
interrupts at once (KeyboardInterrupt: the last checkpoint stays)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hw2cli.common.signals import note_terminated


class Stopped(Exception):
    """Ctrl-C during work that can be abandoned (:meth:`StopFlag.abandonable`)."""


class StopFlag:
    """Set by the first Ctrl-C (or SIGTERM), read after each step. With several processes none
    abandons work alone (the others would wait for it in a collective): ``abandon`` is off."""

    def __init__(self, abandon: bool = True) -> None:
        self.set, self._abandon, self._inside = False, abandon, 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is not signal.SIG_IGN:  # ignored stays ignored
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        self.set = True
        if signum == signal.SIGTERM:
            note_terminated()  # exit 143
        self.__exit__()  # a second signal interrupts at once
        if self._inside:
            raise Stopped

    @contextmanager
    def abandonable(self) -> Iterator[None]:
        """Work whose result may be thrown away: Ctrl-C ends it at once (Stopped)."""
        if self.set and self._abandon:
            raise Stopped
        self._inside += self._abandon  # several processes: not abandoned
        try:
            yield
        finally:
            self._inside -= self._abandon
