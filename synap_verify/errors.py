"""The one error type the harness raises for bad input: a single line that names the fix."""


class SynapError(Exception):
    """A user-facing error: its message is one line, shown without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
