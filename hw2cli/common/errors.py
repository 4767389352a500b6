"""The one exception type that library code raises for bad user input."""


class Hw2Error(ValueError):
    """Bad input or an unusable environment, stated in one line with the fix.

    The CLI prints the message as ``error: <message>`` on stderr and exits with code 2;
    notebook users get an ordinary ``ValueError``.
    """


class Hw2Warning(UserWarning):
    """Something the user should know that does not stop the command (e.g. files of a
    half-written checkpoint ignored); the CLI prints it as ``warning: <message>``."""
