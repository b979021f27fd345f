"""Benchmark gate for G6: legacy vs migrated clones timed interleaved in one run, plus buffers and plans.

``run_gate`` is the entry point the pytest suite, the calibration script and the tests share.
"""

from __future__ import annotations

import contextlib

import psycopg

from synap_verify.bench.ab import Limits, one_cpu, prepare
from synap_verify.bench.gate import G6, Comparison, compare, failed, findings, render_table
from synap_verify.bench.workload import Query, Session, Side, fetch_params, load_workload
from synap_verify.errors import SynapError

__all__ = ["Comparison", "Limits", "Query", "Side", "findings", "load_workload", "render_table", "run_gate"]


def run_gate(before: Side, after: Side, queries: list[Query], limits: Limits = G6,
             inject: float = 0.0) -> list[Comparison]:
    """Compare every query of the workload; parameters are drawn from the before (legacy) side.

    A query that fails (an SQL error, no parameters) becomes a BENCH-ERROR finding and the others
    still run: one broken query must not hide the verdicts of thirteen.
    """
    for dsn in dict.fromkeys((before.dsn, after.dsn)):
        prepare(dsn)
    results = []
    with Session(before) as a, Session(after) as b, one_cpu(a, b) as placement:
        for query in queries:
            try:
                result = compare(a, b, query, fetch_params(before.dsn, query, before.schema), limits, inject)
            except (psycopg.Error, SynapError) as exc:
                result = failed(query, exc)
            for session in (a, b):
                with contextlib.suppress(psycopg.Error):  # a broken connection fails the next query visibly
                    session.forget_statements()
            result.placement = placement
            results.append(result)
    return results
