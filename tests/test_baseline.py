"""Bring your own baseline: the legacy state taken from a live database instead of our schema file."""

from __future__ import annotations

import pytest

from synap_verify.datagen.schema import load_schema_file
from synap_verify.pipeline import LEGACY_SCHEMA
from synap_verify.server import Server

COUNTS_TABLES = """
def test_filled_from_the_dumped_schema(synap_legacy_db):
    catalog = synap_legacy_db.catalog()
    assert len(catalog.tables) == 117
    with synap_legacy_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM synapscale_db.workspaces").fetchone()[0] > 0
"""


def test_baseline_from_a_live_dsn_is_dumped_loaded_and_filled(pytester: pytest.Pytester, pg: Server) -> None:
    with pg.connect() as conn:
        conn.execute("DROP DATABASE IF EXISTS staging_copy")
        conn.execute("CREATE DATABASE staging_copy")
    load_schema_file(pg.dsn("staging_copy"), LEGACY_SCHEMA)
    pytester.makepyfile(test_it=COUNTS_TABLES)
    result = pytester.runpytest_subprocess("test_it.py", "-p", "no:cacheprovider", "--synap-scale=tiny",
                                           f"--synap-baseline={pg.dsn('staging_copy')}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*taking the baseline schema from postgres@*/staging_copy (pg_dump --schema-only)*"])


def test_unreachable_baseline_dsn_is_one_line_without_password(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_it=COUNTS_TABLES)
    result = pytester.runpytest_subprocess("test_it.py", "-p", "no:cacheprovider",
                                           "--synap-baseline=postgresql://ops:T0pS3cret@127.0.0.1:9/prod")
    out = result.stdout.str() + result.stderr.str()
    assert "cannot dump the baseline schema of ops@127.0.0.1:9/prod" in out
    assert "T0pS3cret" not in out
