"""The one exception type that means "the user asked for something we cannot do".

The CLI prints a ``UserError`` as a single line and exits non-zero; any other exception is a
bug and keeps its traceback. Library code raises it with a message that names the file or
option at fault and what to do about it.
"""


class UserError(Exception):
    """A problem with the user's input (path, option, corpus layout), not a bug."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, caught where a stage can say exactly what it kept (the CLI prints it)."""
