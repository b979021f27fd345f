"""archive-backups: the backup group on its own lists first, archives only when confirmed, and loses nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from synap_verify.cli import main
from synap_verify.datagen.schema import load_schema_file
from synap_verify.pipeline import LEGACY_SCHEMA
from synap_verify.server import Server


def test_lists_then_archives_and_drops(pg: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pg.connect() as conn:
        conn.execute("DROP DATABASE IF EXISTS archive_check")
        conn.execute("CREATE DATABASE archive_check")
    dsn = pg.dsn("archive_check")
    load_schema_file(dsn, LEGACY_SCHEMA)
    with pg.connect("archive_check") as conn:
        conn.execute("INSERT INTO synapscale_db.backup_users_20240115 (id, email) "
                     "SELECT gen_random_uuid(), 'u' || g || '@example.com' FROM generate_series(1, 25) g")

    assert main(["archive-backups", "--dsn", dsn, "--archive-dir", str(tmp_path)]) == 1
    listed = capsys.readouterr().out
    assert "backup_users_20240115" in listed and "pass --confirm" in listed
    with pg.connect("archive_check") as conn:  # listing changed nothing
        assert conn.execute("SELECT count(*) FROM synapscale_db.backup_users_20240115").fetchone() == (25,)

    assert main(["archive-backups", "--dsn", dsn, "--archive-dir", str(tmp_path), "--confirm"]) == 0
    with pg.connect("archive_check") as conn:
        left = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'synapscale_db' "
                            "AND tablename LIKE 'backup\\_%'").fetchone()
        audit = conn.execute("SELECT row_count, file_path, sha256 FROM synapscale_db.migration_archive "
                             "WHERE table_name = 'backup_users_20240115'").fetchone()
    assert left == (0,)
    assert audit is not None and audit[0] == 25
    assert hashlib.sha256(Path(audit[1]).read_bytes()).hexdigest() == audit[2]
    assert Path(audit[1]).parent == tmp_path.resolve()
