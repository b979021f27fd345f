"""Interleaved A/B timing and EXPLAIN (ANALYZE, BUFFERS) of one query on two databases of one server.

Both sides run in the same process against the same server, round after round: in round ``i`` side A
then side B (B then A on odd rounds), ``per_round`` executions each, with the same parameters. Drift of
a shared machine (which moves a median ~20% between sessions minutes apart) then hits both sides alike.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil
import psycopg

from synap_verify.bench.workload import Params, Query, Session, run_rows


@dataclass(frozen=True)
class Limits:
    """How much to measure and the thresholds of the gate (G6: no query more than 5% slower)."""

    ratio: float = 1.05
    alpha: float = 0.01
    buffers: float = 1.05
    # blocks per execution a query may read beyond that: where a wider (jsonb) row lands decides whether
    # an UPDATE stays on its page and how many free-space-map pages an INSERT looks at (+1-2 blocks)
    buffers_slack: float = 2.0
    rounds: int = 30
    per_round: int = 6  # at least; more for fast queries, so that a side's round lasts ``round_ms``
    round_ms: float = 20.0
    max_per_round: int = 60
    prepared: bool = True  # time cached plans (a driver's hot statement); False puts planning in every sample
    # the least time a statement takes the application end to end (a network round trip between hosts):
    # a slowdown must also exceed (ratio - 1) x this, 5 us by default (docs/benchmarks.md, "Floor"); 0 = strict
    round_trip_ms: float = 0.1

    @property
    def floor_ms(self) -> float:
        return (self.ratio - 1) * self.round_trip_ms


@dataclass
class Samples:
    """Raw per-execution durations (seconds) of both sides, round after round (``per_round`` each)."""

    before: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)
    per_round: int = 1

    def round_ratios(self) -> list[float]:
        """after/before lower quartile of each round: the unit the gate tests, since both sides of one
        round ran under the same machine load and with the same parameters.

        The lower quartile rather than the median: on a loaded machine noise is one-sided (preemption
        only adds time), so a low quantile tracks the query's own cost. Measured on this machine (load
        3-5, sub-millisecond GIN lookup): A/A interval width 0.012 vs 0.019, +5% flagged 15/15 vs 7/15.
        """
        k = self.per_round
        return [lower_quartile(self.after[i:i + k]) / lower_quartile(self.before[i:i + k])
                for i in range(0, len(self.before), k)]


def lower_quartile(values: list[float]) -> float:
    return statistics.quantiles(values, n=4, method="inclusive")[0] if len(values) > 1 else values[0]


LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")


@contextmanager
def one_cpu(*sessions: Session) -> Iterator[str]:
    """Run this process and the sessions' server backends on one CPU while timing; yields what was done.

    A client and its backend hand each statement back and forth. On this 2-core machine a backend
    that the scheduler places on the client's CPU answers ``SELECT 1`` in 17.6 us, one on the other
    CPU in ~50 us, and a connection keeps its placement for thousands of statements: a random
    +30 us on one side, the size of a 0.05-0.1 ms query, that interleaving cannot cancel. Pinned,
    every connection measured 17.5-18.5 us. Only possible when the server runs on this host (a unix
    socket or loopback, backend pids visible); otherwise the timing runs unpinned and says so.
    """
    client = psutil.Process()
    previous = client.cpu_affinity()
    busy = psutil.cpu_percent(interval=0.2, percpu=True)
    cpu = min(previous, key=lambda c: busy[c])  # the idlest CPU we may run on, at the start
    try:
        backends = [psutil.Process(s.conn.info.backend_pid) for s in sessions
                    if s.conn.info.host.startswith("/") or s.conn.info.host in LOCAL_HOSTS]
        if len(backends) < len(sessions) or not all("postgres" in b.name() for b in backends):
            raise OSError("the server is not on this host")
        for backend in backends:
            backend.cpu_affinity([cpu])
        client.cpu_affinity([cpu])
    except (psutil.Error, OSError) as exc:
        yield f"unpinned ({str(exc) or type(exc).__name__}): client-backend CPU placement adds noise to sub-millisecond queries"
    else:
        yield f"client and backends pinned to CPU {cpu} of {os.cpu_count()}"
    finally:
        client.cpu_affinity(previous)


def prepare(dsn: str) -> None:
    """VACUUM ANALYZE, so both clones start with fresh statistics and visibility maps."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def _spin(seconds: float) -> None:
    """Busy-wait: an exactly known extra cost, unlike sleep whose wake-up jitter is larger than 5% of a query."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def execute_timed(session: Session, query: Query, params: Params, extra: float, prepared: bool) -> float:
    """One execution's wall time: statement sent, result received in full; a write's transaction is
    opened before and rolled back after the timed region."""
    session.set_tenant(params)
    statement = session.statement(query, params, prepared)
    pgconn = session.conn.pgconn
    if query.write:
        pgconn.exec_(b"BEGIN")
    try:
        began = time.perf_counter()
        statement.run(session.conn)
        if extra:
            _spin(extra)
        return time.perf_counter() - began
    finally:
        if query.write:
            pgconn.exec_(b"ROLLBACK")


def executions_per_round(seconds: float, at_least: int, round_ms: float, at_most: int) -> int:
    """Enough executions that one side's round lasts ``round_ms``: a quantile of a handful of
    sub-millisecond executions is too noisy for a 5% question."""
    wanted = math.ceil(round_ms / 1000 / max(seconds, 1e-6))
    return max(at_least, min(at_most, wanted))


def warm(before: Session, after: Session, query: Query, params: list[Params], limits: Limits, warmup: int = 2) -> None:
    """Run the timed statement itself on both sides alike, ``warmup`` times per parameter set and at least six
    times: the server plans a prepared statement's first five executions one by one, which must not fall
    into one side's first round, and its plan cache decides between custom and generic plans after them."""
    for p in itertools.islice(itertools.cycle(params), max(6, warmup * len(params))):
        execute_timed(before, query, p, 0.0, limits.prepared)
        execute_timed(after, query, p, 0.0, limits.prepared)


