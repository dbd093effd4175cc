"""The one exception type that means "the user asked for something that cannot be done"."""


class UserError(Exception):
    """Bad input: a wrong path, a bad flag, an unknown model. The CLI prints it as one line and
    exits with status 2; it never shows a traceback."""
