"""RLS lints and probes on small schemas built here: a correct one passes, each seeded defect is caught."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from psycopg import sql

from synap_verify import g5
from synap_verify.cli import main
from synap_verify.contract import TableSpec
from synap_verify.contract import check as check_contract
from synap_verify.contract.model import Contract, Rules
from synap_verify.findings import Finding, render_text
from synap_verify.resources import LEGACY_SCHEMA
from synap_verify.rls import RlsConfig, RlsResult, TenantContext, check, render_matrix
from synap_verify.rls.probes import LEAK, NOT_COVERED, PASS
from synap_verify.server import Server
from synap_verify.server.templates import Database, drop_database

T1, T2, T3 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222", \
    "33333333-3333-3333-3333-333333333333"
APP = "synapscale_app"

# Two (three) tenants; every tenant table ENABLEd + FORCEd, policies on tenant_id = current_tenant_id().
# workspace_projects uses one policy per command, the others one ALL policy with WITH CHECK;
# workspace_members hangs off workspaces by a plain FK (the drift probe's target), rbac_roles is global.
CORRECT = f"""
DO $$BEGIN CREATE ROLE {APP} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$;
CREATE SCHEMA synapscale_db;
SET search_path = synapscale_db;
CREATE TABLE tenants (id uuid PRIMARY KEY, name text NOT NULL);
CREATE FUNCTION current_tenant_id() RETURNS uuid LANGUAGE sql STABLE
    AS $f$ SELECT NULLIF(current_setting('app.current_tenant_id', true), '')::uuid $f$;
CREATE TABLE workspaces (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL REFERENCES tenants,
    name text NOT NULL, UNIQUE (tenant_id, id));
CREATE TABLE workspace_projects (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL,
    workspace_id uuid NOT NULL, name text NOT NULL,
    FOREIGN KEY (tenant_id, workspace_id) REFERENCES workspaces (tenant_id, id) ON DELETE CASCADE);
CREATE TABLE workspace_members (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL,
    workspace_id uuid NOT NULL REFERENCES workspaces ON DELETE CASCADE, email text NOT NULL);
CREATE TABLE rbac_roles (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid REFERENCES tenants,
    name text NOT NULL);
DO $$DECLARE t text; BEGIN
  FOREACH t IN ARRAY ARRAY['workspaces', 'workspace_members'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I FOR ALL TO {APP} USING (tenant_id = current_tenant_id()) '
                   'WITH CHECK (tenant_id = current_tenant_id())', t || '_tenant', t);
  END LOOP;
END$$;
ALTER TABLE workspace_projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspace_projects FORCE ROW LEVEL SECURITY;
CREATE POLICY p_select ON workspace_projects FOR SELECT TO {APP} USING (tenant_id = current_tenant_id());
CREATE POLICY p_insert ON workspace_projects FOR INSERT TO {APP} WITH CHECK (tenant_id = current_tenant_id());
CREATE POLICY p_update ON workspace_projects FOR UPDATE TO {APP} USING (tenant_id = current_tenant_id())
    WITH CHECK (tenant_id = current_tenant_id());
CREATE POLICY p_delete ON workspace_projects FOR DELETE TO {APP} USING (tenant_id = current_tenant_id());
ALTER TABLE rbac_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE rbac_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY rbac_roles_read ON rbac_roles FOR SELECT TO {APP}
    USING (tenant_id IS NULL OR tenant_id = current_tenant_id());
CREATE POLICY rbac_roles_insert ON rbac_roles FOR INSERT TO {APP} WITH CHECK (tenant_id = current_tenant_id());
CREATE POLICY rbac_roles_update ON rbac_roles FOR UPDATE TO {APP} USING (tenant_id = current_tenant_id())
    WITH CHECK (tenant_id = current_tenant_id());
