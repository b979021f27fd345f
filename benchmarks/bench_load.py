"""How fast does datagen fill the legacy schema, compared with a raw COPY of the very same rows?

    python benchmarks/bench_load.py --scale small

Fills a fresh database with ``datagen.fill``, dumps every table to a file (COPY TO), then times a
server-side ``COPY ... FROM 'file'`` of those files into a second fresh database with the same schema,
table by table in the same order and under the same session settings. The ratio raw/generated time is
the loader's efficiency (goal: at least 0.7).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synap_verify.catalog import read_catalog  # noqa: E402
from synap_verify.datagen import fill  # noqa: E402
from synap_verify.datagen.schema import load_schema_file  # noqa: E402
from synap_verify.resources import LEGACY_SCHEMA  # noqa: E402
from synap_verify.server import embedded  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=("tiny", "small", "prod"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--schema", type=Path, default=LEGACY_SCHEMA)
    parser.add_argument("--schemas", default="synapscale_db", help="comma-separated schemas to fill")
    args = parser.parse_args()
    schemas = args.schemas.split(",")

    server = embedded.start()
    try:
        admin = server.connect()
        for db in ("gen", "raw"):
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
            load_schema_file(server.dsn(db), args.schema)
        with server.connect("gen") as conn:
            catalog = read_catalog(conn, schemas)

        report = fill(server.dsn("gen"), catalog, args.scale, args.seed)
        rows, mb = report.total_rows, report.bytes / 1e6
        print(f"scale={args.scale} tables={len(report.rows)} rows={rows:,} copy_text={mb:.1f} MB")
        print(f"generated load (COPY phase): {report.copy_seconds:.2f} s  {rows / report.copy_seconds:,.0f} rows/s  "
              f"{mb / report.copy_seconds:.1f} MB/s")
        print(f"whole fill (+ scenarios, sequences, VACUUM ANALYZE): {report.seconds:.2f} s")

        folder = Path(tempfile.mkdtemp(prefix="synap-bench-"))
        os.chmod(folder, 0o777)  # the server (another OS user) writes and reads the files
        order = list(report.rows)
        with server.connect("gen") as conn:
            for name in order:
                t = catalog.tables[name]
                conn.execute(sql.SQL("COPY {} TO {}").format(sql.Identifier(t.schema, name),
                                                             sql.Literal(str(folder / f"{name}.copy"))))
        with server.connect("raw") as conn:
            conn.execute("SET session_replication_role = replica")  # as the generated load does
            began = time.perf_counter()
            for name in order:
                t = catalog.tables[name]
                conn.execute(sql.SQL("COPY {} FROM {}").format(sql.Identifier(t.schema, name),
                                                               sql.Literal(str(folder / f"{name}.copy"))))
            raw = time.perf_counter() - began
        size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
        print(f"raw COPY FROM file of the same rows: {raw:.2f} s  {rows / raw:,.0f} rows/s  {size / raw:.1f} MB/s")
        print(f"ratio raw/generated: {raw / report.copy_seconds:.2f}  (goal >= 0.7); without the "
              f"{report.plan_seconds:.2f} s of planning: {raw / (report.copy_seconds - report.plan_seconds):.2f}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak:.0f} MB")
        print(f"load average (1, 5, 15 min): {os.getloadavg()}: other work on this machine skews the ratio")
        if report.notes:
            print("notes:\n  " + "\n  ".join(report.notes))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
