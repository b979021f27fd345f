"""``synap-verify archive-backups``: the backup group's archiving on its own, before (or without) the rest.

It runs exactly the reference restructure's ``backup`` branch (``foundation`` + ``backup``) through
Alembic, so the standalone script and the migration are one piece of code: each ``backup_*`` table is
dumped with ``pg_dump -Fc`` into the archive folder, checksummed, read back, recorded in
``migration_archive`` and only then dropped. Without ``--confirm`` it only lists what it would archive.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import psycopg

from synap_verify import migrate
from synap_verify.groups import SCHEMA
from synap_verify.server import redact
from synap_verify.server.dsn import connect_check
from synap_verify.settings import Settings

BACKUP_BRANCH = "backup"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", required=True, help="the database holding the backup_* tables")
    parser.add_argument("--archive-dir", type=Path, default=Path("archive"), help="where the dumps go (default: ./archive)")
    parser.add_argument("--alembic", type=Path, default=Settings.alembic, help="migrations folder (default: the reference)")
    parser.add_argument("--confirm", action="store_true", help="archive and DROP the tables (default: only list them)")


def run(args: argparse.Namespace) -> int:
    connect_check(args.dsn)
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT c.relname, c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname LIKE 'backup\\_%%' ORDER BY 1", (SCHEMA,)
        ).fetchall()
    if not tables:
        print(f"no backup_* tables in {redact(args.dsn)}: nothing to archive")
        return 0
    for name, estimate in tables:
        print(f"{name:<45} ~{max(estimate, 0):>10,} rows -> {args.archive_dir / name}.dump")
    if not args.confirm:
        print(f"{len(tables)} tables listed; pass --confirm to archive them and drop them from {redact(args.dsn)}")
        return 1
    args.archive_dir.mkdir(parents=True, exist_ok=True)
    os.environ["SYNAPSCALE_ARCHIVE_DIR"] = str(args.archive_dir.resolve())
    for step in migrate.upgrade(args.dsn, args.alembic, [BACKUP_BRANCH]):
        print(f"{step.revision}: {step.seconds:.2f}s")
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        for table, rows, sha in conn.execute(
                f"SELECT table_name, row_count, sha256 FROM {SCHEMA}.migration_archive ORDER BY table_name"):
            print(f"archived {table}: {rows:,} rows, sha256 {sha[:16]}…")
    return 0
