"""G8 in the data: every counter of the contract equals its aggregate after migration.

On a real migrated database (tiny scale): quiet on the clean state; an off-by-one seeded on every
counter of the contract, one row each, with triggers disabled as a faulty backfill would run, is
caught counter by counter; and the equivalence no longer excuses a recounted counter whose new value
is not its aggregate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from synap_verify import cli
from synap_verify.catalog import read_catalog
from synap_verify.contract import Contract
from synap_verify.findings import render_text
from synap_verify.integrity import counters, equivalence
from synap_verify.pipeline import Pipeline
from synap_verify.server.templates import Database


@pytest.fixture(scope="module")
def migrated(pipeline: Pipeline) -> Iterator[Database]:
    db = pipeline.clone("migrated")
    yield db
    db.drop()


@pytest.fixture
def seeded(pipeline: Pipeline) -> Iterator[Database]:
    db = pipeline.clone("migrated")
    yield db
    db.drop()


def expected_counters(contract: Contract) -> set[tuple[str, str]]:
    return {(s.name, c.column) for s in contract.tables.values() for c in s.counters.values() if c.source}


def test_clean_migrated_database_has_no_counter_finding(migrated: Database, contract: Contract) -> None:
    with equivalence.connect(migrated.dsn) as conn:
        findings, drifts = counters.check(conn, read_catalog(conn), contract)
    assert findings == [], render_text(findings)
    assert {(d.counted.table, d.counted.column) for d in drifts} == expected_counters(contract)  # all measured


def test_a_counter_whose_rows_cannot_be_found_is_unchecked(migrated: Database, contract: Contract) -> None:
    """A ``via:`` naming no column of the source: the counter is reported unchecked, never silently passed."""
    with equivalence.connect(migrated.dsn) as conn:
        catalog = read_catalog(conn)
    assert counters.plan(catalog, contract)[1] == []
    spec = next(s for s in contract.tables.values() if any(c.source for c in s.counters.values()))
    name, counter = next((n, c) for n, c in spec.counters.items() if c.source)
    broken = dataclasses.replace(spec, counters={**spec.counters, name: dataclasses.replace(counter, via="no_such")})
    _, unchecked = counters.plan(catalog, dataclasses.replace(contract, tables={**contract.tables, spec.name: broken}))
    assert [(f.rule, f.table, f.column) for f in unchecked] == [("G8-COUNT-UNCHECKED", spec.name, counter.column)]


def _bump_first_row(conn: psycopg.Connection, table: str, column: str) -> str:
    """One row's counter one higher, written with every trigger off (session_replication_role = replica)."""
    ident = sql.Identifier
    row = conn.execute(sql.SQL("UPDATE synapscale_db.{t} SET {c} = {c} + 1 WHERE id = "
                               "(SELECT min(id::text)::uuid FROM synapscale_db.{t}) RETURNING id::text")
                       .format(t=ident(table), c=ident(column))).fetchone()
    assert row is not None, f"{table} has no row to seed"
    return str(row[0])


def test_an_off_by_one_on_every_counter_is_caught(seeded: Database, contract: Contract) -> None:
    wanted = expected_counters(contract)
    with psycopg.connect(seeded.dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        keys = {(t, c): _bump_first_row(conn, t, c) for t, c in sorted(wanted)}
    with equivalence.connect(seeded.dsn) as conn:
        findings, _ = counters.check(conn, read_catalog(conn), contract)
    assert {(f.table, f.column) for f in findings} == wanted, render_text(findings)
    assert {f.rule for f in findings} == {"G8-COUNT"}
    for f in findings:
        assert "1 rows differ" in f.message and keys[(f.table, f.column or "")] in f.message, f.message


def test_equivalence_reports_the_counter_and_no_longer_excuses_its_recount(pipeline: Pipeline, seeded: Database,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A recounted row (quarantined 'counter_drift') set one off afterwards: the excuse no longer holds."""
    with psycopg.connect(seeded.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT primary_key, original_text::jsonb FROM synapscale_db.migration_quarantine "
                           "WHERE reason = 'counter_drift' AND table_name = 'workspaces' "
                           "AND column_name = 'member_count' LIMIT 1").fetchone()
        assert row is not None, "the tiny legacy data has no drifted member_count to recount"
        key, recount = row
        conn.execute("SET session_replication_role = replica")
        # neither the legacy value nor the recount: a value the migration changed and nothing explains
        conn.execute("UPDATE synapscale_db.workspaces SET member_count = %s WHERE id::text = %s",
                     (max(recount["stored"], recount["counted"]) + 1, key))
    legacy = pipeline.clone("legacy")
    try:
        code = cli.main(["equivalence", "--before", legacy.dsn, "--after", seeded.dsn, "--group", "workspaces"])
    finally:
        legacy.drop()
    out = capsys.readouterr().out
    assert code == 1
    assert f"[{counters.COUNTER_OFF}] workspaces/workspaces: workspaces.member_count: 1 rows differ" in out, out
    assert "[EQ-VALUE] workspaces/workspaces: workspaces.member_count: 1 values changed" in out, out


def test_a_counter_over_rows_of_a_group_not_selected_is_left_to_a_run_with_both(migrated: Database,
                                                                                   contract: Contract) -> None:
    """``--synap-group=workspaces`` migrates ``workspaces`` but not ``files`` (group other), whose revision recounts
    ``storage_used_mb``: judging it there reported the legacy drift as a defect of the run (400 rows at small)."""
    with psycopg.connect(migrated.dsn) as conn:
        catalog = read_catalog(conn)
    alone = {(c.table, c.column) for c in counters.plan(catalog, contract, ["workspaces"])[0]}
    both = {(c.table, c.column) for c in counters.plan(catalog, contract, ["workspaces", "other"])[0]}
    assert ("workspaces", "member_count") in alone and ("workspaces", "storage_used_mb") not in alone
    assert ("workspaces", "storage_used_mb") in both
    assert counters.judged_apart(contract, "workspaces", "storage_used_mb", ["workspaces"]) == (
        "workspaces.storage_used_mb counts files of group other, which this run does not migrate: judged when both "
        "groups run")
    assert counters.judged_apart(contract, "workspaces", "storage_used_mb", ["workspaces", "other"]) is None
