"""Interrupts that stop a run and its server: Ctrl-C (SIGINT) and SIGTERM both raise KeyboardInterrupt.

A process started in the background by a shell without job control (``pytest tests &`` in a script,
many CI runners) inherits SIGINT *ignored*, and Python then leaves it ignored: Ctrl-C or ``kill -INT``
did nothing, and the run slept on with its server up. SIGTERM's default ends the process without
running any cleanup (the janitor stops the server afterwards, but the report and the terminal
summary are lost). So while a run may own a server, both raise KeyboardInterrupt, which pytest and
the CLI already turn into an orderly stop. A handler someone installed on purpose is left alone.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")


def install() -> Callable[[], None]:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt; return what puts the previous handlers back.

    Only the main thread may set handlers; elsewhere (pytest run inside a thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[signal.Signals, Callable[[int, FrameType | None], object] | int | None] = {}
    for signum, untouched in ((signal.SIGINT, (signal.SIG_IGN, signal.SIG_DFL)), (signal.SIGTERM, (signal.SIG_DFL,))):
        current = signal.getsignal(signum)
        if current in untouched:
            previous[signum] = current
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else _interrupt)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