CREATE POLICY rbac_roles_delete ON rbac_roles FOR DELETE TO {APP} USING (tenant_id = current_tenant_id());
INSERT INTO tenants VALUES ('{T1}', 'one'), ('{T2}', 'two'), ('{T3}', 'three');
INSERT INTO workspaces (tenant_id, name) SELECT t, 'ws' || i FROM unnest(ARRAY['{T1}', '{T2}', '{T3}']::uuid[]) t,
    generate_series(1, 3) i;
INSERT INTO workspace_projects (tenant_id, workspace_id, name) SELECT tenant_id, id, 'p' || i FROM workspaces,
    generate_series(1, 4) i;
INSERT INTO workspace_members (tenant_id, workspace_id, email) SELECT tenant_id, id, 'm' || i || '@x' FROM workspaces,
    generate_series(1, 2) i;
INSERT INTO rbac_roles (tenant_id, name) VALUES (NULL, 'admin'), (NULL, 'viewer'), ('{T1}', 'custom'), ('{T2}', 'custom');
GRANT USAGE ON SCHEMA synapscale_db TO {APP};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA synapscale_db TO {APP};
"""

# name -> (SQL applied on top of CORRECT, config changes, rules that must be reported)
DEFECTS: dict[str, tuple[str, dict[str, object], set[str]]] = {
    "missing DELETE policy": ("DROP POLICY p_delete ON workspace_projects", {}, {"RLS004", "PROBE-DELETE"}),
    "USING (true)": (f"CREATE POLICY open_read ON workspaces FOR SELECT TO {APP} USING (true)", {},
                     {"RLS006", "RLS007", "PROBE-SELECT"}),
    "INSERT policy without WITH CHECK": (
        f"DROP POLICY p_insert ON workspace_projects; CREATE POLICY p_insert ON workspace_projects FOR INSERT TO {APP}",
        {}, {"RLS005", "PROBE-INSERT"}),
    "not forced, app role owns the table": (
        f"ALTER TABLE workspaces NO FORCE ROW LEVEL SECURITY; ALTER TABLE workspaces OWNER TO {APP}", {},
        {"RLS002", "RLS012", "PROBE-SELECT", "PROBE-NOCTX"}),
    "BYPASSRLS app role": (
        "DO $$BEGIN CREATE ROLE synap_test_bypass NOLOGIN BYPASSRLS; EXCEPTION WHEN duplicate_object THEN NULL; END$$;"
        f"GRANT {APP} TO synap_test_bypass; GRANT USAGE ON SCHEMA synapscale_db TO synap_test_bypass;"
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA synapscale_db TO synap_test_bypass",
        {"app_role": "synap_test_bypass"}, {"RLS012", "PROBE-SELECT", "PROBE-UPDATE", "PROBE-NOCTX"}),
    "SECURITY DEFINER function over all tenants": (
        "CREATE FUNCTION all_workspaces() RETURNS SETOF workspaces LANGUAGE sql SECURITY DEFINER "
        "AS 'SELECT * FROM synapscale_db.workspaces'", {}, {"RLS011", "PROBE-FUNC"}),
    "view without security_invoker": (
        f"CREATE VIEW workspace_overview AS SELECT w.id, w.tenant_id, w.name FROM workspaces w;"
        f"GRANT SELECT ON workspace_overview TO {APP}", {}, {"RLS010", "PROBE-VIEW"}),
    "child tenant differs from its parent's": (
        f"UPDATE workspace_members SET tenant_id = '{T2}' WHERE id = (SELECT m.id FROM workspace_members m "
        f"JOIN workspaces w ON w.id = m.workspace_id WHERE w.tenant_id = '{T1}' LIMIT 1)", {}, {"PROBE-DRIFT"}),
    "tenant context set for the session": (
        "SELECT 1", {"context": TenantContext(settings=(), template="SELECT set_config('app.current_tenant_id', "
                                                                      "{tenant}, false)")}, {"PROBE-LOCAL"}),
    "current_setting without missing_ok": (
        f"CREATE POLICY strict_read ON workspace_members AS RESTRICTIVE FOR SELECT TO {APP} "
        "USING (tenant_id = current_setting('app.current_tenant_id')::uuid)", {}, {"RLS008"}),
}

OTHER_SETTING = f"""
DROP POLICY workspaces_tenant ON workspaces;
CREATE POLICY workspaces_tenant ON workspaces FOR ALL TO {APP}
    USING (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::uuid);
