"""The contract checker on a real server: the legacy schema's findings, one seeded defect per rule on a
small target-shaped schema, malformed contract files, foreign objects, the CLI, and its speed."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from synap_verify import cli, resources
from synap_verify.catalog import read_catalog
from synap_verify.contract import Contract, check, load_contract
from synap_verify.contract.expected import differences, load_expected
from synap_verify.datagen.schema import load_schema_file
from synap_verify.errors import SynapError
from synap_verify.findings import count_by_rule, render_text
from synap_verify.server import Server

CONTRACT = resources.CONTRACT
LEGACY = resources.LEGACY_SCHEMA
EXPECTED = resources.EXPECTED_LEGACY
FOREIGN = Path(__file__).with_name("data") / "foreign_schema.sql"

# The target shape of a few tables, written by hand from the specification: every rule holds.
GOOD_TABLES = ("tenants", "plans", "users", "workspaces", "workspace_members", "workspace_activities", "workflows",
               "analytics_events", "llms", "llms_usage_logs", "llms_conversations", "messages", "rbac_roles",
               "marketplace_components", "component_downloads", "component_ratings")
GOOD_SQL = """
CREATE SCHEMA synapscale_db;
SET search_path = synapscale_db;
CREATE FUNCTION current_tenant_id() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.current_tenant_id', true), '')::uuid $$;
CREATE FUNCTION touch_tenant() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TABLE plans (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE tenants (id uuid PRIMARY KEY, plan_id uuid REFERENCES plans ON DELETE RESTRICT,
                      created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL, full_name text);
CREATE TABLE workspaces (
    id uuid PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    owner_id uuid NOT NULL REFERENCES users ON DELETE RESTRICT, feature_usage_count jsonb,
    member_count integer NOT NULL DEFAULT 0, project_count integer NOT NULL DEFAULT 0,
    activity_count integer NOT NULL DEFAULT 0, storage_used_mb numeric NOT NULL DEFAULT 0,
    UNIQUE (id, tenant_id));
CREATE TABLE workspace_members (
    id uuid PRIMARY KEY, workspace_id uuid NOT NULL, tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE, custom_permissions jsonb, notification_preferences jsonb,
    last_seen_at timestamptz, joined_at timestamptz, left_at timestamptz,
    CONSTRAINT workspace_members_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces ON DELETE CASCADE,
    CONSTRAINT workspace_members_workspace_tenant_fkey FOREIGN KEY (workspace_id, tenant_id)
        REFERENCES workspaces (id, tenant_id) ON DELETE CASCADE);
CREATE TABLE workspace_activities (
    id uuid PRIMARY KEY, workspace_id uuid NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE, metadata jsonb, created_at timestamptz NOT NULL);
CREATE TRIGGER workspace_activities_tenant_guard BEFORE INSERT OR UPDATE ON workspace_activities
    FOR EACH ROW EXECUTE FUNCTION touch_tenant();
CREATE TRIGGER workspace_members_count_sync AFTER INSERT OR DELETE ON workspace_members
    FOR EACH ROW EXECUTE FUNCTION touch_tenant();
CREATE TRIGGER workspace_activities_count_sync AFTER INSERT OR DELETE ON workspace_activities
    FOR EACH ROW EXECUTE FUNCTION touch_tenant();
CREATE TABLE workflows (
    id uuid PRIMARY KEY, workspace_id uuid NOT NULL, tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users ON DELETE RESTRICT,
    tags jsonb, created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (id, tenant_id),
    CONSTRAINT workflows_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces ON DELETE CASCADE,
    CONSTRAINT workflows_workspace_tenant_fkey FOREIGN KEY (workspace_id, tenant_id)
        REFERENCES workspaces (id, tenant_id) ON DELETE CASCADE);
CREATE INDEX ix_workflows_tags ON workflows USING gin (tags);
CREATE TABLE analytics_events (
    id uuid NOT NULL, occurred_at timestamptz NOT NULL, tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    workspace_id uuid REFERENCES workspaces ON DELETE CASCADE, workflow_id uuid REFERENCES workflows ON DELETE SET NULL,
    properties jsonb, context jsonb, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, occurred_at))
    PARTITION BY RANGE (occurred_at);
