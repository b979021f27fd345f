"""The one error type the harness raises for bad input: a single line that names the fix."""


class SynapError(Exception):
    """A user-facing error: its message is one line, shown without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's first line (or its type's name), cut to ``limit``: what a one-line report shows of it."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]
