"""Interleaved A/B timing and EXPLAIN (ANALYZE, BUFFERS) of one query on two databases of one server.

Both sides run in the same process against the same server, round after round: in round ``i`` side A
then side B (B then A on odd rounds), ``per_round`` executions each, with the same parameters. Drift of
a shared machine (which moves a median ~20% between sessions minutes apart) then hits both sides alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from synap_verify.bench.workload import Params, Query, Session, run_rows


@dataclass
class Samples:
    """Raw per-execution durations (seconds) of both sides, and which parameter set each one ran."""

    before: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)
    before_keys: list[int] = field(default_factory=list)
    after_keys: list[int] = field(default_factory=list)

    def normalised(self) -> tuple[list[float], list[float]]:
        """Both sides divided by the before-side median of the same parameter set.

        Tenants differ in result size, so raw samples form a mixture whose median jumps between
        clusters; per-parameter normalisation leaves only the before/after difference.
        """
        ref: dict[int, float] = {}
        for key in set(self.before_keys):
            ref[key] = statistics.median(v for v, k in zip(self.before, self.before_keys, strict=True) if k == key)
        return ([v / ref[k] for v, k in zip(self.before, self.before_keys, strict=True)],
                [v / ref[k] for v, k in zip(self.after, self.after_keys, strict=True)])


def prepare(dsn: str) -> None:
    """VACUUM ANALYZE, so both clones start with fresh statistics and visibility maps."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def _spin(seconds: float) -> None:
    """Busy-wait: an exactly known extra cost, unlike sleep whose wake-up jitter is larger than 5% of a query."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _timed(session: Session, query: Query, params: Params, extra: float) -> float:
    session.set_tenant(params)
    sql = query.sql(session.side.version)
    conn = session.conn
    if query.write:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            began = time.perf_counter()
            cur.execute(sql, params)
            if cur.description:
                cur.fetchall()
            if extra:
                _spin(extra)
            return time.perf_counter() - began
    with conn.cursor() as cur:
        began = time.perf_counter()
        cur.execute(sql, params)
        cur.fetchall()
        if extra:
            _spin(extra)
        return time.perf_counter() - began


def interleave(before: Session, after: Session, query: Query, params: list[Params], rounds: int = 20,
               per_round: int = 5, warmup: int = 2, inject: float = 0.0) -> Samples:
    """Raw samples of both sides, interleaved and order-alternated; ``inject`` adds that many seconds
    of busy-wait to every after-side execution (calibration of the detector)."""
    for p in params[:warmup] or params[:1]:
        for _ in range(2):
            run_rows(before, query, p)
            run_rows(after, query, p)
    samples = Samples()
    for i in range(rounds):
        key = i % len(params)
        order = ((before, samples.before, samples.before_keys, 0.0), (after, samples.after, samples.after_keys, inject))
        for session, sink, keys, extra in (order if i % 2 == 0 else order[::-1]):
            sink.extend(_timed(session, query, params[key], extra) for _ in range(per_round))
            keys.extend([key] * per_round)
    return samples


@dataclass(frozen=True)
class Plan:
    """What EXPLAIN (ANALYZE, BUFFERS) says about one execution."""

    buffers: int  # shared blocks hit + read during execution (planning excluded: it varies run to run)
    nodes: tuple[tuple[str, str, str], ...]  # (node type, relation, index) of every node

    @property
    def index_scans(self) -> set[str]:
        return {index for _, _, index in self.nodes if index}

    @property
    def seq_scans(self) -> set[str]:
        return {rel for kind, rel, _ in self.nodes if kind == "Seq Scan"}

    def describe(self) -> str:
        scans = [f"{kind} {index or rel}".strip() for kind, rel, index in self.nodes if rel or index]
        return ", ".join(dict.fromkeys(scans)) or "-"


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def explain(session: Session, query: Query, params: Params) -> Plan:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of one execution; a write is rolled back."""
    session.set_tenant(params)
    sql = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query.sql(session.side.version)
    conn = session.conn
    with conn.transaction(force_rollback=True), conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    assert row is not None
    root = row[0][0]["Plan"]
    nodes = tuple((n["Node Type"], n.get("Relation Name", ""), n.get("Index Name", "")) for n in _walk(root))
    return Plan(root.get("Shared Hit Blocks", 0) + root.get("Shared Read Blocks", 0), nodes)