"""

_names = itertools.count(1)


@pytest.fixture(scope="module")
def server(pg_factory: Callable[[], Server]) -> Server:
    """A PostgreSQL of this module's own: its tests create roles and change their attributes."""
    return pg_factory()


def make_db(server: Server, *scripts: str) -> Database:
    name = f"synap_rls_test_{next(_names)}"
    drop_database(server, name)
    with server.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with server.connect(name) as conn:
        for script in scripts:
            conn.execute(script)  # type: ignore[arg-type]
    return Database(server, name)


def rules(result: RlsResult) -> set[str]:
    return {f.rule for f in result.findings}


@pytest.fixture(scope="module")
def correct(server: Server) -> RlsResult:
    return check(make_db(server, CORRECT), RlsConfig())


def test_correct_schema_passes_every_lint_and_probe(correct: RlsResult) -> None:
    assert correct.findings == [], render_text(correct.findings)
    matrix = correct.probes.matrix
    assert set(matrix) == {"workspaces", "workspace_projects", "workspace_members", "rbac_roles"}
    for probe in ("SELECT", "UPDATE", "DELETE", "INSERT", "MOVE", "NOCTX", "LOCAL"):
        assert {row[probe] for row in matrix.values()} == {PASS}, (probe, matrix)
    assert matrix["workspace_members"]["DRIFT"] == PASS
    assert correct.probes.role == APP and correct.probes.writes


def test_security_definer_trigger_functions_are_not_probed(server: Server) -> None:
    """Only a trigger can call a trigger function: probing it would only record an error as a pass."""
    trigger = ("CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
               "AS $$ BEGIN RETURN NEW; END $$;")
    result = check(make_db(server, CORRECT, trigger), RlsConfig())
    assert "bump()" not in result.probes.matrix
    assert result.findings == [], render_text(result.findings)


def test_probes_are_fast(correct: RlsResult) -> None:
    print(f"\n{render_matrix(correct.probes, all_rows=True)}")
    assert correct.probes.seconds < 5


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_seeded_defect_is_caught(server: Server, defect: str) -> None:
    script, changes, expected = DEFECTS[defect]
    result = check(make_db(server, CORRECT, script), replace(RlsConfig(), **changes))  # type: ignore[arg-type]
    assert expected <= rules(result), f"{defect}: missing {expected - rules(result)}\n{render_text(result.findings)}"


def test_drift_visible_to_the_childs_own_tenant_can_be_accepted(server: Server) -> None:
    db = make_db(server, CORRECT, DEFECTS["child tenant differs from its parent's"][0])
    assert check(db, RlsConfig(drift_visible_to_child=True)).findings == []


def test_leak_shows_in_the_matrix(server: Server) -> None:
    result = check(make_db(server, CORRECT, DEFECTS["USING (true)"][0]), RlsConfig())
    assert result.probes.matrix["workspaces"]["SELECT"] == LEAK
    assert "workspaces" in render_matrix(result.probes) and "LEAK" in render_matrix(result.probes)


def test_only_the_named_tables_are_probed_and_the_report_says_so(server: Server) -> None:
    """A group run probes its group's tables: their leaks are still found, the others are not probed, and said."""
    db = make_db(server, CORRECT, DEFECTS["USING (true)"][0], DEFECTS["missing DELETE policy"][0])
    result = check(db, RlsConfig(), only={"workspaces"})
    assert set(result.probes.matrix) == {"workspaces"}
    assert result.probes.matrix["workspaces"]["SELECT"] == LEAK
    assert "PROBE-DELETE" not in rules(result) and "RLS004" in rules(result)  # lints still read the whole catalog
    assert "1 objects (1 of 4 tenant tables probed)" in render_matrix(result.probes)
    assert "PROBE-DELETE" in rules(check(db, RlsConfig()))


