"""The one exception type that library code raises for bad user input, and the one warning."""

import sys
import warnings


class Hw2Error(ValueError):
    """Bad input or an unusable environment, in one line with the fix: the CLI prints
    ``error: <message>`` and exits 2; a notebook gets a ValueError."""


class Hw2Warning(UserWarning):
    """What the user should know that does not stop the command (``warning: <message>``)."""


def show_warnings_as_one_line() -> None:
    """CLI only: each Hw2Warning as ``warning: <message>`` on stderr, every time."""
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
