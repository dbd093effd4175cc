"""The one exception type that means "the user asked for something that cannot be done"."""


class UserError(Exception):
    """Bad input: a wrong path, a bad flag, an unknown model. The CLI prints it as one line and
    exits with status 2; it never shows a traceback."""


def error_summary(error, limit=200):
    """The telling line of an exception's text: MXNet's errors start with a C++ traceback and end
    with the message, so the last line that is not part of a traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("Traceback", "File ", "[bt]"))]
    return (lines[-1] if lines else type(error).__name__)[:limit]
