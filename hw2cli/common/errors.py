"""The one exception type that library code raises for bad user input, and the one warning."""

import sys
import warnings


class Hw2Error(ValueError):
    """Bad input or an unusable environment, stated in one line with the fix.

    The CLI prints the message as ``error: <message>`` on stderr and exits with code 2;
    notebook users get an ordinary ``ValueError``.
    """


class Hw2Warning(UserWarning):
    """Something the user should know that does not stop the command (e.g. files of a
    half-written checkpoint ignored); the CLI prints it as ``warning: <message>``."""


def show_warnings_as_one_line() -> None:
    """In the CLI process: print each Hw2Warning as ``warning: <message>`` on stderr, every
    time; other warnings keep Python's format. (Notebook users keep Python's display.)"""
    python_show = warnings.showwarning
    if getattr(python_show, "hw2", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, Hw2Warning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            python_show(message, category, filename, lineno, file, line)

    show.hw2 = True
    warnings.showwarning = show
    warnings.simplefilter("always", Hw2Warning)
