"""``synap-verify generate``: any schema in, production-shaped data out, in a scratch database.

Builds the legacy state of the pipeline (the same code ``--synap-baseline`` runs under pytest) from a
dump or a live DSN, then prints rows per table, the constraint report and timing. Exit 0 when every
table that can hold rows got them and no constraint is violated, 1 when rows could not be made, 2 on
usage or connection errors.
"""

from __future__ import annotations

import argparse
import sys
import time

from synap_verify.catalog import Catalog, read_catalog, user_schemas
from synap_verify.datagen import LoadReport, fk_violations
from synap_verify.settings import BACKENDS, SCALES, Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", required=True, help="schema file (pg_dump --schema-only) or DSN to take it from")
    parser.add_argument("--prelude", help="SQL file run before the dump (functions, roles, schemas it uses)")
    parser.add_argument("--skip-missing", action="store_true",
                        help="leave out (and list) what needs an object the dump does not define or the server lacks")
    parser.add_argument("--scale", default="small", help=f"data profile: {', '.join(SCALES)} (default: small)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--stats", help="shape the data by production's statistics: a file from 'synap-verify stats "
                        "export', or a DSN to read them from (statistics only, never a row)")
    parser.add_argument("--stats-scale", type=float, default=None,
                        help="with --stats: rows per table = production's row count times this factor (default 1)")
    parser.add_argument("--backend", default=None, help=f"where PostgreSQL comes from: {', '.join(BACKENDS)}")
    parser.add_argument("--dsn", help="a disposable server to build on (with --backend=dsn)")
    parser.add_argument("--dsn-disposable", action="store_true", help="the --dsn server may be written to")
    parser.add_argument("--keep", action="store_true", help="leave the server and the filled database up")


def run(args: argparse.Namespace) -> int:
    from synap_verify.pipeline import Pipeline

    settings = Settings.resolve({
        "baseline": args.baseline, "baseline_prelude": args.prelude, "baseline_skip_missing": args.skip_missing,
        "scale": args.scale, "seed": args.seed, "stats": args.stats, "stats_scale": args.stats_scale,
        "backend": args.backend, "dsn": args.dsn,
        "dsn_disposable": args.dsn_disposable, "keep": args.keep,
        "cache": "off",  # the command measures the load it does: a state from the cache would measure nothing
    })
    began = time.perf_counter()
    pipeline = Pipeline.start(settings, say=lambda line: print(line, file=sys.stderr))
    try:
        db = pipeline.clone("legacy")
        seconds = time.perf_counter() - began
        report = pipeline.load_report
        assert report is not None  # a fresh server: the state was built in this run
        with db.connect() as conn:
            catalog = read_catalog(conn, user_schemas(conn))
            violations = fk_violations(conn, catalog)
        if settings.keep:
            print(f"filled database kept: {db.name} on {pipeline.server.describe()}")
        else:
            db.drop()
    finally:
        pipeline.stop()
    return _print(report, catalog, violations, seconds)


def _print(report: LoadReport, catalog: Catalog, violations: list[str], seconds: float) -> int:
    """Rows per table, what was left out, the constraint report, timing; the exit code."""
    roots = [t for t in catalog.tables.values() if t.partition_of is None]
    empty = sorted(name for name, rows in report.rows.items() if not rows)
    print(f"{'table':<48} {'rows':>10}")
    for name in sorted(report.rows):
        print(f"{name:<48} {report.rows[name]:>10,}")
    left = [n for n in report.notes if n.startswith("left out of the baseline")]
    for line in left:
        print(line)
    for line in (n for n in report.notes if n.startswith("statistics:")):
        print(line)
    print("constraint report:")
    for line in report.constraint_report() or ["every table made by the generator, no row refused by a constraint"]:
        print(f"  {line}")
    for line in violations:
        print(f"  VIOLATED {line}")
    filled = sum(1 for t in roots if report.rows.get(t.name))
    print(f"{filled}/{len(roots)} tables filled, {report.total_rows:,} rows in {report.seconds:.1f}s "
          f"({report.total_rows / max(report.copy_seconds, 1e-9):,.0f} rows/s in the COPY phase), "
          f"{report.unmade:,} rows could not be made, {len(violations)} constraint violations, "
          f"{len(left)} statements left out; whole run {seconds:.1f}s")
    if empty:
        print(f"tables left empty: {', '.join(empty)}")
    return 1 if report.unmade or violations or empty else 0
