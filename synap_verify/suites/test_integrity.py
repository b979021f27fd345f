"""Nothing lost: every legacy table compared with its migrated self, one item per (group, table); then rollback.

The comparison is the one ``synap-verify equivalence`` runs (docs/equivalence.md): per-bucket row
hashes in each database, narrowed down to keys and columns where they differ, under the contract's
mapping. Differences the migration accounted for (quarantined originals, journaled moves, recounted
counters) pass; anything else names the table, the column and the first keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from synap_verify import migrate
from synap_verify.contract import Contract, load_contract
from synap_verify.findings import Finding, render_text
from synap_verify.integrity import counters, equivalence
from synap_verify.pipeline import Pipeline
from synap_verify.server.templates import Database
from synap_verify.settings import Settings
from synap_verify.stash import SETTINGS, record

BACKUP_TABLES = "backup_*"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One item per (group, table) of the contract, marked with its group so ``--synap-group`` selects it;
    one per counted counter (group, table.column) for the G8 data check."""
    contract = load_contract(metafunc.config.stash[SETTINGS].contract)
    if "counter" in metafunc.fixturenames:
        _by_group(metafunc, "counter", [(spec.group, f"{spec.name}.{c.column}") for spec in contract.tables.values()
                                        for c in spec.counters.values() if c.source])
    if "table" in metafunc.fixturenames:
        _by_group(metafunc, "table", [*((spec.group, spec.name) for spec in contract.tables.values()),
                                      (contract.rules.backup_group, BACKUP_TABLES)])


def _by_group(metafunc: pytest.Metafunc, name: str, pairs: list[tuple[str, str]]) -> None:
    metafunc.parametrize(("group", name), [pytest.param(g, x, marks=pytest.mark.synap_group(g), id=f"{g}-{x}")
                                           for g, x in pairs])


@dataclass
class Comparison:
    """Both databases open once per module, the plan made once; items compare their table's relations."""

    before: psycopg.Connection
    after: psycopg.Connection
    relations: list[equivalence.Relation]
    plan_findings: list[Finding]
    expected: equivalence.Expectations
    counters: list[Finding]  # the G8 data check on the migrated database
    scanned: list[equivalence.Scan]  # every relation's bucket sums, taken in parallel up front

    def check(self, table: str, backup_group: str) -> list[Finding]:
        def mine(name: str, group: str) -> bool:
            return name == table or table == BACKUP_TABLES and group == backup_group

        found = [f for f in self.plan_findings if mine(f.table, f.group)]
        for relation, sides in zip(self.relations, self.scanned, strict=True):
            if mine(relation.table, relation.group):
                found += equivalence.compare(self.before, self.after, relation, self.expected, scanned=sides).findings
        return found


@pytest.fixture(scope="module")
def contract(synap_settings: Settings) -> Contract:
    return load_contract(synap_settings.contract)


@pytest.fixture(scope="module")
def comparison(synap_legacy_db: Database, synap_migrated_db: Database, contract: Contract,
               synap_settings: Settings) -> Iterator[Comparison]:
    with equivalence.connect(synap_legacy_db.dsn) as before, equivalence.connect(synap_migrated_db.dsn) as after:
        relations, findings, expected, counted = equivalence.prepare(
            after, synap_legacy_db.catalog(), synap_migrated_db.catalog(), contract, synap_settings.groups)
        scanned = equivalence.scan(synap_legacy_db.dsn, synap_migrated_db.dsn, relations)
        yield Comparison(before, after, relations, findings, expected, counted, scanned)


def test_nothing_lost(comparison: Comparison, contract: Contract, group: str, table: str,
                      pytestconfig: pytest.Config) -> None:
    """Every legacy row and value of the table is in the migrated database with the same meaning, or accounted for."""
    findings = comparison.check(table, contract.rules.backup_group)
    record(pytestconfig, "nothing-lost", findings)
    assert not findings, f"{group}/{table}: data lost or altered by the migration:\n" + render_text(findings)


def test_counter_equals_its_rows(comparison: Comparison, contract: Contract, synap_settings: Settings, group: str,
                                 counter: str, pytestconfig: pytest.Config) -> None:
    """G8 in the data: the migrated counter equals its aggregate over the rows it counts, on every row."""
    table, column = counter.split(".")
    if why := counters.judged_apart(contract, table, column, synap_settings.groups):
        pytest.skip(why)
    findings = [f for f in comparison.counters if (f.table, f.column) == (table, column)]
    record(pytestconfig, "nothing-lost", findings)
    assert not findings, f"{group}/{counter}: the counter disagrees with its rows:\n" + render_text(findings)


def test_rollback_restores_legacy_data(synap_pipeline: Pipeline, synap_legacy_db: Database, contract: Contract,
                                       synap_settings: Settings, pytestconfig: pytest.Config) -> None:
    """Downgrade to base on a migrated database gives back the legacy data: a rollback that loses rows is no plan."""
    if not synap_pipeline.server.disposable:
        pytest.skip("needs a disposable server (pass --synap-dsn-disposable)")
    db = synap_pipeline.clone("migrated")
    try:
        with equivalence.connect(db.dsn) as conn:
            expected = equivalence.Expectations.load(conn)  # the downgrade drops the audit tables
        migrate.downgrade(db.dsn, synap_settings.alembic, "base")
        report = equivalence.run(synap_legacy_db.dsn, db.dsn, contract, synap_settings.groups, rollback=True,
                                 expected=expected)
    finally:
        db.drop()
    record(pytestconfig, "nothing-lost", report.findings)
    assert not report.findings, "downgrade to base did not restore the legacy data:\n" + render_text(report.findings)
