"""``synap-verify stats``: production's planner statistics, exported and measured.

``export`` reads ``pg_class.reltuples`` and ``pg_stats`` from a DSN in a read-only transaction (statistics
only, never a row) into a JSON file that ``generate --stats`` / ``--synap-stats`` shape data by.
``compare`` measures how close a copy's statistics and generic plans are to a source's; ``bench`` does
the whole round trip on our fixture: load it, export its statistics, generate a fresh copy from them
alone, and compare.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import psycopg

from synap_verify.datagen.fidelity import (
    GOALS,
    ColumnLikeness,
    PlanLikeness,
    compare_columns,
    compare_plans,
    summary,
)
from synap_verify.datagen.stats import Stats, id_columns, load_stats, read_stats
from synap_verify.errors import SynapError
from synap_verify.groups import SCHEMA
from synap_verify.resources import WORKLOAD
from synap_verify.settings import BACKENDS, is_dsn


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = sub.add_parser("export", help="write a database's statistics (reltuples, pg_stats) to a JSON file")
    export.add_argument("--dsn", required=True, help="the database to read statistics from (read only)")
    export.add_argument("--out", required=True, type=Path, help="the statistics file to write")
    compare = sub.add_parser("compare", help="how close a copy's statistics and plan shapes are to a source's")
    compare.add_argument("--source", required=True, help="statistics file or DSN of the source")
    compare.add_argument("--copy", required=True, help="statistics file or DSN of the generated copy")
    compare.add_argument("--workload", type=Path, default=WORKLOAD,
                         help="queries whose generic plans are compared when both sides are DSNs")
    bench = sub.add_parser("bench", help="our fixture as production: export its statistics, generate a copy from "
                                         "them alone, compare")
    bench.add_argument("--scale", default="small", help="data profile of the stand-in production (default: small)")
    bench.add_argument("--stats-scale", type=float, default=1.0, help="row counts of the copy: production's x this")
    bench.add_argument("--seed", type=int, default=None)
    bench.add_argument("--backend", default=None, help=f"where PostgreSQL comes from: {', '.join(BACKENDS)}")
    bench.add_argument("--workload", type=Path, default=WORKLOAD)
    for p in (compare, bench):
        p.add_argument("--worst", type=int, default=10, help="how many of the farthest columns to list")


def run(args: argparse.Namespace) -> int:
    if args.action == "export":
        stats = load_stats(args.dsn)
        args.out.write_text(stats.to_json())
        print(f"statistics of {len(stats.tables)} tables, {sum(len(t.columns) for t in stats.tables.values())} "
              f"columns written to {args.out} (reltuples and pg_stats only; no row was read)")
        return 0
    if args.action == "compare":
        return _compare(args)
    return _bench(args)


def _side(source: str) -> Stats:
    return load_stats(source if is_dsn(source) else Path(source))


def _compare(args: argparse.Namespace) -> int:
    from synap_verify.bench.workload import load_workload
    from synap_verify.catalog import read_catalog, user_schemas

    source, copy = _side(args.source), _side(args.copy)
    plans: list[PlanLikeness] = []
    ids: set[tuple[str, str]] = set()
    if is_dsn(args.source) and is_dsn(args.copy):
        with _connect(args.source) as a, _connect(args.copy) as b:
            plans = compare_plans(a, b, load_workload(args.workload))
            ids = id_columns(read_catalog(b, user_schemas(b)))
    columns = compare_columns(source, copy, ids)
    return _print(columns, plans, args.worst)


def _connect(dsn: str) -> psycopg.Connection:
    from synap_verify.server import redact

    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise SynapError(f"cannot connect to {redact(dsn)}: {str(exc).strip().splitlines()[0]}: check the DSN") from None
    conn.execute(f"SET search_path = {SCHEMA}, public")
    return conn


def _bench(args: argparse.Namespace) -> int:
    from synap_verify import datagen
    from synap_verify.bench.workload import load_workload
    from synap_verify.catalog import read_catalog, user_schemas
    from synap_verify.pipeline import Pipeline
    from synap_verify.settings import Settings

    settings = Settings.resolve({"scale": args.scale, "seed": args.seed, "backend": args.backend, "cache": "off"})
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    pipeline = Pipeline.start(settings, say=say)
    try:
        source = pipeline.clone("legacy")  # filled and analysed by the generator
        with source.connect() as conn:
            exported = read_stats(conn, user_schemas(conn))
        with tempfile.TemporaryDirectory() as folder:  # through a file, as a user hands them over
            path = Path(folder) / "stats.json"
            path.write_text(exported.to_json())
            stats = load_stats(path)
        copy = pipeline.clone("schema")
        with copy.connect() as conn:
            catalog = read_catalog(conn, user_schemas(conn))
        report = datagen.fill(copy.dsn, catalog, settings.scale, settings.seed + 1, stats=stats,
                              stats_scale=args.stats_scale)
        say(f"synap-verify: copy generated from statistics only: {report.total_rows:,} rows in {report.seconds:.1f}s "
            f"(source: {sum(round(t.reltuples) for t in stats.tables.values()):,} rows)")
        for note in report.notes:
            if note.startswith("statistics:"):
                say(f"synap-verify: {note}")
        with copy.connect() as conn:
            copied = read_stats(conn, user_schemas(conn))
        with _connect(source.dsn) as a, _connect(copy.dsn) as b:
            plans = compare_plans(a, b, load_workload(args.workload))
        source.drop()
        copy.drop()
    finally:
        pipeline.stop()
    return _print(compare_columns(stats, copied, id_columns(catalog)), plans, args.worst)


def _print(columns: list[ColumnLikeness], plans: list[PlanLikeness], worst: int) -> int:
    """The farthest columns, the plans that differ, and the summary against the issue's bars; exit 1 below them."""
    far = sorted(columns, key=_badness, reverse=True)[:worst]
    print(f"{'column (* ids: MCV frequencies compared)':<60} {'null diff':>9} {'ndist x':>8} {'mcv':>6}")
    for c in far:
        mcv = "-" if c.mcv_overlap is None else f"{c.mcv_overlap:.0%}" + "*" * c.ids
        print(f"{c.table + '.' + c.column:<60} {c.null_diff:>9.3f} {c.distinct_ratio:>8.2f} {mcv:>6}")
    for p in plans:
        if not p.same:
            print(f"plan differs: {p.query}: source {_shape(p.source)} / copy {_shape(p.copy)}")
    s = summary(columns, plans)
    print(f"{s['columns']:.0f} columns: null_frac diff median {s.get('null_frac_diff_median', 0):.3f} worst "
          f"{s.get('null_frac_diff_worst', 0):.3f} ({s['null_frac_within']:.1%} within {GOALS['null_frac']}); "
          f"n_distinct ratio median {s.get('n_distinct_ratio_median', 1):.2f} worst {s.get('n_distinct_ratio_worst', 1):.2f}"
          f" ({s['n_distinct_within']:.1%} within {GOALS['n_distinct']:g}x); MCV overlap over {s['mcv_columns']:.0f} "
          f"columns median {s.get('mcv_overlap_median', 1):.0%} worst {s.get('mcv_overlap_worst', 1):.0%} "
          f"({s['mcv_within']:.1%} at least {GOALS['mcv']:.0%}); id columns' MCV frequencies over {s['id_columns']:.0f} "
          f"columns median {s.get('id_frequencies_median', 1):.0%} worst {s.get('id_frequencies_worst', 1):.0%}; "
          f"correlation of {s['ordered_columns']:.0f} ordered columns within {GOALS['correlation']}: "
          f"{s['correlation_within']:.1%} (worst diff {s.get('correlation_diff_worst', 0):.2f}); "
          f"plans: {s['plans_same']:.0%} of "
          f"{s['plans_comparable']:.0f} comparable queries have the same node types "
          f"({s['plans']:.0f} read queries in the workload)")
    met = s["null_frac_within"] == 1 and s["n_distinct_within"] == 1 and s["mcv_within"] == 1 \
        and s["correlation_within"] == 1 \
        and s["plans_same"] >= GOALS["plans"]
    return 0 if met else 1


def _badness(c: ColumnLikeness) -> float:
    """How far a column is from the bars, in multiples of each bar (1 = just at it)."""
    mcv = 1.0 if c.mcv_overlap is None or c.ids else c.mcv_overlap
    return max(c.null_diff / GOALS["null_frac"], math.log(c.distinct_ratio) / math.log(GOALS["n_distinct"]),
               (1 - mcv) / (1 - GOALS["mcv"]), (c.correlation_diff or 0.0) / GOALS["correlation"])


def _shape(shape: tuple[str, ...] | str) -> str:
    return " > ".join(shape) if isinstance(shape, tuple) else shape
