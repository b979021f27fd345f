"""Calibrate the benchmark gate on this machine: its noise floor, detection power and false-alarm rate.

    python benchmarks/calibrate.py [--trials 20] [--levels 0,5,10,20] [--query "gin lookup"]

Starts an embedded PostgreSQL, builds one table of dashboards (jsonb + GIN), and runs the full gate (row
check, EXPLAIN, interleaved timing, confirmation rerun) ``--trials`` times per level on two identical clones.
A level of +k% injects a known extra cost on the after side: a client-side busy-wait of k% of the before
side's lower quartile in the latest round (the statistic the gate compares), inside the timed region of every
after-side execution. Busy-waiting is exact to microseconds, unlike pg_sleep whose wake-up jitter is larger
than 5% of a sub-millisecond query. Level 0 is the A/A run: the share flagged is the false-alarm rate, and the
spread of its ratios is the noise floor. The load average is printed with every level: on a shared machine the
rates hold for the load they were measured under, no more."""

from __future__ import annotations

import argparse
import os
import statistics
import time

from psycopg import sql

from synap_verify.bench import Limits, Query, Side
from synap_verify.bench.ab import interleave, lower_quartile, one_cpu, prepare
from synap_verify.bench.gate import compare
from synap_verify.bench.workload import Session, fetch_params
from synap_verify.server import Server, embedded

TABLE = """
CREATE SCHEMA synapscale_db;
CREATE TABLE synapscale_db.dashboards AS
SELECT g AS id, g % 50 + 1 AS tenant_id,
       jsonb_build_array(jsonb_build_object('type', (ARRAY['line','bar','kpi','table','pie'])[g % 5 + 1]),
                         jsonb_build_object('type', CASE WHEN g % 97 = 0 THEN 'gauge' ELSE 'map' END)) AS widgets
  FROM generate_series(1, %s) g;
CREATE INDEX dashboards_widgets_gin ON synapscale_db.dashboards USING gin (widgets);
CREATE INDEX dashboards_tenant ON synapscale_db.dashboards (tenant_id);
"""
QUERIES = {
    "gin lookup": Query("gin_lookup", "calibration",
                        "SELECT id FROM dashboards WHERE widgets @> '[{\"type\": \"gauge\"}]' AND tenant_id = %(tenant_id)s",
                        "SELECT id FROM dashboards WHERE widgets @> '[{\"type\": \"gauge\"}]' AND tenant_id = %(tenant_id)s",
                        "SELECT t AS tenant_id FROM generate_series(1, 5) t", table="dashboards"),
    "seq scan": Query("seq_scan", "calibration",
                      "SELECT count(*) FROM dashboards WHERE widgets->0->>'type' = %(kind)s",
                      "SELECT count(*) FROM dashboards WHERE widgets->0->>'type' = %(kind)s",
                      "SELECT 1 AS tenant_id, 'bar' AS kind UNION ALL SELECT 2, 'pie'", table="dashboards"),
}


def build(server: Server, rows: int) -> tuple[str, str]:
    with server.connect() as conn:
        for name in ("calib_a", "calib_b"):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute("CREATE DATABASE calib_a")
    with server.connect("calib_a") as conn:
        conn.execute(TABLE.replace("%s", str(int(rows))))
    with server.connect() as conn:
        conn.execute("CREATE DATABASE calib_b TEMPLATE calib_a")
    return server.dsn("calib_a"), server.dsn("calib_b")


def calibrate(a: str, b: str, query: Query, levels: list[int], trials: int, limits: Limits) -> None:
    for dsn in (a, b):
        prepare(dsn)
    before, after = Side("before", a, "migrated"), Side("after", b, "migrated")
    params = fetch_params(a, query)
    with Session(before) as sa, Session(after) as sb, one_cpu(sa, sb) as placement:
        probe = interleave(sa, sb, query, params, limits)
        base = lower_quartile(probe.before)
        print(f"\n{query.name}: before-side lower quartile {base * 1000:.3f} ms, {limits.rounds} rounds x "
              f"{probe.per_round} executions per side, {trials} trials per level; {placement}")
        print("level   flagged  rate    mean ratio  ratio range    mean CI width  s/trial  load avg (1/5/15 min)")
        for level in levels:
            flagged, ratios, widths = 0, [], []
            began = time.perf_counter()
            for _ in range(trials):
                result = compare(sa, sb, query, params, limits, inject=level / 100)
                assert result.timing is not None
                flagged += any(f.rule == "BENCH-TIME" for f in result.findings)
                ratios.append(result.timing.ratio)
                widths.append(result.timing.ci[1] - result.timing.ci[0])
            load = "/".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"+{level:<3d}%  {flagged:>3d}/{trials:<3d}  {flagged / trials:6.1%}  {statistics.mean(ratios):10.3f}"
                  f"  {min(ratios):.3f}-{max(ratios):.3f}  {statistics.mean(widths):13.3f}"
                  f"  {(time.perf_counter() - began) / trials:7.2f}  {load}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--levels", default="0,5,10,20", help="injected slowdowns in percent")
    parser.add_argument("--rounds", type=int, default=Limits.rounds)
    parser.add_argument("--per-round", type=int, default=Limits.per_round, help="at least; more for fast queries")
    parser.add_argument("--rows", type=int, default=50000)
    parser.add_argument("--query", choices=sorted(QUERIES), action="append", help="default: all")
    args = parser.parse_args()
    limits = Limits(rounds=args.rounds, per_round=args.per_round)
    server = embedded.start()
    try:
        a, b = build(server, args.rows)
        for name in args.query or sorted(QUERIES):
            calibrate(a, b, QUERIES[name], [int(x) for x in args.levels.split(",")], args.trials, limits)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
