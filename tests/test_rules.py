"""The rule registry: every id a check reports is registered, documented, and caught by a seeded defect.

``SEEDS`` is the test side of the registry (sqlfluff's ``std_rule_cases`` idea): for each rule id, the
tests that seed a defect and assert the rule reports it. A new rule without a seeded test fails here
until it gets one (or an entry, with the reason, in ``UNSEEDED``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from synap_verify.contract.model import RULE_IDS
from synap_verify.errors import SynapError
from synap_verify.findings import Finding
from synap_verify.ruledocs import render_doc, stale_docs
from synap_verify.rules import FAMILIES, RULES, UnknownRule, family

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

_CONTRACT = ("test_contract.py::test_each_seeded_defect_is_reported_alone",)
_RLS = ("test_rls.py::test_seeded_defect_is_caught",)
_LEGACY_RLS = ("test_rls.py::test_legacy_schema_defects_are_found",)
_MIGRATION = ("test_integrity.py::test_seeded_defect_fails_the_suite",)
_PREFLIGHT = ("test_integrity.py::test_preflight_reports_the_legacy_fixture",)
_BASELINE = ("test_load.py::test_each_baseline_threshold_is_its_own_finding",)
_VERDICT = ("test_load.py::test_each_migration_verdict_is_its_own_finding",)

# rule id -> the tests (file under tests/ :: function) that seed a defect and assert the rule reports it
SEEDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("G1", "G2", "G3", "G4", "G6", "G7", "G8", "G9", "T-MISSING", "T-RENAME", "T-COLUMN", "T-TYPE",
                     "T-NULL", "T-DROP", "T-FK", "T-CHECK", "T-INDEX"), _CONTRACT),
    "G5": (*_CONTRACT, "test_contract.py::test_an_application_role_that_bypasses_rls_is_reported_per_tenant_table",
           "test_rls.py::test_contract_and_rls_judge_the_same_policies_alike"),
    **dict.fromkeys(("RLS002", "RLS007", "RLS008", "RLS010", "RLS011", "RLS012"), _RLS),
    **dict.fromkeys(("RLS001", "RLS003", "RLS009", "RLS013"), _LEGACY_RLS),
    **dict.fromkeys(("RLS004", "RLS005"), (*_RLS, "test_rls.py::test_contract_and_rls_judge_the_same_policies_alike")),
    "RLS006": (*_RLS, "test_rls.py::test_policy_on_another_setting_passes_once_configured",
               "test_rls.py::test_contract_and_rls_judge_the_same_policies_alike"),
    **dict.fromkeys(("PROBE-SELECT", "PROBE-UPDATE", "PROBE-DELETE", "PROBE-INSERT", "PROBE-NOCTX", "PROBE-LOCAL",
                     "PROBE-DRIFT", "PROBE-VIEW", "PROBE-FUNC"), _RLS),
    "PROBE-MOVE": _LEGACY_RLS,
    **dict.fromkeys(("EQ-ROWS", "EQ-VALUE", "EQ-MOVED", "EQ-COLUMN"), _MIGRATION),
    "EQ-TABLE": ("test_integrity.py::test_equivalence_reports_a_table_gone_without_archive",),
    "EQ-ERROR": ("test_integrity.py::test_equivalence_reports_a_comparison_that_cannot_run",),
    **dict.fromkeys(("PF-JSONB", "PF-DUPKEYS", "PF-NULL", "PF-DRIFT", "PF-PERMISSION", "PF-COUNTER"), _PREFLIGHT),
    "PF-TENANT": ("test_integrity.py::test_preflight_reports_a_null_tenant",),
    **dict.fromkeys(("BENCH-PLAN", "BENCH-BUFFERS"), ("test_bench.py::test_forgotten_gin_index_fails",)),
    "BENCH-TIME": ("test_bench.py::test_injected_slowdown_is_detected",),
    "BENCH-ROWS": ("test_bench.py::test_different_rows_are_caught",),
    "BENCH-ERROR": ("test_bench.py::test_a_query_that_cannot_run_is_an_error_not_a_pass",),
    **dict.fromkeys(("LOAD-P95", "LOAD-FAILURES", "LOAD-THROUGHPUT"), _BASELINE),
    "LOAD-P99": (*_BASELINE, "test_load.py::test_baseline_fails_a_threshold_on_purpose"),
    **dict.fromkeys(("LOAD-NO-TRAFFIC", "LOAD-P99-DURING", "LOAD-STEP-FAILED", "LOAD-SAMPLER"), _VERDICT),
    "PLAN-MANUAL": ("test_plan.py::test_legacy_fixture_plans_the_reference_declarations",
                    "test_plan.py::test_plan_command_dry_run_states_sql_lock_and_rows"),
    "G8-COUNT": ("test_counters.py::test_an_off_by_one_on_every_counter_is_caught",),
    "G8-COUNT-UNCHECKED": ("test_counters.py::test_a_counter_whose_rows_cannot_be_found_is_unchecked",),
    "LOAD-RATE": ("test_load.py::test_an_unreachable_rate_is_flagged",),
    "LOAD-STEP-BLOCKING": (*_VERDICT, "test_load.py::test_seeded_unsafe_step_is_flagged"),
    "LOAD-FAILED-REQUESTS": (*_VERDICT, "test_load.py::test_prepared_statements_across_a_type_change_are_counted"),
}

# Registered rules with no seeded-defect test yet, each with the reason. Printed by the test below.
UNSEEDED: dict[str, str] = {}


def test_an_unregistered_id_fails_where_the_finding_is_made() -> None:
    with pytest.raises(UnknownRule, match=r"'EQ-ROW' is not registered: add a Rule to synap_verify/rules.py"):
        Finding("EQ-ROW", "analytics", "analytics_events", "3 rows lost")
    Finding("EQ-ROWS", "analytics", "analytics_events", "3 rows lost")  # a registered id constructs


def test_the_registry_is_well_formed() -> None:
    assert len(RULES) == sum(len(family(f)) for f in FAMILIES), "a rule id registered twice, or in no family"
    for r in RULES.values():
        assert r.family in FAMILIES and r.when and r.why and r.fix, r
        assert not r.params or r.family == "contract", f"{r.id}: only contract rules take contract parameters"
    assert all(family(f) for f in FAMILIES), "a family with no rule"
    assert RULE_IDS == ("G1", "G2", "G3", "G4", "G5", "G6", "G7", "G8", "G9")


def _literal_ids(path: Path) -> set[str]:
    """Rule ids passed as a literal first argument to ``Finding(...)`` or a local ``add(...)`` helper."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Finding", "add") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.add(node.args[0].value)
    return found


