"""The one way a refusal reaches a person, and the short reasons that one-line messages quote.

Every refusal of the package (a file that cannot be read, an option that cannot be honoured, an
output that may not be written) is a `UserError`: its message is one line that names the thing at
fault, and the command line prints it as "error: MESSAGE" and exits with its `exit_code`
(cli/__init__.py catches the base once). The web page shows the same line. A layer below the
command line does not name a command-line option by itself: its caller passes the name the user
knows (as `OutputRule.refusal(option=)` takes it).
"""


class UserError(Exception):
    """A refusal: a one-line message naming the thing at fault; `exit_code` is the command's exit
    status (2: nothing was done)."""

    exit_code = 2


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of the error's message (its type's name when it has none), at most `limit` characters."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]


def one_line(error: BaseException) -> str:
    """An exception as a short reason for a one-line message (an OSError's reason without its path)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return first_line(error)


def os_error_line(error: OSError) -> str:
    """An OSError as one line naming the file: 'PATH: reason'."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["first_line", "one_line", "os_error_line"]
