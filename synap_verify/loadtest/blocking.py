"""Lock waits seen from the database while a migration runs under load.

A thread samples ``pg_locks`` (ungranted) joined to ``pg_stat_activity`` every few tens of
milliseconds. Each wait is identified by (pid, wait start) and kept with the longest time it was seen
waiting, what it waited for and who blocked it, so a step's verdict is "the longest any load query
waited while this step ran". PostgreSQL 14+ records when a wait began (``pg_locks.waitstart``); older
servers fall back to the query's start, which overstates a wait by the query's own run time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg

LOAD_APP = "synap-load"  # application_name prefix of every load session (SQL users, the API's pool)
SAMPLER_APP = "synap-load-sampler"

WAITS_SQL = """
SELECT a.pid, a.application_name, coalesce(l.relation::regclass::text, l.locktype), l.mode,
       extract(epoch FROM {start}), extract(epoch FROM clock_timestamp() - {start}),
       pg_blocking_pids(a.pid), left(a.query, 200)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND a.datname = current_database() AND a.pid <> pg_backend_pid()
"""
BLOCKERS_SQL = "SELECT pid, application_name, left(query, 200) FROM pg_stat_activity WHERE pid = ANY(%s)"


@dataclass
class Wait:
    """One session waiting for one lock, at its longest seen."""

    pid: int
    application: str
    relation: str
    mode: str
    since: float  # epoch seconds
    seconds: float
    query: str
    blockers: list[str] = field(default_factory=list)  # "application: query" of each blocking session

    @property
    def load(self) -> bool:
        return self.application.startswith(LOAD_APP)

    @property
    def blocked_by_migration(self) -> bool:
        """Blocked by a session that is not part of the load (the migration, on a private server)."""
        return any(not b.startswith(LOAD_APP) for b in self.blockers)


class WaitSampler(threading.Thread):
    """Samples lock waits on ``dsn`` every ``interval`` s until :meth:`finish`, for at most ``limit`` s."""

    def __init__(self, dsn: str, interval: float = 0.05, limit: float = 3600.0) -> None:
        super().__init__(daemon=True, name="wait-sampler")
        self._dsn, self._interval, self._limit = dsn, interval, limit
        self._stop_event = threading.Event()
        self._ready = threading.Event()
        self.waits: dict[tuple[int, float], Wait] = {}
        self.samples = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self._dsn, autocommit=True, application_name=SAMPLER_APP) as conn:
                version = conn.info.server_version
                sql = WAITS_SQL.format(start="coalesce(l.waitstart, a.query_start)" if version >= 140000 else "a.query_start")
                self._ready.set()
                deadline = time.monotonic() + self._limit
                while not self._stop_event.is_set() and time.monotonic() < deadline:
                    self._sample(conn, sql)
                    self._stop_event.wait(self._interval)
        except psycopg.Error as exc:
            self.error = str(exc).strip().splitlines()[0]
        finally:
            self._ready.set()

    def _sample(self, conn: psycopg.Connection, sql: str) -> None:
        rows = conn.execute(sql).fetchall()  # type: ignore[arg-type]
        self.samples += 1
        if not rows:
            return
        blocker_pids = sorted({p for r in rows for p in (r[6] or [])})
        who = {pid: f"{app or '?'}: {query}" for pid, app, query in
               conn.execute(BLOCKERS_SQL, (blocker_pids,)).fetchall()} if blocker_pids else {}
        for pid, app, relation, mode, since, waited, blockers, query in rows:
            since_s = float(since or 0.0)
            key = (pid, round(since_s, 3))
            wait = self.waits.get(key)
            if wait is None:
                wait = self.waits[key] = Wait(pid, app or "", relation, mode, since_s, 0.0, query or "")
            wait.seconds = max(wait.seconds, float(waited or 0.0))
            for b in blockers or []:
                text = who.get(b, f"pid {b}")
                if text not in wait.blockers:
                    wait.blockers.append(text)

    def start(self) -> None:
        super().start()
        self._ready.wait(10)

    def finish(self) -> list[Wait]:
        self._stop_event.set()
        self.join(10)
        return sorted(self.waits.values(), key=lambda w: w.since)


@dataclass(frozen=True)
class StepWindow:
    """When one migration step ran (epoch seconds), and whether it failed."""

    name: str
    doc: str
    start: float
    end: float
    error: str | None = None
    exclusive: str = ""  # longest ACCESS EXCLUSIVE lock the step was seen holding ("relation 0.12s")

    @property
    def seconds(self) -> float:
        return self.end - self.start


def step_of(wait: Wait, steps: Iterable[StepWindow], slack: float = 0.05) -> StepWindow | None:
    """The step that was running when the wait began (it holds its locks until it commits)."""
    for step in steps:
        if step.start - slack <= wait.since <= step.end + slack:
            return step
    return None
