"""The restructure contract: one item per (group, table) on the migrated database, which must be clean,
and one on the legacy database, which must be broken exactly where the specification says.

The catalog is read once per module; items only look up their table's findings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from synap_verify.contract import Contract, check, load_contract
from synap_verify.contract.expected import differences, load_expected
from synap_verify.errors import SynapError
from synap_verify.findings import Finding, render_text
from synap_verify.groups import GROUPS
from synap_verify.resources import EXPECTED_LEGACY
from synap_verify.settings import Settings
from synap_verify.stash import SETTINGS, record

if TYPE_CHECKING:
    from synap_verify.pipeline import Pipeline
    from synap_verify.server.templates import Database

BACKUP_ITEM = "backup_*"  # G9 findings name tables the contract does not list
CONTRACT = pytest.StashKey[Contract]()


def _contract(config: pytest.Config) -> Contract:
    if CONTRACT not in config.stash:
        try:
            config.stash[CONTRACT] = load_contract(config.stash[SETTINGS].contract)
        except SynapError as exc:
            pytest.exit(f"synap-verify: {exc}", returncode=2)
    return config.stash[CONTRACT]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize at collection from the contract file, so ``-k`` and ``--synap-group`` see every table."""
    if "contract_table" not in metafunc.fixturenames:
        return
    contract = _contract(metafunc.config)
    params = [pytest.param(t.name, id=f"{t.group}-{t.name}", marks=pytest.mark.synap_group(t.group))
              for t in contract.tables.values()]
    if "G9" in contract.rules.enabled:
        group = contract.rules.backup_group
        params.append(pytest.param(BACKUP_ITEM, id=f"{group}-{BACKUP_ITEM}", marks=pytest.mark.synap_group(group)))
    metafunc.parametrize("contract_table", params)


@pytest.fixture(scope="module")
def migrated_findings(synap_migrated_db: Database, synap_settings: Settings, synap_pipeline: Pipeline,
                      pytestconfig: pytest.Config) -> dict[str, list[Finding]]:
    """Every finding on the migrated database, by table, from one catalog read. A subset of the groups stops
    before the contract phase, where the old columns the expand keeps in sync are expected."""
    contract = _contract(pytestconfig)
    findings = check(synap_migrated_db.catalog(contract.schemas), contract, synap_settings.groups,
                     expanded=synap_pipeline.stops_before_the_contract())
    record(pytestconfig, "contract", findings)
    by_table: dict[str, list[Finding]] = {}
    for f in findings:
        by_table.setdefault(BACKUP_ITEM if f.rule == "G9" else f.table, []).append(f)
    return by_table


def test_contract(contract_table: str, migrated_findings: dict[str, list[Finding]]) -> None:
    found = migrated_findings.get(contract_table, [])
    if found:
        pytest.fail(f"{len(found)} contract finding(s) for {contract_table}:\n{render_text(found)}", pytrace=False)


def test_legacy_is_broken_where_the_spec_says(synap_legacy_db: Database, synap_settings: Settings,
                                              pytestconfig: pytest.Config) -> None:
    if synap_settings.contract != Settings.contract or synap_settings.baseline is not None:
        pytest.skip("the expected legacy findings describe the bundled contract and legacy schema")
    contract = _contract(pytestconfig)
    findings = check(synap_legacy_db.catalog(contract.schemas), contract, GROUPS)
    problems = differences(findings, load_expected(EXPECTED_LEGACY))
    if problems:
        pytest.fail("legacy findings differ from fixtures/legacy/expected_findings.yaml:\n" + "\n".join(problems),
                    pytrace=False)