def interleave(before: Session, after: Session, query: Query, params: list[Params], limits: Limits,
               warmup: int = 2, inject: float = 0.0) -> Samples:
    """Raw samples of both sides, interleaved and order-alternated.

    ``inject`` (calibration of the detector) adds a busy-wait to every after-side execution of that
    fraction of the before side's lower quartile in the latest round: a fixed number of microseconds
    would be a smaller share whenever the machine slows both sides down.
    """
    if warmup:
        warm(before, after, query, params, limits, warmup)
    probe = statistics.median(execute_timed(before, query, params[0], 0.0, limits.prepared) for _ in range(3))
    samples = Samples(per_round=executions_per_round(probe, limits.per_round, limits.round_ms, limits.max_per_round))
    latest = probe
    for i in range(limits.rounds):
        p = params[i // 2 % len(params)]  # each parameter set for a pair of rounds: both orders alike
        sides = ((before, samples.before, False), (after, samples.after, True))
        for session, sink, slowed in (sides if i % 2 == 0 else sides[::-1]):
            extra = inject * latest if slowed else 0.0
            sink.extend(execute_timed(session, query, p, extra, limits.prepared) for _ in range(samples.per_round))
            if not slowed:
                latest = lower_quartile(sink[-samples.per_round:])
    return samples


@dataclass(frozen=True)
class Plan:
    """What EXPLAIN (ANALYZE, BUFFERS) says about one execution."""

    buffers: int  # shared blocks hit + read during execution (planning excluded: it varies run to run)
    nodes: tuple[tuple[str, str, str], ...]  # (node type, relation, index) of every node
    cache: str = ""  # the plan cache's choice for the timed statement: generic, custom, mixed; "" unprepared/unknown

    @property
    def index_scans(self) -> set[str]:
        return {index for _, _, index in self.nodes if index}

    @property
    def seq_scans(self) -> set[str]:
        return {rel for kind, rel, _ in self.nodes if kind == "Seq Scan"}

    def scans(self) -> list[str]:
        """Each relation or index access once, e.g. ``Seq Scan analytics_dashboards``."""
        return list(dict.fromkeys(f"{kind} {index or rel}".strip() for kind, rel, index in self.nodes if rel or index))


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


PLACEHOLDER = re.compile(r"%\((\w+)\)[sbt]")
EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "


def _plans_made(session: Session, name: bytes) -> tuple[int, int] | None:
    """(generic, custom) plans the server made for a prepared statement so far; None before PostgreSQL 14."""
    try:
        with session.conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
            row = cur.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s",
                              (name.decode(),)).fetchone()
    except psycopg.errors.UndefinedColumn:
        return None
    return (int(row[0]), int(row[1])) if row else None


def explain(session: Session, query: Query, params: Params, prepared: bool = False) -> Plan:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of one execution of what is timed; a write is rolled back.

    ``prepared``: ``EXPLAIN EXECUTE`` of the timed statement itself, once :func:`warm` has run it, so
    plan and buffers are those of the plan the server's plan cache chose for it (generic or custom),
    which ``cache`` says. The same query with literal values is always planned for them and can take
    another path: for a tenant's events in a time window, a bitmap scan and a sort with literals, a
    backward index scan and an incremental sort on the generic plan both sides ran. Unprepared: the
    query itself, run once first (a trigger's or policy's first call in a session reads the catalog,
    which would count as execution buffers).
    """
    session.set_tenant(params)
    conn = session.conn
    values = session.values(params)
    if prepared:
        name = session.statement(query, params, True).name
        names = list(dict.fromkeys(PLACEHOLDER.findall(query.sql(session.side.version))))
        text = f"{EXPLAIN}EXECUTE {name.decode()}({', '.join(['%s'] * len(names))})"
        args: Any = [values[n] for n in names]
        cursor: psycopg.Cursor[Any] = psycopg.ClientCursor(conn, row_factory=psycopg.rows.tuple_row)
        made = _plans_made(session, name)
    else:
        run_rows(session, query, params)
        text, args = EXPLAIN + query.sql(session.side.version), values
        cursor = conn.cursor(row_factory=psycopg.rows.tuple_row)
    with conn.transaction(force_rollback=True), cursor as cur:
        cur.execute(text, args)
        row = cur.fetchone()
    assert row is not None
    root = row[0][0]["Plan"]
    nodes = tuple((n["Node Type"], n.get("Relation Name", ""), n.get("Index Name", "")) for n in _walk(root))
    cache = ""
    if prepared and made is not None and (after := _plans_made(session, name)) is not None:
        cache = "generic" if after[0] > made[0] else "custom"
    return Plan(root.get("Shared Hit Blocks", 0) + root.get("Shared Read Blocks", 0), nodes, cache)
