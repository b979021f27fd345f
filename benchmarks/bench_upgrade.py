"""Round trips and wall time of the reference's full upgrade and of its downgrade back to base, on a clone of the
legacy state.

    python benchmarks/bench_upgrade.py [--scale tiny] [--rounds 2] [--rtt-ms 1.0]

The reference's revisions run thousands of short steps (a transaction per table, per FK, per column, per batch),
each one round trip or more. On this machine a round trip over the unix socket is a tenth of a millisecond; to a
staging server across a network it is about a millisecond. So the count of round trips, a deterministic counter,
is the number to compare; the script also prints what the round trips would add at ``--rtt-ms`` per round trip.
Every ``execute`` the migration makes on a psycopg cursor counts as one round trip (the runner's lock sampler,
in its own thread, is left out). A multi-statement query without parameters is one round trip.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from unittest import mock

import psycopg

from synap_verify import migrate
from synap_verify.pipeline import ARCHIVE_VARIABLE, Pipeline
from synap_verify.resources import REFERENCE_MIGRATIONS
from synap_verify.server import embedded
from synap_verify.settings import Settings


class Counted:
    """psycopg's ``Cursor.execute``, counting the calls of the thread that makes this (the migration's), not those
    of the runner's lock sampler, which polls every 50 ms."""

    execute = psycopg.Cursor.execute

    def __init__(self) -> None:
        self.calls, self.thread = 0, threading.get_ident()

    def __call__(self, cursor: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
        self.calls += threading.get_ident() == self.thread
        return Counted.execute(cursor, *args, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="tiny", help="the legacy state's scale (default tiny)")
    parser.add_argument("--rounds", type=int, default=2, help="upgrades and downgrades to run, each on a fresh clone")
    parser.add_argument("--rtt-ms", type=float, default=1.0, help="network round trip to price the count at")
    args = parser.parse_args()
    os.environ.setdefault(ARCHIVE_VARIABLE, tempfile.mkdtemp(prefix="bench-upgrade-archive-"))
    server = embedded.start()
    try:
        pipeline = Pipeline(Settings.resolve({"scale": args.scale}), server, say=print)
        pipeline.clone("legacy").drop()  # the legacy state built (or taken from the cache) before any timing
        for n in range(1, args.rounds + 1):
            db = pipeline.clone("legacy")
            runs: dict[str, Callable[[], object]] = {
                "upgrade to heads": partial(migrate.upgrade, db.dsn, REFERENCE_MIGRATIONS, ["heads"]),
                "downgrade to base": partial(migrate.downgrade, db.dsn, REFERENCE_MIGRATIONS, "base")}
            for what, run in runs.items():
                counted = Counted()  # every execute still runs: the patch only counts the calls it passes on
                with mock.patch.object(psycopg.Cursor, "execute", autospec=True, side_effect=counted):
                    began = time.perf_counter()
                    run()
                    took = time.perf_counter() - began
                print(f"round {n}: {what:<18} {counted.calls:7,d} round trips in {took:5.2f} s "
                      f"(+{counted.calls * args.rtt_ms / 1000:.1f} s at {args.rtt_ms:g} ms a round trip)")
            db.drop()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