CREATE TABLE analytics_events_2024 PARTITION OF analytics_events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE analytics_events_2025 PARTITION OF analytics_events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX ix_analytics_events_properties ON analytics_events USING gin (properties jsonb_path_ops);
CREATE INDEX ix_analytics_events_tenant_id_created_at_id ON analytics_events (tenant_id, created_at DESC, id);
CREATE TABLE llms (id uuid PRIMARY KEY, name text NOT NULL, llm_metadata jsonb);
CREATE TABLE llms_conversations (
    id uuid PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE, context jsonb, settings jsonb,
    user_id uuid NOT NULL REFERENCES users ON DELETE RESTRICT, UNIQUE (id, tenant_id));
CREATE TABLE messages (
    id uuid PRIMARY KEY, conversation_id uuid NOT NULL, tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    attachments jsonb, FOREIGN KEY (conversation_id, tenant_id) REFERENCES llms_conversations (id, tenant_id) ON DELETE CASCADE);
CREATE INDEX ix_messages_tenant_id_conversation_id ON messages (tenant_id, conversation_id);
CREATE TABLE llms_usage_logs (
    id uuid PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users ON DELETE RESTRICT,
    conversation_id uuid REFERENCES llms_conversations ON DELETE SET NULL,
    workspace_id uuid REFERENCES workspaces ON DELETE SET NULL, llm_id uuid REFERENCES llms ON DELETE SET NULL,
    api_request_payload jsonb, api_response_metadata jsonb, model_settings jsonb, created_at timestamptz NOT NULL,
    model text, total_tokens integer, cost_usd numeric);
CREATE INDEX ix_llms_usage_logs_model_settings ON llms_usage_logs USING gin (model_settings);
CREATE INDEX ix_llms_usage_logs_tenant_id_created_at ON llms_usage_logs (tenant_id, created_at)
    INCLUDE (model, total_tokens, cost_usd);
CREATE TABLE rbac_roles (
    id uuid PRIMARY KEY, tenant_id uuid REFERENCES tenants ON DELETE CASCADE, name text NOT NULL,
    scope text NOT NULL, CONSTRAINT rbac_roles_scope_check CHECK ((scope = 'global') = (tenant_id IS NULL)));
CREATE TABLE marketplace_components (
    id uuid PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    author_id uuid NOT NULL REFERENCES users ON DELETE RESTRICT, tags text[], metadata jsonb,
    configuration_schema jsonb, dependencies jsonb, compatibility jsonb, examples jsonb, screenshots jsonb,
    keywords jsonb, published_at timestamptz, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    downloads_count integer NOT NULL DEFAULT 0, rating_average numeric(3,2) NOT NULL DEFAULT 0,
    rating_count integer NOT NULL DEFAULT 0);
CREATE INDEX ix_marketplace_components_tags ON marketplace_components USING gin (tags);
CREATE TABLE component_downloads (
    id uuid PRIMARY KEY, component_id uuid NOT NULL REFERENCES marketplace_components ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users ON DELETE RESTRICT,
    tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE, created_at timestamptz, updated_at timestamptz);
CREATE TABLE component_ratings (
    id uuid PRIMARY KEY, component_id uuid NOT NULL REFERENCES marketplace_components ON DELETE CASCADE,
    tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE, rating integer NOT NULL,
    user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE, created_at timestamptz, updated_at timestamptz);
CREATE TRIGGER component_downloads_counter AFTER INSERT OR DELETE ON component_downloads
    FOR EACH ROW EXECUTE FUNCTION touch_tenant();
CREATE TRIGGER component_ratings_rating_sync AFTER INSERT OR UPDATE OR DELETE ON component_ratings
    FOR EACH ROW EXECUTE FUNCTION touch_tenant();
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['workspaces', 'workspace_members', 'workspace_activities', 'workflows', 'analytics_events',
                             'llms_conversations', 'messages', 'llms_usage_logs', 'marketplace_components',
                             'component_downloads', 'component_ratings'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = current_tenant_id()) '
                       'WITH CHECK (tenant_id = current_tenant_id())', t || '_tenant', t);
    END LOOP;