def test_policy_on_another_setting_passes_once_configured(server: Server) -> None:
    db = make_db(server, CORRECT, OTHER_SETTING)
    default = check(db, RlsConfig())
    assert {"RLS006", "PROBE-SELECT"} <= rules(default)
    assert default.probes.matrix["workspaces"]["SELECT"] == NOT_COVERED
    both = TenantContext(settings=("app.current_tenant_id", "app.current_tenant"))
    assert check(db, RlsConfig(context=both)).findings == []
    template = TenantContext(settings=(), template="SELECT set_config('app.current_tenant', {tenant}, true), "
                                                   "set_config('app.current_tenant_id', {tenant}, true)")
    assert check(db, RlsConfig(context=template)).findings == []


def test_read_only_database_gets_no_writing_probe(server: Server) -> None:
    db = make_db(server, CORRECT)
    read_only = Database(replace(server, disposable=False), db.name)
    result = check(read_only, RlsConfig())
    assert result.findings == []
    assert not result.probes.writes
    assert all("UPDATE" not in row and "INSERT" not in row for row in result.probes.matrix.values())


def test_legacy_schema_defects_are_found(server: Server) -> None:
    schema = LEGACY_SCHEMA.read_text()
    began = time.perf_counter()
    result = check(make_db(server, schema), RlsConfig())
    found = rules(result)
    assert {"RLS001", "RLS002", "RLS003", "RLS005", "RLS008", "RLS009", "RLS013"} <= found
    assert {"PROBE-SELECT", "PROBE-UPDATE", "PROBE-DELETE", "PROBE-INSERT", "PROBE-MOVE", "PROBE-NOCTX"} <= found
    leaks = [f for f in result.probes.findings if f.actual == LEAK]
    assert len(leaks) > 100
    assert result.probes.role == "synap_probe"
    print(f"\nlegacy: {len(result.findings)} findings, {len(leaks)} leaks, {time.perf_counter() - began:.2f}s")
    with server.connect() as conn:  # the probe role went away with its grants
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'synap_probe'").fetchone() is None


