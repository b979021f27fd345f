"""``synap-verify bench-provision``: what provisioning costs, as medians of several runs.

Prints server start time, the harness's template clone against a bare ``CREATE DATABASE ... TEMPLATE``
of the same database timed side by side in the same run, and a full catalog read of the schema.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from psycopg import sql

from synap_verify.catalog import read_catalog
from synap_verify.resources import LEGACY_SCHEMA
from synap_verify.server import Server, embedded
from synap_verify.server.templates import build_template, clone, drop_database


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=7, help="repetitions per measurement (median reported)")
    parser.add_argument("--scale", default=None, help="also fill the template with this data profile (e.g. small)")
    parser.add_argument("--schema", type=Path, default=LEGACY_SCHEMA)


def run(args: argparse.Namespace) -> int:
    starts = []
    for _ in range(max(1, args.runs // 2)):
        server = embedded.start()
        starts.append(server.started_in)
        server.stop()
    server = embedded.start()
    try:
        rows = _build(server, args.schema, args.scale)
        ours, bare = _clone_times(server, args.runs)
        reads = _catalog_times(server, args.runs)
    finally:
        server.stop()
    print(f"server start (initdb + start), median of {len(starts)}: {statistics.median(starts) * 1000:.0f} ms")
    print(f"template with {rows:,} rows; clone median of {args.runs}: harness {ours * 1000:.1f} ms, "
          f"bare CREATE DATABASE ... TEMPLATE {bare * 1000:.1f} ms, ratio {ours / bare:.2f} (goal <= 1.3)")
    print(f"catalog read ({reads[1]} tables), median of {args.runs}: {reads[0] * 1000:.1f} ms")
    return 0


def _build(server: Server, schema: Path, scale: str | None) -> int:
    from synap_verify import datagen
    from synap_verify.datagen.schema import load_schema_file

    counted: list[int] = [0]

    def fill(dsn: str) -> None:
        load_schema_file(dsn, schema)
        if scale:
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as conn:
                catalog = read_catalog(conn)
            counted[0] = sum(datagen.fill(dsn, catalog, scale, 1).rows.values())

    build_template(server, "bench_template", fill)
    return counted[0]


def _clone_times(server: Server, runs: int) -> tuple[float, float]:
    """Alternate the two ways of cloning so drift on a shared machine hits both equally."""
    ours: list[float] = []
    bare: list[float] = []
    for i in range(runs):
        for kind in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
            if kind == "ours":
                began = time.perf_counter()
                db = clone(server, "bench_template")
                ours.append(time.perf_counter() - began)
                db.drop()
            else:
                with server.connect() as conn:
                    began = time.perf_counter()
                    conn.execute(sql.SQL("CREATE DATABASE bare_clone TEMPLATE bench_template"))
                    bare.append(time.perf_counter() - began)
                drop_database(server, "bare_clone")
    return statistics.median(ours), statistics.median(bare)


def _catalog_times(server: Server, runs: int) -> tuple[float, int]:
    db = clone(server, "bench_template")
    try:
        with db.connect() as conn:
            timings = []
            for _ in range(runs):
                began = time.perf_counter()
                catalog = read_catalog(conn)
                timings.append(time.perf_counter() - began)
        return statistics.median(timings), len(catalog.tables)
    finally:
        db.drop()