END $$;
ALTER TABLE rbac_roles ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY rbac_roles_read ON rbac_roles FOR SELECT USING (tenant_id IS NULL OR tenant_id = current_tenant_id());
CREATE POLICY rbac_roles_write ON rbac_roles FOR INSERT WITH CHECK (tenant_id = current_tenant_id());
CREATE POLICY rbac_roles_update ON rbac_roles FOR UPDATE USING (tenant_id = current_tenant_id());
CREATE POLICY rbac_roles_delete ON rbac_roles FOR DELETE USING (tenant_id = current_tenant_id());
DO $$ BEGIN CREATE ROLE synapscale_app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
"""

# rule, table, column (or None), the SQL that introduces exactly that defect
DEFECTS: list[tuple[str, str, str | None, str]] = [
    ("G1", "analytics_events", "context", "ALTER TABLE analytics_events ALTER context TYPE json"),
    ("G2", "llms_usage_logs", "created_at", "ALTER TABLE llms_usage_logs ALTER created_at TYPE timestamp"),
    ("G3", "workspace_activities", "meta_data", "ALTER TABLE workspace_activities RENAME metadata TO meta_data"),
    ("G4", "analytics_events", "workspace_id",
     "ALTER TABLE analytics_events DROP CONSTRAINT analytics_events_workspace_id_fkey, "
     "ADD FOREIGN KEY (workspace_id) REFERENCES workspaces"),
    ("G4", "workspace_members", "workspace_id",
     "ALTER TABLE workspace_members ADD CONSTRAINT fk_dup FOREIGN KEY (workspace_id) REFERENCES workspaces ON DELETE CASCADE"),
    ("G4", "analytics_events", "workflow_id", "ALTER TABLE analytics_events ALTER workflow_id SET NOT NULL"),
    ("G5", "workspaces", None, "ALTER TABLE workspaces NO FORCE ROW LEVEL SECURITY"),
    ("G5", "messages", None, "ALTER TABLE messages DISABLE ROW LEVEL SECURITY"),
    ("G5", "workflows", "tenant_id", "ALTER TABLE workflows ALTER tenant_id DROP NOT NULL"),
    ("G5", "llms_conversations", None,
     "DROP POLICY llms_conversations_tenant ON llms_conversations; "
     "CREATE POLICY p ON llms_conversations USING (tenant_id = current_tenant_id())"),
    ("G5", "component_downloads", None, "CREATE POLICY open ON component_downloads FOR SELECT USING (true)"),
    ("G5", "component_ratings", None, "CREATE POLICY mine ON component_ratings FOR SELECT USING (rating > 3)"),
    ("G6", "llms_usage_logs", "model_settings", "DROP INDEX ix_llms_usage_logs_model_settings"),
    ("G7", "workspace_members", "workspace_id",
     "ALTER TABLE workspace_members DROP CONSTRAINT workspace_members_workspace_tenant_fkey"),
    ("G7", "workspace_activities", "workspace_id", "DROP TRIGGER workspace_activities_tenant_guard ON workspace_activities"),
    ("G8", "workspaces", "member_count", "DROP TRIGGER workspace_members_count_sync ON workspace_members"),
    ("G8", "marketplace_components", "rating_count", "ALTER TABLE marketplace_components DROP rating_count"),
    ("G9", "backup_users_20240612", None, "CREATE TABLE backup_users_20240612 AS SELECT * FROM users"),
    ("T-MISSING", "component_downloads", None, "DROP TABLE component_downloads"),
    ("T-RENAME", "messages", None, "ALTER TABLE messages RENAME TO llms_messages"),
    ("T-COLUMN", "llms_usage_logs", "conversation_id", "ALTER TABLE llms_usage_logs DROP conversation_id"),
    ("T-TYPE", "analytics_events", "context", "ALTER TABLE analytics_events ALTER context TYPE text"),
    ("T-NULL", "workflows", "workspace_id", "ALTER TABLE workflows ALTER workspace_id DROP NOT NULL"),
    ("T-DROP", "marketplace_components", "author_name", "ALTER TABLE marketplace_components ADD author_name text"),
    ("T-FK", "analytics_events", "workflow_id",
     "ALTER TABLE analytics_events DROP CONSTRAINT analytics_events_workflow_id_fkey, "
     "ADD FOREIGN KEY (workflow_id) REFERENCES workflows ON DELETE CASCADE"),
    ("T-FK", "workflows", "workspace_id",
     "ALTER TABLE workflows DROP CONSTRAINT workflows_workspace_id_fkey"),
    ("T-CHECK", "rbac_roles", "scope", "ALTER TABLE rbac_roles DROP CONSTRAINT rbac_roles_scope_check"),
    # a narrower index in place of the stated one: the key must match, not only lead
    ("T-INDEX", "messages", "tenant_id", "DROP INDEX ix_messages_tenant_id_conversation_id; "
     "CREATE INDEX ix_messages_tenant ON messages (tenant_id)"),
    # the stated key in the other direction: the newest-first read sorts again
    ("T-INDEX", "analytics_events", "tenant_id", "DROP INDEX ix_analytics_events_tenant_id_created_at_id; "
     "CREATE INDEX ix_analytics_events_asc ON analytics_events (tenant_id, created_at, id)"),
]


@pytest.fixture(scope="module")
def small_contract(contract: Contract) -> Contract:
    """The bundled contract restricted to the tables of the hand-written target schema."""
    return dataclasses.replace(contract, tables={n: t for n, t in contract.tables.items() if n in GOOD_TABLES})


def _fresh(pg: Server, name: str) -> str:
    with pg.connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg.dsn(name)


@pytest.fixture(scope="module")
def legacy_dsn(pg: Server) -> str:
    dsn = _fresh(pg, "contract_legacy")
    load_schema_file(dsn, LEGACY)
    return dsn


@pytest.fixture(scope="module")
def good_dsn(pg: Server) -> str:
    dsn = _fresh(pg, "contract_good")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(GOOD_SQL)
    return dsn


@pytest.fixture
def good_conn(good_dsn: str) -> Iterator[psycopg.Connection]:
    """A transaction on the good schema, rolled back after the test: defects never leak between tests."""
    with psycopg.connect(good_dsn) as conn:
        conn.execute("SET search_path = synapscale_db")
        yield conn
        conn.rollback()


def test_legacy_findings_are_what_the_spec_says(legacy_dsn: str, contract: Contract) -> None:
    with psycopg.connect(legacy_dsn) as conn:
        findings = check(read_catalog(conn), contract)
    print("legacy findings per rule:", count_by_rule(findings))
    assert differences(findings, load_expected(EXPECTED)) == []


def test_the_good_schema_is_clean(good_conn: psycopg.Connection, small_contract: Contract) -> None:
    findings = check(read_catalog(good_conn), small_contract)
    assert findings == [], render_text(findings)


@pytest.mark.parametrize(("rule", "table", "column", "sql"), DEFECTS, ids=[f"{d[0]}-{d[1]}-{i}" for i, d in enumerate(DEFECTS)])
def test_each_seeded_defect_is_reported_alone(good_conn: psycopg.Connection, small_contract: Contract,
                                             rule: str, table: str, column: str | None, sql: str) -> None:
    good_conn.execute(sql)
    findings = check(read_catalog(good_conn), small_contract)
    got = {(f.rule, f.table, f.column) for f in findings}
    assert got == {(rule, table, column)}, render_text(findings)
    assert all(f.message.endswith(f"({rule})") for f in findings)


KEPT = ("ALTER TABLE workspace_activities ADD COLUMN meta_data json; "
        "ALTER TABLE marketplace_components ADD COLUMN author_name text")
SYNCED = ("CREATE TRIGGER workspace_activities_meta_data_compat_sync BEFORE INSERT OR UPDATE ON workspace_activities "
          "FOR EACH ROW EXECUTE FUNCTION touch_tenant(); "
          "CREATE TRIGGER marketplace_components_author_name_compat_sync BEFORE INSERT OR UPDATE "
          "ON marketplace_components FOR EACH ROW EXECUTE FUNCTION touch_tenant()")
KEPT_FINDINGS = {("G1", "workspace_activities", "meta_data"), ("G3", "workspace_activities", "meta_data"),
                 ("T-DROP", "marketplace_components", "author_name")}


@pytest.mark.parametrize(("synced", "expanded", "found"), [
    (True, True, set()),  # the expand phase: old columns kept in sync for the old application
    (True, False, KEPT_FINDINGS),  # the end state: a contract phase that left them is caught
    (False, True, KEPT_FINDINGS),  # not kept in sync: the old application reads stale values, not an expand
], ids=["expanded", "after-the-contract", "no-sync-trigger"])
def test_old_columns_kept_in_sync_are_findings_only_after_the_contract(good_conn: psycopg.Connection,
                                                                       small_contract: Contract, synced: bool,
                                                                       expanded: bool, found: set[tuple[str, str, str]]) -> None:
    """A subset of the groups stops after their expand revisions, where the old names must still be there;
    reporting them there is a false alarm on every ``--synap-group`` run of a renamed or dropped column."""
    good_conn.execute(KEPT + ("; " + SYNCED if synced else ""))
    findings = check(read_catalog(good_conn), small_contract, expanded=expanded)
    assert {(f.rule, f.table, f.column) for f in findings} == found, render_text(findings)


def test_cli_before_contract_leaves_out_only_the_kept_columns(pg: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """``synap-verify contract --before-contract`` against a DSN stopped at the expand: the kept, synced
    ``author_name`` is no finding, and every other finding of the group stays."""
    dsn = _fresh(pg, "contract_expanded")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(GOOD_SQL)
        conn.execute("SET search_path = synapscale_db; " + KEPT + "; " + SYNCED)

    def found(*flag: str) -> set[tuple[str, str, str]]:
        cli.main(["contract", "--dsn", dsn, "--group", "marketplace", "--format", "json", *flag])
        return {(f["rule"], f["table"], f["column"]) for f in json.loads(capsys.readouterr().out)}

    end_state, expand = found(), found("--before-contract")
    assert end_state - expand == {("T-DROP", "marketplace_components", "author_name")} and expand < end_state


CONFLICTING_NOT_NULL = ("ALTER TABLE llms_usage_logs ALTER llm_id SET NOT NULL, "
                       "ADD CONSTRAINT llms_usage_logs_llm_id_cascade FOREIGN KEY (llm_id) REFERENCES llms ON DELETE CASCADE")


def test_conflicting_fks_on_a_not_null_column_never_advise_set_null(good_conn: psycopg.Connection,
                                                                    small_contract: Contract) -> None:
    """The contract wants SET NULL on llm_id; with llm_id NOT NULL that advice would fail every delete of an llm."""
    good_conn.execute(CONFLICTING_NOT_NULL)
    findings = check(read_catalog(good_conn), small_contract)
    assert [(f.rule, f.table, f.column) for f in findings] == [("G4", "llms_usage_logs", "llm_id")], render_text(findings)
    message = findings[0].message
    assert "keep one" in message and "NOT NULL" in message
    assert "make llm_id nullable" in message and "choose another action" in message
    assert "keep one, ON DELETE SET NULL" not in message
    # the advice is right: with the SET NULL constraint kept, deleting a used llm fails
    good_conn.execute("ALTER TABLE llms_usage_logs DROP CONSTRAINT llms_usage_logs_llm_id_cascade")
    good_conn.execute("""
        INSERT INTO tenants (id) VALUES ('00000000-0000-0000-0000-000000000001');
        INSERT INTO users (id, email) VALUES ('00000000-0000-0000-0000-000000000002', 'u@x');
        INSERT INTO llms (id, name) VALUES ('00000000-0000-0000-0000-000000000003', 'm');
        INSERT INTO llms_usage_logs (id, tenant_id, user_id, llm_id, created_at) VALUES
            ('00000000-0000-0000-0000-000000000004', '00000000-0000-0000-0000-000000000001',
             '00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000003', now())""")
    with pytest.raises(psycopg.errors.NotNullViolation):
        good_conn.execute("DELETE FROM llms WHERE id = '00000000-0000-0000-0000-000000000003'")


def test_duplicate_fks_without_a_contract_action_offer_no_set_null_on_a_not_null_column(
        good_conn: psycopg.Connection, small_contract: Contract) -> None:
    good_conn.execute("ALTER TABLE workspace_members ADD CONSTRAINT workspace_members_user_null "
                      "FOREIGN KEY (user_id) REFERENCES users ON DELETE SET NULL")
    members = small_contract.tables["workspace_members"]
    unstated = dataclasses.replace(members, foreign_keys={c: f for c, f in members.foreign_keys.items() if c != "user_id"})
    findings = check(read_catalog(good_conn), dataclasses.replace(
        small_contract, tables={**small_contract.tables, "workspace_members": unstated}))
    assert [(f.rule, f.column) for f in findings] == [("G4", "user_id")], render_text(findings)
    assert findings[0].message.startswith("workspace_members.user_id has 2 conflicting FK constraints")
    assert "keep one, ON DELETE CASCADE / RESTRICT" in findings[0].message


def test_an_expected_set_null_fk_that_is_missing_on_a_not_null_column_gets_the_nullability_finding(
        good_conn: psycopg.Connection, small_contract: Contract) -> None:
    """The rule covers FKs the contract expects, not only those that exist."""
    good_conn.execute("ALTER TABLE analytics_events DROP CONSTRAINT analytics_events_workflow_id_fkey, "
                      "ALTER workflow_id SET NOT NULL")
    findings = check(read_catalog(good_conn), small_contract)
    assert sorted((f.rule, f.column) for f in findings) == [("G4", "workflow_id"), ("T-FK", "workflow_id")], \
        render_text(findings)
    g4 = next(f for f in findings if f.rule == "G4")
    assert "make workflow_id nullable" in g4.message and "choose another action" in g4.message


def test_an_application_role_that_bypasses_rls_is_reported_per_tenant_table(good_conn: psycopg.Connection,
                                                                           small_contract: Contract) -> None:
    good_conn.execute("ALTER ROLE synapscale_app BYPASSRLS")
    findings = check(read_catalog(good_conn), small_contract)
    tenant_tables = {t.name for t in small_contract.tables.values() if t.tenant != "none"}
    assert {f.table for f in findings} == tenant_tables
    assert {f.rule for f in findings} == {"G5"} and all("BYPASSRLS" in f.message for f in findings)


def test_foreign_objects_neither_crash_nor_add_findings(good_conn: psycopg.Connection, small_contract: Contract) -> None:
    good_conn.execute(FOREIGN.read_text())
    good_conn.execute("""
        CREATE VIEW workspace_overview AS SELECT w.id, count(m.id) AS members
            FROM workspaces w LEFT JOIN workspace_members m ON m.workspace_id = w.id GROUP BY w.id;
        CREATE TABLE event_log (id bigint, at date NOT NULL, payload json, workspace_id uuid REFERENCES workspaces)
            PARTITION BY RANGE (at);
        CREATE TABLE event_log_2024 PARTITION OF event_log FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE FUNCTION shop.is_staff() RETURNS boolean LANGUAGE sql AS $$ SELECT current_user = 'staff' $$;
        ALTER TABLE shop.stores ENABLE ROW LEVEL SECURITY;
        CREATE POLICY staff ON shop.stores USING (shop.is_staff());
        CREATE POLICY members_of_my_tenant ON workspace_members FOR SELECT
            USING (tenant_id = current_tenant_id() AND EXISTS (
                SELECT 1 FROM workspaces w WHERE w.id = workspace_id AND w.tenant_id = current_tenant_id()));
    """)
    catalog = read_catalog(good_conn, ("synapscale_db", "shop", "shop_audit"))
    assert check(catalog, small_contract) == []


def _write(tmp_path: Path, text: str, name: str = "contract.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("rules: {}\ngroups:\n  analytic: {}\n",
     r"contract.yaml:3: groups.analytic: unknown group 'analytic'; did you mean 'analytics'?"),
    ("rules:\n  G10: {}\n", r"contract.yaml:2: rules.G10: unknown rule id 'G10'"),
    ("groups:\n  billing:\n    invoices:\n      on_delete: CASCADES\n",
     r"contract.yaml:4: groups.billing.invoices.on_delete: unknown ON DELETE action or class 'CASCADES'; "
     r"did you mean 'CASCADE'?"),
    ("groups:\n  billing:\n    invoices:\n      jsonb: items\n",
     r"contract.yaml:4: groups.billing.invoices.jsonb: expected a list"),
    ("groups:\n  billing:\n    invoices:\n      colums: {}\n",
     r"contract.yaml:4: groups.billing.invoices.colums: unknown key 'colums'; did you mean 'columns'?"),
    ("groups:\n  billing:\n    invoices: {}\n  users:\n    invoices: {}\n",
     r"contract.yaml:5: .*already listed in group 'billing'"),
    ("groups:\n  billing: {invoices: {}\n", r"contract.yaml:\d+: invalid YAML"),
    ("rules: {}\nrules: {}\n", r"contract.yaml:2: duplicate key 'rules'"),
    ("- just\n- a list\n", r"contract.yaml:1: expected a mapping"),
    ("rules:\n  G7: {trigger_pattern: '('}\n", r"contract.yaml:2: rules.G7.trigger_pattern: not a valid regular expression"),
    ("groups:\n  llm:\n    llms_usage_logs:\n      foreign_keys: {llm_id: {references: llms}}\n",
     r"contract.yaml:4: .*expected both 'references: <table>' and 'on_delete: <action>'"),
])
def test_a_malformed_contract_is_one_line_naming_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SynapError, match=message) as info:
        load_contract(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_extends_overrides_the_bundled_contract_and_keeps_line_numbers(tmp_path: Path, contract: Contract) -> None:
    path = _write(tmp_path, f"""extends: {CONTRACT}
