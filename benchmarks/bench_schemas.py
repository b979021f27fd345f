"""Any schema in: every corpus dump, the foreign test schema and our fixture, loaded and filled, side by side
with a raw COPY of the very same rows.

    python benchmarks/bench_schemas.py --scale small [--only lago-api,danbooru]

Per schema (each in a fresh process, so the peak RSS is its own): tables filled/total, rows, rows/s of
the generated load (COPY phase), the ratio raw/generated where raw is a server-side ``COPY ... FROM
'file'`` of the rows the generator made, into a second database with the same schema, in the same run
and under the same session settings (goal >= 0.7), peak RSS, rows that could not be made, FK
violations, and what the dump needed left out. The corpus is read from ../shared/corpus (never copied).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synap_verify.catalog import read_catalog, user_schemas  # noqa: E402
from synap_verify.datagen import fill, fk_violations  # noqa: E402
from synap_verify.datagen.schema import load_schema_file  # noqa: E402
from synap_verify.resources import LEGACY_SCHEMA  # noqa: E402
from synap_verify.server import Server, embedded, system  # noqa: E402

CORPUS = next((p for p in (ROOT.parent / "shared" / "corpus", ROOT.parent.parent / "shared" / "corpus") if p.is_dir()),
              ROOT.parent / "shared" / "corpus")
# name -> (schema file, backend it needs, skip what the server lacks)
SCHEMAS: dict[str, tuple[Path, str, bool]] = {
    "fixture": (LEGACY_SCHEMA, "embedded", False),
    "foreign": (ROOT / "tests" / "data" / "foreign_schema.sql", "embedded", False),
    "lago-api": (CORPUS / "lago-api" / "structure.sql", "embedded", True),  # pg_partman, pgcrypto: not in the wheel
    "danbooru": (CORPUS / "danbooru" / "structure.sql", "system", False),  # pgcrypto: system PostgreSQL 15
    "openstreetmap-website": (CORPUS / "openstreetmap-website" / "structure.sql", "embedded", True),  # postgis
}


def measure(name: str, scale: str, seed: int) -> dict[str, object]:
    path, backend, skip = SCHEMAS[name]
    server = (system if backend == "system" else embedded).start()
    try:
        admin = server.connect()
        left: list[object] = []
        for db in ("gen", "raw"):
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
            left = list(load_schema_file(server.dsn(db), path, skip_missing=skip))
        with server.connect("gen") as conn:
            catalog = read_catalog(conn, user_schemas(conn))
        report = fill(server.dsn("gen"), catalog, scale, seed)
        raw = _raw_copy(server, list(report.rows), catalog)
        with server.connect("gen") as conn:
            violations = fk_violations(conn, catalog)
        roots = [t for t in catalog.tables.values() if t.partition_of is None]
        return {
            "schema": name, "backend": f"{backend} {server.version()}", "left_out": len(left),
            "tables": f"{sum(1 for t in roots if report.rows.get(t.name))}/{len(roots)}",
            "rows": report.total_rows, "rows_per_s": round(report.total_rows / report.copy_seconds),
            "ratio": round(raw / report.copy_seconds, 2), "seconds": round(report.seconds, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "unmade": report.unmade, "fk_violations": len(violations), "fallback_tables": len(report.fallback),
        }
    finally:
        server.stop()


def _raw_copy(server: Server, order: list[str], catalog: object) -> float:
    """Seconds for a server-side COPY FROM file of the generated rows, table by table in the same order."""
    tables = catalog.tables  # type: ignore[attr-defined]
    folder = Path(tempfile.mkdtemp(prefix="synap-bench-"))
    os.chmod(folder, 0o777)  # the server (another OS user) writes and reads the files
    columns = "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute " \
              "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
    lists = {}
    with server.connect("gen") as conn:
        for name in order:
            t = tables[name]
            qualified = sql.Identifier(t.schema, name).as_string(conn)
            lists[name] = conn.execute(columns, [qualified]).fetchone()[0]  # type: ignore[index]
            conn.execute(sql.SQL("COPY (SELECT {c} FROM {t}) TO {f}").format(
                c=sql.SQL(lists[name]), t=sql.Identifier(t.schema, name), f=sql.Literal(str(folder / name))))
    try:
        with server.connect("raw") as conn:
            conn.execute("SET session_replication_role = replica")  # as the generated load does
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(  # rows the dump itself inserts
                sql.Identifier(tables[n].schema, n) for n in order)))
            began = time.perf_counter()
            for name in order:
                t = tables[name]
                conn.execute(sql.SQL("COPY {t} ({c}) FROM {f}").format(
                    t=sql.Identifier(t.schema, name), c=sql.SQL(lists[name]), f=sql.Literal(str(folder / name))))
            return time.perf_counter() - began
    finally:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=("tiny", "small", "prod"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", default=",".join(SCHEMAS), help="comma-separated schema names")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process measuring one schema
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.scale, args.seed)))
        return
    header = ["schema", "backend", "tables", "rows", "rows_per_s", "ratio", "seconds", "peak_rss_mb", "unmade",
              "fk_violations", "fallback_tables", "left_out"]
    print(" | ".join(header))
    for name in args.only.split(","):
        if not SCHEMAS[name][0].is_file():
            print(f"{name} | skipped: {SCHEMAS[name][0]} is absent")
            continue
        done = subprocess.run([sys.executable, __file__, "--one", name, "--scale", args.scale, "--seed", str(args.seed)],
                              capture_output=True, text=True)
        if done.returncode:
            print(f"{name} | failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(" | ".join(f"{row[h]:,}" if isinstance(row[h], int) else str(row[h]) for h in header), flush=True)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}: other work on this machine skews rows/s and the ratio")


if __name__ == "__main__":
    main()
