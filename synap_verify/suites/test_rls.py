"""Row-level security (G5, G7): one item per (table, probe) on the migrated database, which must be clean,
and one on the legacy database, whose known RLS defects must be found (and leak, live).

Lints and probes run once per module; items only look up their table's findings. The matrix of each
run is left in ``config.stash[synap_verify.stash.RLS_REPORTS]`` for the terminal summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from synap_verify.findings import render_text
from synap_verify.groups import GROUPS
from synap_verify.rls import RlsResult, RlsSetup, check, setup
from synap_verify.rls.probes import LEAK, NA, TABLE_PROBES
from synap_verify.settings import Settings
from synap_verify.stash import RLS_REPORTS, SETTINGS

if TYPE_CHECKING:
    from synap_verify.server.templates import Database

LINT = "lint"
GLOBAL_ITEMS = ("app-role", "views", "functions", "unlisted-tables")
RLS_SETUP = pytest.StashKey[RlsSetup]()
LEGACY_LEAKS = ("workspace_projects", "analytics_events", "llms_messages")  # RLS off: every tenant's rows leak
LEGACY_CLOSED = "invoices"  # RLS on without a policy: fails closed


def _setup(config: pytest.Config) -> RlsSetup:
    if RLS_SETUP not in config.stash:
        settings = config.stash[SETTINGS]
        config.stash[RLS_SETUP] = setup(settings.contract, settings.tenant_settings)
    return config.stash[RLS_SETUP]


def _probed(config: pytest.Config, *also: str) -> set[str] | None:
    """The tables this run's items report on (and ``also``), or None: every tenant table."""
    probed = _setup(config).probed(config.stash[SETTINGS].groups)
    return None if probed is None else probed | set(also)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize at collection, so ``-k`` and ``--synap-group`` see every (table, probe)."""
    if "rls_item" not in metafunc.fixturenames:
        return
    rls = _setup(metafunc.config)
    params = []
    for table, group in rls.tables.items():
        probes = (LINT, *TABLE_PROBES) if table in rls.tenant_tables else (LINT,)
        params += [pytest.param((table, probe), id=f"{group}-{table}-{probe}", marks=pytest.mark.synap_group(group))
                   for probe in probes]
    metafunc.parametrize("rls_item", params)


@pytest.fixture(scope="module")
def migrated_rls(synap_migrated_db: Database, pytestconfig: pytest.Config) -> RlsResult:
    """Lints and probes of the migrated database, once (writing probes only on a disposable server)."""
    rls = _setup(pytestconfig)
    result = check(synap_migrated_db, rls.config, rls.groups, _probed(pytestconfig))
    pytestconfig.stash.setdefault(RLS_REPORTS, {})["migrated"] = result
    return result


def test_rls(rls_item: tuple[str, str], migrated_rls: RlsResult) -> None:
    table, probe = rls_item
    if probe == LINT:
        found = [f for f in migrated_rls.lints if f.table == table]
    else:
        status = migrated_rls.probes.status(table, probe)
        found = migrated_rls.probes.findings_for(table, probe)
        if status == NA and not found:
            notes = [n for n in migrated_rls.probes.notes if n.startswith(f"{table}:")]
            pytest.skip(notes[0] if notes else f"{probe} does not apply to {table}")
    if found:
        pytest.fail(f"{len(found)} RLS finding(s) for {table} ({probe}):\n{render_text(found)}", pytrace=False)


@pytest.mark.parametrize("scope", GLOBAL_ITEMS)
def test_rls_outside_tables(scope: str, migrated_rls: RlsResult, pytestconfig: pytest.Config) -> None:
    """The application role itself, views, SECURITY DEFINER functions, and tenant tables the contract omits."""
    if scope == "unlisted-tables" and pytestconfig.stash[SETTINGS].groups != GROUPS:
        pytest.skip("tables outside the contract are judged only when every group is migrated")
    known = set(_setup(pytestconfig).tables)
    selectors = {
        "app-role": lambda f: f.table == "-",
        "views": lambda f: f.rule in ("RLS010", "PROBE-VIEW"),
        "functions": lambda f: f.rule in ("RLS011", "PROBE-FUNC") or f.table.endswith(")"),
        "unlisted-tables": lambda f: f.table not in known and f.table != "-" and not f.table.endswith(")")
        and f.rule not in ("RLS010", "PROBE-VIEW"),
    }
    found = [f for f in migrated_rls.findings if selectors[scope](f)]
    if found:
        pytest.fail(f"{len(found)} RLS finding(s) ({scope}):\n{render_text(found)}", pytrace=False)


def test_legacy_rls_defects_are_found(synap_legacy_db: Database, synap_settings: Settings,
                                      pytestconfig: pytest.Config) -> None:
    """The legacy schema has RLS on three tables only, two more with no policy: lints and live leaks show it."""
    if synap_settings.baseline is not None:
        pytest.skip("the expected RLS defects describe the bundled legacy schema")
    rls = _setup(pytestconfig)
    result = check(synap_legacy_db, rls.config, rls.groups, _probed(pytestconfig, *LEGACY_LEAKS, LEGACY_CLOSED))
    pytestconfig.stash.setdefault(RLS_REPORTS, {})["legacy"] = result
    rules = {f.rule for f in result.findings}
    missing = {"RLS001", "RLS002", "RLS003", "RLS005", "RLS008", "RLS009"} - rules
    assert not missing, f"legacy RLS defects not reported: {sorted(missing)}"
    leaks = {f.table for f in result.probes.findings if f.actual == LEAK and f.rule == "PROBE-SELECT"}
    assert set(LEGACY_LEAKS) <= leaks, sorted(leaks)
    assert result.probes.status(LEGACY_CLOSED, "SELECT") != LEAK
