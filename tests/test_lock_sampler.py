"""The lock sampler reports the longest continuous hold, not the span from a relation's first lock to its last."""

from __future__ import annotations

import time

from synap_verify.migrate import LockSampler
from synap_verify.server import Server


def _hold(server: Server, db: str, seconds: float) -> None:
    with server.connect(db, autocommit=False) as conn:
        conn.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        time.sleep(seconds)
        conn.rollback()


def test_two_short_holds_are_not_one_long_one(pg: Server) -> None:
    with pg.connect() as conn:
        conn.execute("DROP DATABASE IF EXISTS sampler_check")
        conn.execute("CREATE DATABASE sampler_check")
    with pg.connect("sampler_check") as conn:
        conn.execute("CREATE TABLE held (id int)")
    sampler = LockSampler(pg.dsn("sampler_check"))
    sampler.start()
    _hold(pg, "sampler_check", 0.6)
    time.sleep(0.8)
    _hold(pg, "sampler_check", 0.2)
    (seen,) = [lk for lk in sampler.finish() if lk.relation == "held"]
    assert seen.mode == "AccessExclusiveLock"
    assert 0.3 < seen.seconds < 1.2, seen  # the first hold; first-to-last would be about 1.6 s