def test_every_literal_id_in_the_checks_is_registered() -> None:
    """Statically, so a branch no test reaches cannot hide a typo until production."""
    used = {(p.relative_to(ROOT).as_posix(), i) for p in (ROOT / "synap_verify").rglob("*.py") for i in _literal_ids(p)}
    assert len(used) > 50
    assert {(p, i) for p, i in used if i not in RULES} == set()


def test_the_docs_rule_tables_are_generated_from_the_registry() -> None:
    assert stale_docs(ROOT / "docs") == [], "rule tables out of date: run python -m synap_verify.ruledocs"


def test_every_rule_has_its_doc_entry() -> None:
    for r in RULES.values():
        path, anchor = r.doc.split("#")
        assert f'<a id="{anchor}"></a>`{r.id}`' in (ROOT / path).read_text(), f"{r.id}: no entry in {path}"


def test_a_doc_without_its_tables_place_is_an_error() -> None:
    with pytest.raises(SynapError, match=r"docs/rls.md has no block for the rls rules"):
        render_doc("# RLS\n", "rls.md")


def _functions_and_literals(path: Path) -> tuple[set[str], set[str]]:
    """The module-level test functions of a test file, and the strings of it and of the tests/ modules it imports."""
    tree = ast.parse(path.read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    sources = [tree]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            local = [TESTS / f"{node.module}.py", TESTS / node.module / "__init__.py"]
            sources += [ast.parse(p.read_text()) for p in local if p.exists()]
    literals = {n.value for t in sources for n in ast.walk(t) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return functions, literals


def test_every_rule_has_a_seeded_defect_test() -> None:
    assert set(SEEDS) <= set(RULES), f"seeds for unregistered ids: {set(SEEDS) - set(RULES)}"
    assert set(SEEDS).isdisjoint(UNSEEDED), f"seeded now, drop from UNSEEDED: {set(SEEDS) & set(UNSEEDED)}"
    missing = set(RULES) - set(SEEDS) - set(UNSEEDED)
    assert not missing, f"rules with no seeded-defect test (add one and list it in SEEDS): {sorted(missing)}"
    for rule_id, tests in SEEDS.items():
        for test in tests:
            file, function = test.split("::")
            functions, literals = _functions_and_literals(TESTS / file)
            assert function in functions, f"{rule_id}: {test} does not exist"
            assert rule_id in literals, f"{rule_id}: {file} never names the rule, so {function} cannot assert it"
    print(f"\nseeded: {len(SEEDS)} of {len(RULES)} rules; not seeded yet: {len(UNSEEDED)}")
    for rule_id, why in UNSEEDED.items():
        print(f"  {rule_id}: {why}")
