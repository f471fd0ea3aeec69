"""Turning an exception into the short reason that one-line messages to the user quote."""


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