rules:
  G5: {{tenant_settings: [app.tenant]}}
  G8: false
groups:
  llm:
    llms_usage_logs:
      foreign_keys: {{llm_id: {{references: llms, on_delete: RESTRICT}}}}
""")
    mine = load_contract(path)
    assert mine.rules.tenant_settings == ("app.tenant",)
    assert mine.rules.tenant_column == "tenant_id"
    assert "G8" not in mine.rules.enabled
    assert mine.tables["llms_usage_logs"].foreign_keys["llm_id"].on_delete == "RESTRICT"
    assert mine.tables["llms_usage_logs"].gin == ("model_settings",)
    assert len(mine.tables) == len(contract.tables)
    broken = _write(tmp_path, f"extends: {path.name}\ngroups:\n  users:\n    users: {{tenant: sometimes}}\n", "mine.yaml")
    with pytest.raises(SynapError, match=r"mine.yaml:4: groups.users.users.tenant: unknown tenant mode 'sometimes'"):
        load_contract(broken)


def test_mapping_names_renames_drops_and_types(contract: Contract) -> None:
    mapping = contract.mapping()
    assert mapping.new_table("llms_messages") == "messages"
    assert mapping.legacy_table("conversation_turns") == "llms_conversations_turns"
    assert mapping.new_column("workflow_executions", "meta_data") == ("workflow_executions", "metadata")
    assert mapping.new_column("llms_messages", "rating") is None
    moved = {(d.legacy_table, d.column): d.moved_to for d in mapping.dropped}
    assert moved[("llms_messages", "feedback")] == "message_feedbacks.feedback_text"
    assert moved[("users", "tenant_id")] == "user_tenant_roles"
    assert mapping.types[("marketplace_components", "tags")] == "text[]"
    assert mapping.types[("workflows", "tags")] == "jsonb"


def test_cli_exit_codes_and_json(legacy_dsn: str, good_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["contract", "--dsn", legacy_dsn, "--group", "rbac", "--format", "json"]) == 1
    listed = json.loads(capsys.readouterr().out)
    assert {f["rule"] for f in listed} >= {"T-COLUMN", "T-CHECK", "T-DROP"} and {f["group"] for f in listed} == {"rbac"}
    assert cli.main(["contract", "--dsn", good_dsn, "--group", "backup"]) == 0
    assert cli.main(["contract", "--dsn", "postgresql://nobody@127.0.0.1:9/none"]) == 2
    assert cli.main(["contract", "--dsn", good_dsn, "--group", "biling"]) == 2
    assert "did you mean 'billing'" in capsys.readouterr().err


def test_checking_costs_less_than_reading_the_catalog(legacy_dsn: str, contract: Contract) -> None:
    with psycopg.connect(legacy_dsn) as conn:
        began = time.perf_counter()
        catalog = read_catalog(conn)
        read = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(5):
        check(catalog, contract)
    checked = (time.perf_counter() - began) / 5
    print(f"read_catalog {read * 1000:.1f} ms, check {checked * 1000:.1f} ms ({len(catalog.tables)} tables)")
    assert checked < 5 * read