def test_cli_exit_codes_and_json(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    clean, leaky = make_db(server, CORRECT), make_db(server, CORRECT, DEFECTS["USING (true)"][0])
    assert main(["rls", "--dsn", clean.dsn, "--disposable", "--format", "json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"
    assert main(["rls", "--dsn", leaky.dsn, "--format", "json", "--app-role", APP]) == 1
    out = capsys.readouterr().out
    assert '"rule": "PROBE-SELECT"' in out and '"rule": "RLS006"' in out and "PROBE-UPDATE" not in out
    assert main(["rls", "--dsn", make_db(server, CORRECT, OTHER_SETTING).dsn, "--tenant-setting", "app.current_tenant",
                 "--tenant-setting", "app.current_tenant_id"]) == 0
    assert main(["rls", "--dsn", "postgresql://nobody@127.0.0.1:9/x"]) == 2
    assert "cannot connect" in capsys.readouterr().err


# Policies G5 judges, seeded together on the correct schema: an ALL policy without WITH CHECK (PostgreSQL
# checks new rows with its USING, so it grants all four commands; G5 still wants the WITH CHECK), two
# always-true ones, one on a tenant setting nobody sets, an INSERT policy without WITH CHECK (it admits no
# row) and a missing DELETE policy.
G5_SEEDS = f"""
DROP POLICY workspaces_tenant ON workspaces;
CREATE POLICY workspaces_tenant ON workspaces FOR ALL TO {APP} USING (tenant_id = current_tenant_id());
CREATE POLICY open_read ON workspace_members FOR SELECT TO {APP} USING (true);
CREATE POLICY open_update ON workspace_projects FOR UPDATE TO {APP} USING (1 = 1)
    WITH CHECK (tenant_id = current_tenant_id());
DROP POLICY p_delete ON workspace_projects;
CREATE POLICY p_delete ON workspace_projects FOR DELETE TO {APP}
    USING (tenant_id = NULLIF(current_setting('app.wrong_tenant', true), '')::uuid);
DROP POLICY rbac_roles_insert ON rbac_roles;
CREATE POLICY rbac_roles_insert ON rbac_roles FOR INSERT TO {APP};
DROP POLICY rbac_roles_delete ON rbac_roles;
"""
WITH_CHECK, ALWAYS_TRUE, NO_TENANT = (f.wanted("tenant_id") for f in g5.Flaw)


Verdicts = tuple[set[tuple[str, str, str]], set[tuple[str, str | None]]]


def _g5_verdicts(findings: list[Finding], rules: set[str]) -> Verdicts:
    """(table, policy, flaw) and (table, commands granted) of the findings under ``rules``, whatever their wording."""
    policies = {(f.table, f.constraint, f.expected) for f in findings
                if f.rule in rules and f.constraint and f.expected and f.expected in (WITH_CHECK, ALWAYS_TRUE, NO_TENANT)}
    coverage = {(f.table, f.actual) for f in findings if f.rule in rules and f.expected == ", ".join(g5.COMMANDS)}
    return policies, coverage


def test_contract_and_rls_judge_the_same_policies_alike(server: Server) -> None:
    """`synap-verify contract` (G5) and `synap-verify rls` (RLS004-RLS006) on one database: one verdict."""
    db = make_db(server, CORRECT, G5_SEEDS)
    config = RlsConfig()
    tables = {"workspaces": "required", "workspace_projects": "required", "workspace_members": "required",
              "rbac_roles": "nullable"}
    contract = Contract(Path("g5.yaml"), config.schemas, Rules(
        tenant_column=config.tenant_column, tenant_settings=config.context.settings,
        tenant_functions=config.context.functions, app_role=config.app_role, enabled=frozenset({"G5"})),
        {name: TableSpec(name, "core", tenant=tenant) for name, tenant in tables.items()}, ("core",))
    by_contract = _g5_verdicts(check_contract(db.catalog(config.schemas), contract), {"G5"})
    result = check(db, config)
    by_rls = _g5_verdicts(result.findings, {"RLS004", "RLS005", "RLS006"})
    assert by_contract == by_rls
    assert by_rls == ({("workspaces", "workspaces_tenant", WITH_CHECK),
                       ("workspace_members", "open_read", ALWAYS_TRUE),
                       ("workspace_projects", "open_update", ALWAYS_TRUE),
                       ("workspace_projects", "p_delete", NO_TENANT),
                       ("rbac_roles", "rbac_roles_insert", WITH_CHECK)},
                      {("rbac_roles", "SELECT, UPDATE")})
    # PostgreSQL's side of it: the ALL policy without WITH CHECK grants every command and keeps writes in
    # the tenant, as its USING decides; the probes show it on the server
    assert {p: result.probes.matrix["workspaces"][p] for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "MOVE")} == \
        dict.fromkeys(("SELECT", "INSERT", "UPDATE", "DELETE", "MOVE"), PASS)
    assert result.probes.matrix["workspace_members"]["SELECT"] == LEAK
    assert result.probes.matrix["rbac_roles"]["INSERT"] == NOT_COVERED


@pytest.mark.parametrize(("expression", "verdict"), [
    ("true", True), ("(true)", True), ("(1 = 1)", True), ("((1 = 1))", True), ("('a'::text = 'a'::text)", True),
    ("(tenant_id = tenant_id)", True), ("(NOT false)", True), ("(tenant_id = current_tenant_id())", False),
    ("((1 = 1) AND (tenant_id = current_tenant_id()))", False), ("((a = 1) OR (b = 1))", False), ("(1 = 2)", False),
])
def test_always_true(expression: str, verdict: bool) -> None:
    assert g5.always_true(expression) is verdict
