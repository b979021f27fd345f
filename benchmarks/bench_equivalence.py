"""How close does the equivalence check run to the scan limit?

    python benchmarks/bench_equivalence.py --scale small [--rounds 3] [--jobs N]

Builds (or takes from the state cache) the legacy and migrated states, then times, alternating the
order in every round so drift on a shared machine hits all of them: a single-connection
``SELECT count(*), sum(hashtextextended(t::text, 0))`` over every table of both databases, as PostgreSQL
runs it (a large table's scan gets parallel workers: every core) and with ``max_parallel_workers_per_gather
= 0`` (one process: the scan limit of one core), ``equivalence.run`` with one connection per side, and with
``--jobs`` connections per side (default: the cores). Reports medians in rows/s and each rate's ratio to
both hash scans'.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synap_verify.contract import load_contract  # noqa: E402
from synap_verify.integrity import equivalence  # noqa: E402
from synap_verify.pipeline import Pipeline  # noqa: E402
from synap_verify.settings import Settings  # noqa: E402


def hash_scan(dsns: list[str], workers: bool = True) -> int:
    """Every table of every database, one connection, one sequential scan each (``workers``: with the parallel
    workers PostgreSQL plans for it, else in the connection's own process): the rows it read."""
    rows = 0
    for dsn in dsns:
        with equivalence.connect(dsn) as conn:
            if not workers:
                conn.execute("SET max_parallel_workers_per_gather = 0")
            tables = conn.execute("SELECT format('%%I.%%I', schemaname, relname) FROM pg_stat_user_tables "
                                  "WHERE schemaname = %s", (equivalence.SCHEMA,)).fetchall()
            for (table,) in tables:
                row = conn.execute(f"SELECT count(*), sum(hashtextextended(t::text, 0)) FROM {table} t").fetchone()
                rows += int(row[0]) if row else 0
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=("tiny", "small", "prod"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=equivalence.default_jobs(), help="connections per side")
    parser.add_argument("--cache", default=None, help="state cache folder, or off (default: the user cache)")
    args = parser.parse_args()
    settings = Settings.resolve({"scale": args.scale, "cache": args.cache})
    pipeline = Pipeline.start(settings, say=lambda line: print(line, file=sys.stderr))
    try:
        before, after = pipeline.clone("legacy"), pipeline.clone("migrated")
        contract = load_contract(settings.contract)
        rows: dict[str, int] = {}
        times: dict[str, list[float]] = {}

        def timed(name: str, work: Callable[[], int]) -> None:
            began = time.perf_counter()
            rows[name] = work()
            times.setdefault(name, []).append(time.perf_counter() - began)

        narrowing: dict[int, list[float]] = {}

        def check(jobs: int) -> int:
            report = equivalence.run(before.dsn, after.dsn, contract, settings.groups, jobs=jobs)
            assert not report.findings, f"the reference migration lost data: {report.findings[:3]}"
            narrowing.setdefault(jobs, []).append(report.seconds - report.scanned_in)
            return report.rows

        measures: list[tuple[str, Callable[[], int]]] = [
            ("hash scan, 1 connection", lambda: hash_scan([before.dsn, after.dsn])),
            ("hash scan, 1 connection, 1 process", lambda: hash_scan([before.dsn, after.dsn], workers=False)),
            ("equivalence, 1 connection per side", lambda: check(1)),
            (f"equivalence, {args.jobs} connections per side", lambda: check(args.jobs)),
        ]
        for i in range(args.rounds):
            for name, work in (measures if i % 2 == 0 else measures[::-1]):
                timed(name, work)
    finally:
        pipeline.stop()
    load = os.getloadavg()
    print(f"scale {args.scale}, {args.rounds} rounds (medians), {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    rates = {name: rows[name] / statistics.median(times[name]) for name, _ in measures}
    scan, one = rates[measures[0][0]], rates[measures[1][0]]
    for name, _ in measures:
        print(f"{name:<42} {rows[name]:>11,} rows in {statistics.median(times[name]):6.2f}s = {rates[name]:>10,.0f} "
              f"rows/s, {rates[name] / scan:.2f}x the hash scan, {rates[name] / one:.2f}x in 1 process")
    print("of which narrowing (medians): " + ", ".join(f"{statistics.median(v):.1f}s with {jobs} connection(s) per side"
                                                     for jobs, v in sorted(narrowing.items())))


if __name__ == "__main__":
    main()
