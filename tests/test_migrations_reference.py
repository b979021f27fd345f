"""The reference restructure (synapscale/migrations) against a real PostgreSQL: up, down, up again.

A handful of hand-written legacy rows carry every data move the spec asks for (json the jsonb type
rejects, a workflow without workspace, an unknown permission key, an inline message rating, tenant
drift, a drifted counter, a backup table with rows), so nothing here depends on the data generator.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from synap_verify import migrate
from synap_verify.catalog import Catalog, read_catalog
from synap_verify.server import Server, embedded

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "synapscale" / "migrations"
LEGACY = ROOT / "fixtures" / "legacy" / "schema.sql"
GROUPS = ("backup", "rbac", "workflows", "llm", "marketplace", "analytics", "billing", "users", "workspaces", "nodes",
          "metrics", "templates", "other", "core", "contacts")

T1, T2 = "11111111-0000-0000-0000-000000000001", "11111111-0000-0000-0000-000000000002"
U1, U2 = "22222222-0000-0000-0000-000000000001", "22222222-0000-0000-0000-000000000002"
W1 = "33333333-0000-0000-0000-000000000001"
WF1, WF2 = "44444444-0000-0000-0000-000000000001", "44444444-0000-0000-0000-000000000002"
ROLE, MSG, AGENT, COMP = ("55555555-0000-0000-0000-000000000001", "66666666-0000-0000-0000-000000000001",
                          "77777777-0000-0000-0000-000000000001", "88888888-0000-0000-0000-000000000001")
NUL_JSON = '{"note":"before\\u0000after","keep":[1,2]}'
HUGE_JSON = '{"big":1e400000}'

SEED = f"""
SET search_path = synapscale_db;
INSERT INTO plans (id, name, slug) VALUES ('99999999-0000-0000-0000-000000000001', 'Pro', 'pro');
INSERT INTO tenants (id, name, slug) VALUES ('{T1}', 'Acme', 'acme'), ('{T2}', 'Globex', 'globex');
INSERT INTO users (id, email, full_name, hashed_password, tenant_id) VALUES
  ('{U1}', 'ana@acme.io', 'Ana Silva', 'x', '{T1}'), ('{U2}', 'bo@globex.io', 'Bo Ng', 'x', '{T2}');
INSERT INTO rbac_permissions (key, name) VALUES ('workflows.read', 'Read workflows');
INSERT INTO rbac_roles (id, name, tenant_id, permissions) VALUES
  ('{ROLE}', 'editor', '{T1}', '["workflows.read", "bogus.key"]'), (DEFAULT, 'member', NULL, NULL);
INSERT INTO workspaces (id, tenant_id, owner_id, name, slug, member_count) VALUES ('{W1}', '{T1}', '{U1}', 'Main', 'main', 5);
INSERT INTO workspace_members (workspace_id, user_id, tenant_id) VALUES ('{W1}', '{U1}', '{T1}'), ('{W1}', '{U2}', '{T2}');
INSERT INTO workflows (id, name, user_id, workspace_id, tenant_id, tags, created_at) VALUES
  ('{WF1}', 'orphan', '{U1}', NULL, '{T1}', '{NUL_JSON}', '2024-03-10 02:30:00'),
  ('{WF2}', 'homed', '{U1}', '{W1}', '{T1}', '["a","b"]', '2024-11-03 01:30:00');
INSERT INTO llms_conversations (id, user_id, tenant_id) VALUES ('aaaaaaaa-0000-0000-0000-000000000001', '{U1}', '{T1}');
INSERT INTO llms_messages (id, conversation_id, tenant_id, role, content, rating, feedback) VALUES
  ('{MSG}', 'aaaaaaaa-0000-0000-0000-000000000001', '{T1}', 'user', 'hi', 4, 'good answer');
INSERT INTO agents (id, name, user_id, tenant_id, model_provider, provider, workspace_id) VALUES
  ('{AGENT}', 'helper', '{U1}', '{T1}', 'openai', NULL, NULL);
INSERT INTO marketplace_components (id, name, slug, category, component_type, tags, author_id, author_name, tenant_id,
  downloads_count) VALUES ('{COMP}', 'Comp', 'comp', 'util', 'node', 'alpha, beta,gamma', '{U1}', 'Someone Else', '{T1}', 7);
INSERT INTO analytics_dashboards (name, user_id, tenant_id, workspace_id, widgets) VALUES
  ('dash', '{U1}', '{T1}', '{W1}', '{HUGE_JSON}');
INSERT INTO analytics_events (event_type, tenant_id, workspace_id, workflow_id, properties, occurred_at) VALUES
  ('click', '{T1}', '{W1}', '{WF2}', '{NUL_JSON}', '2024-03-31 02:30:00'),
  ('view', '{T1}', '{W1}', NULL, '{{"page":"home"}}', '2024-10-27 02:30:00'),
  ('view', '{T1}', '{W1}', NULL, '{{"page":"docs"}}', '2024-12-31 23:59:59.999999');
INSERT INTO backup_users_20240115 SELECT * FROM users;
"""


def load_legacy(dsn: str) -> None:
    """The legacy schema, through the data generator's loader when present, else psql."""
    try:
        from synap_verify.datagen.schema import load_schema_file  # type: ignore[import-not-found]
    except ImportError:
        subprocess.run([str(embedded.bindir() / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(LEGACY)],
                       check=True, capture_output=True)
    else:
        load_schema_file(dsn, LEGACY)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = embedded.start()
    yield s
    s.stop()


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNAPSCALE_ARCHIVE_DIR", str(tmp_path / "archive"))
    return tmp_path / "archive"


_counter = iter(range(10_000))


def new_db(server: Server, seed: bool = True) -> str:
    name = f"ref_{next(_counter)}_{int(time.time() * 1000) % 100000}"
    with server.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = server.dsn(name)
    load_legacy(dsn)
    if seed:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SEED)  # type: ignore[arg-type]
    # every migration session reads instants in a zone with DST gaps: the revisions must not care
    return dsn + " options='-c TimeZone=America/New_York'"


def catalog(dsn: str) -> Catalog:
    with psycopg.connect(dsn) as conn:
        return read_catalog(conn)


def one(dsn: str, sql: str) -> object:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


def shape(cat: Catalog) -> dict[str, dict[str, tuple[str, bool]]]:
    """Tables, columns, types and nullability (column order aside)."""
    return {t.name: {c.name: (c.type, c.nullable) for c in t.columns} for t in cat.tables.values()
            if not t.name.startswith("migration_") and t.name != "alembic_version"}


def upgrade_timed(dsn: str, targets: list[str]) -> list[migrate.Step]:
    steps = migrate.upgrade(dsn, MIGRATIONS, targets)
    for s in steps:
        print(f"  up   {s.revision:<14} {s.seconds * 1000:8.1f} ms")
    return steps


def assert_restructured(cat: Catalog) -> None:
    assert not cat.columns_of_type("json"), [f"{t.name}.{c.name}" for t, c in cat.columns_of_type("json")]
    naive = cat.columns_of_type("timestamp without time zone")
    assert not naive, [f"{t.name}.{c.name}" for t, c in naive]
    assert not [t.name for t in cat.tables.values() if t.column("meta_data")]
    assert not [t for t in cat.tables if t.startswith("backup_")]
    no_action = [f"{t.name}.{fk.name}" for t in cat.tables.values() for fk in t.foreign_keys if fk.on_delete == "NO ACTION"]
    assert not no_action, no_action
    for t in cat.tables.values():
        cols = [fk.columns for fk in t.foreign_keys]
        assert len(cols) == len(set(cols)), f"duplicated FK on {t.name}"
        for fk in t.foreign_keys:
            if fk.on_delete == "SET NULL":
                assert all(t.column(c).nullable for c in fk.columns), f"{t.name}.{fk.name} SET NULL on NOT NULL"  # type: ignore[union-attr]
        if t.column("tenant_id") is not None:
            assert t.rls_enabled and t.rls_forced, t.name
            commands = {p.command for p in t.policies}
            assert {"SELECT", "INSERT", "UPDATE", "DELETE"} <= commands, (t.name, commands)
            assert all("current_tenant_id()" in (p.using or p.with_check or "") for p in t.policies), t.name
    app = cat.roles["synapscale_app"]
    assert app.can_login and not app.superuser and not app.bypassrls
    assert all(t.owner != "synapscale_app" for t in cat.tables.values())
    gin = {(t.name, i.columns[0]) for t in cat.tables.values() for i in t.indexes if i.method == "gin" and i.valid}
    assert {("analytics_dashboards", "widgets"), ("analytics_events", "properties"), ("workflows", "tags"),
            ("marketplace_components", "tags"), ("workflow_templates", "tags"), ("llms_usage_logs", "model_settings")} <= gin


def test_single_head_and_group_labels() -> None:
    head = migrate.single_head(MIGRATIONS)
    assert head == "restructured"
    labels = {lb for r in migrate.script_directory(MIGRATIONS).walk_revisions() for lb in r.branch_labels}
    assert set(GROUPS) <= labels


def test_upgrade_downgrade_upgrade(server: Server, archive: Path) -> None:
    dsn = new_db(server)
    print("\nupgrade heads:")
    steps = upgrade_timed(dsn, ["heads"])
    assert len(steps) == 17
    cat = catalog(dsn)
    assert_restructured(cat)
    assert cat.tables["users"].column("tenant_id") is None
    assert "messages" in cat.tables and "llms_messages" not in cat.tables
    assert cat.tables["marketplace_components"].column("tags").type == "text[]"  # type: ignore[union-attr]
    assert not cat.tables["workflows"].column("workspace_id").nullable  # type: ignore[union-attr]
    assert cat.tables["rbac_roles"].column("tenant_id").nullable is not False  # type: ignore[union-attr]

    # moved data arrived, rejected json quarantined verbatim and sanitised, instants kept as UTC
    q = "synapscale_db."
    assert one(dsn, f"SELECT count(*) FROM {q}user_tenant_roles WHERE user_id = '{U1}' AND tenant_id = '{T1}'") == 1
    feedback = f"SELECT rating || ':' || feedback_text FROM {q}message_feedbacks WHERE message_id = '{MSG}'"
    assert one(dsn, feedback) == "4:good answer"
    assert one(dsn, f"SELECT provider FROM {q}agents WHERE id = '{AGENT}'") == "openai"
    assert one(dsn, f"SELECT metadata->>'legacy_author_name' FROM {q}marketplace_components") == "Someone Else"
    assert one(dsn, f"SELECT tags FROM {q}marketplace_components") == ["alpha", "beta", "gamma"]
    assert one(dsn, f"SELECT count(*) FROM {q}rbac_role_permissions WHERE role_id = '{ROLE}'") == 1
    assert one(dsn, f"SELECT original_text FROM {q}migration_quarantine WHERE reason = 'unknown_permission'") == "bogus.key"
    assert one(dsn, f"SELECT original_text FROM {q}migration_quarantine WHERE table_name = 'workflows' "
                    "AND reason = 'jsonb_rejects'") == NUL_JSON
    assert one(dsn, f"SELECT tags->>'note' FROM {q}workflows WHERE id = '{WF1}'") == "beforeafter"
    assert one(dsn, f"SELECT widgets->>'big' FROM {q}analytics_dashboards") == "1e400000"
    assert one(dsn, f"SELECT w.is_default FROM {q}workflows f JOIN {q}workspaces w ON w.id = f.workspace_id "
                    f"WHERE f.id = '{WF1}'") is True
    assert one(dsn, f"SELECT created_at::text FROM {q}workflows WHERE id = '{WF1}'") == "2024-03-10 02:30:00+00"
    assert one(dsn, f"SELECT count(*) FROM {q}migration_quarantine WHERE reason = 'tenant_drift'") == 1
    assert one(dsn, f"SELECT member_count FROM {q}workspaces WHERE id = '{W1}'") == 2
    assert one(dsn, f"SELECT downloads_count FROM {q}marketplace_components") == 0
    assert one(dsn, f"SELECT row_count FROM {q}migration_archive WHERE table_name = 'backup_users_20240115'") == 2
    assert len(list(archive.glob("*.dump"))) == 16

    # the guards and counters work for the application role, under RLS
    with psycopg.connect(dsn) as conn:
        conn.execute("SET ROLE synapscale_app")
        conn.execute(f"SELECT set_config('app.current_tenant_id', '{T1}', true)")
        assert conn.execute(f"SELECT count(*) FROM {q}workflows").fetchone()[0] == 2  # type: ignore[index]
        conn.execute(f"INSERT INTO {q}workspace_members (workspace_id, user_id, tenant_id) "
                     f"SELECT '{W1}', id, '{T1}' FROM {q}users WHERE id = '{U1}' ON CONFLICT DO NOTHING")
        conn.execute(f"INSERT INTO {q}workspace_projects (workspace_id, tenant_id, name) VALUES ('{W1}', '{T1}', 'p')")
        count = conn.execute(f"SELECT project_count FROM {q}workspaces WHERE id = '{W1}'").fetchone()
        assert count == (1,)
        conn.execute("SELECT set_config('app.current_tenant_id', '', true)")
        assert conn.execute(f"SELECT count(*) FROM {q}workflows").fetchone()[0] == 0  # type: ignore[index]
        conn.rollback()
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(f"INSERT INTO {q}workspace_projects (workspace_id, tenant_id, name) VALUES ('{W1}', '{T2}', 'leak')")

    print("downgrade base:")
    began = time.perf_counter()
    migrate.downgrade(dsn, MIGRATIONS, "base")
    print(f"  down base           {(time.perf_counter() - began) * 1000:8.1f} ms")
    fresh = new_db(server, seed=False)
    assert shape(catalog(dsn)) == shape(catalog(fresh))
    down, legacy = catalog(dsn), catalog(fresh)
    for name, t in legacy.tables.items():
        d = down.tables[name]
        assert {(fk.name, fk.on_delete) for fk in d.foreign_keys} == {(fk.name, fk.on_delete) for fk in t.foreign_keys}, name
        assert (d.rls_enabled, d.rls_forced, {p.name for p in d.policies}) == (
            t.rls_enabled, t.rls_forced, {p.name for p in t.policies}), name

    assert one(dsn, f"SELECT tenant_id::text FROM {q}users WHERE id = '{U2}'") == T2
    assert one(dsn, f"SELECT count(*) FROM {q}user_tenant_roles") == 0
    assert one(dsn, f"SELECT rating || ':' || feedback FROM {q}llms_messages WHERE id = '{MSG}'") == "4:good answer"
    assert one(dsn, f"SELECT count(*) FROM {q}llms_message_feedbacks") == 0
    assert one(dsn, f"SELECT coalesce(provider, '-') || ':' || model_provider FROM {q}agents") == "-:openai"
    assert one(dsn, f"SELECT author_name || '|' || tags FROM {q}marketplace_components") == "Someone Else|alpha,beta,gamma"
    assert one(dsn, f"SELECT permissions::text FROM {q}rbac_roles WHERE id = '{ROLE}'") == '["workflows.read", "bogus.key"]'
    assert one(dsn, f"SELECT count(*) FROM {q}rbac_role_permissions") == 0
    assert one(dsn, f"SELECT tags::text FROM {q}workflows WHERE id = '{WF1}'") == NUL_JSON
    assert one(dsn, f"SELECT workspace_id FROM {q}workflows WHERE id = '{WF1}'") is None
    assert one(dsn, f"SELECT count(*) FROM {q}workspaces") == 1
    assert one(dsn, f"SELECT created_at::text FROM {q}workflows WHERE id = '{WF1}'") == "2024-03-10 02:30:00"
    assert one(dsn, f"SELECT count(*) FROM {q}backup_users_20240115") == 2

    print("upgrade again:")
    upgrade_timed(dsn, ["heads"])
    assert_restructured(catalog(dsn))


def test_one_group_alone(server: Server, archive: Path) -> None:
    dsn = new_db(server)
    # the bare branch label is the group's revision; `analytics@head` climbs to the merge (every group),
    # because the merge revision inherits every branch label (see docs/decisions.md)
    steps = upgrade_timed(dsn, ["analytics"])
    assert [s.revision for s in steps] == ["foundation", "analytics_1"]
    cat = catalog(dsn)
    for name in ("analytics_events", "analytics_dashboards"):
        t = cat.tables[name]
        assert not [c for c in t.columns if c.type in ("json", "timestamp without time zone")]
        assert t.rls_forced
    assert cat.tables["workflows"].column("tags").type == "json"  # type: ignore[union-attr]
    assert "backup_users_20240115" in cat.tables


def test_expand_contract_over_lowered_threshold(server: Server, archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = new_db(server)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO synapscale_db.analytics_events (event_type, tenant_id, properties) "
                     f"SELECT 'bulk', '{T1}', json_build_object('i', i) FROM generate_series(1, 12000) i")
        conn.execute("ANALYZE synapscale_db.analytics_events")
    monkeypatch.setenv("SYNAPSCALE_EXPAND_CONTRACT_ROWS", "10000")
    before = {(i.name, i.columns) for i in catalog(dsn).tables["analytics_events"].indexes}
    upgrade_timed(dsn, ["analytics"])
    t = catalog(dsn).tables["analytics_events"]
    # the timestamp indexes were dropped for the type change and built again CONCURRENTLY, valid
    assert before <= {(i.name, i.columns) for i in t.indexes} and all(i.valid for i in t.indexes)
    assert one(dsn, "SELECT count(*) FROM synapscale_db.migration_undo WHERE kind = 'index_rebuild'") == 0
    assert t.column("properties").type == "jsonb"  # type: ignore[union-attr]
    assert not [c for c in t.columns if c.name.endswith("__jsonb")] and not [g for g in t.triggers if "__jsonb" in g]
    assert one(dsn, "SELECT count(*) FROM synapscale_db.analytics_events WHERE properties ? 'i'") == 12000
    assert one(dsn, "SELECT properties->>'note' FROM synapscale_db.analytics_events WHERE event_type = 'click'") == "beforeafter"
    assert one(dsn, "SELECT count(*) FROM synapscale_db.migration_quarantine WHERE table_name = 'analytics_events'") == 1
    migrate.downgrade(dsn, MIGRATIONS, "base")
    assert one(dsn, "SELECT properties::text FROM synapscale_db.analytics_events WHERE event_type = 'click'") == NUL_JSON


def structure(cat: Catalog) -> dict[str, tuple]:
    """Everything a revision changes on a table, order-free: columns, checks, FKs, indexes, RLS, triggers."""
    return {t.name: (sorted((c.name, c.type, c.nullable, c.default) for c in t.columns), sorted(t.checks),
                     sorted((fk.name, fk.columns, fk.target_table, fk.on_delete) for fk in t.foreign_keys),
                     sorted((i.name, i.method, i.columns, i.valid) for i in t.indexes),
                     (t.rls_enabled, t.rls_forced), sorted((p.name, p.command, p.using, p.with_check) for p in t.policies),
                     sorted(t.triggers))
            for t in cat.tables.values()}


def audit(dsn: str) -> list[tuple]:
    """The quarantine and journal rows, without ids or times."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT 'q', table_name, column_name, reason, original_text, count(*) FROM synapscale_db.migration_quarantine "
            "GROUP BY 1, 2, 3, 4, 5 UNION ALL SELECT 'u', table_name, column_name, kind, NULL, count(*) "
            "FROM synapscale_db.migration_undo GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5").fetchall()


def test_revision_failed_half_way_converges_on_rerun(server: Server, archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A revision stopped after some of its short transactions committed reruns to the same end state."""
    clean = new_db(server)
    upgrade_timed(clean, ["workflows"])
    dsn = new_db(server)
    upgrade_timed(dsn, ["foundation"])
    monkeypatch.setenv("SYNAPSCALE_LOCK_TIMEOUT", "100ms")
    monkeypatch.setenv("SYNAPSCALE_LOCK_RETRIES", "2")
    # another session reads tenants in an open transaction: the first FK swap (which needs tenants) cannot lock it
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE synapscale_db.tenants IN ACCESS SHARE MODE")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            migrate.upgrade(dsn, MIGRATIONS, ["workflows"])
        holder.rollback()
    assert migrate.current(dsn, MIGRATIONS) == {"foundation"}
    half = catalog(dsn).tables
    assert half["workflows"].column("tags").type == "jsonb"  # type: ignore[union-attr]  # committed steps stay
    assert not half["workflows"].column("workspace_id").nullable  # type: ignore[union-attr]
    assert not half["workflows"].rls_forced  # the steps after the failure did not run

    upgrade_timed(dsn, ["workflows"])
    assert migrate.current(dsn, MIGRATIONS) == {"workflows_1"}
    assert structure(catalog(dsn)) == structure(catalog(clean))
    assert audit(dsn) == audit(clean)  # each finding and each journaled move recorded once

    migrate.downgrade(dsn, MIGRATIONS, "base")
    assert shape(catalog(dsn)) == shape(catalog(new_db(server, seed=False)))
    assert one(dsn, f"SELECT tags::text FROM synapscale_db.workflows WHERE id = '{WF1}'") == NUL_JSON
    assert one(dsn, f"SELECT workspace_id FROM synapscale_db.workflows WHERE id = '{WF1}'") is None


def upgrade_while_held(dsn: str, target: str, hold_sql: str, seconds: float = 0.8) -> None:
    """Upgrade to ``target`` while another session holds the locks of ``hold_sql`` for the first ``seconds``."""
    holder = psycopg.connect(dsn)
    holder.execute(hold_sql)  # type: ignore[arg-type]
    release = threading.Timer(seconds, holder.rollback)
    release.start()
    try:
        upgrade_timed(dsn, [target])
    finally:
        release.join()
        holder.close()


def test_lock_timeout_retried_until_the_lock_is_free(server: Server, archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that times out waiting for a lock backs off and retries; a short blocker costs no failure."""
    dsn = new_db(server)
    upgrade_timed(dsn, ["foundation"])
    monkeypatch.setenv("SYNAPSCALE_LOCK_TIMEOUT", "100ms")
    upgrade_while_held(dsn, "workflows", "LOCK TABLE synapscale_db.tenants IN ACCESS SHARE MODE")
    assert migrate.current(dsn, MIGRATIONS) == {"workflows_1"}
    assert catalog(dsn).tables["workflows"].rls_forced


# workspaces 2..9 of tenant T1: workspace i has i activities and a stored activity_count of 1 (drifted for i != 1)
MORE_WORKSPACES = f"""
SET search_path = synapscale_db;
INSERT INTO workspaces (id, tenant_id, owner_id, name, slug, activity_count)
SELECT ('33333333-0000-0000-0000-00000000000' || i)::uuid, '{T1}', '{U1}', 'ws' || i, 'ws' || i, 1
FROM generate_series(2, 9) i;
INSERT INTO workspace_activities (workspace_id, tenant_id, action)
SELECT ('33333333-0000-0000-0000-00000000000' || i)::uuid, '{T1}', 'viewed' FROM generate_series(2, 9) i, generate_series(1, i) n;
"""


def test_counters_recounted_in_keyset_batches(server: Server, archive: Path, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Batches of 2 parents, one row held by another session for a while: same counts and drift report as one batch."""
    whole, dsn = new_db(server), new_db(server)
    for db in (whole, dsn):
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(MORE_WORKSPACES)  # type: ignore[arg-type]
    upgrade_timed(whole, ["workspaces"])
    upgrade_timed(dsn, ["foundation"])
    monkeypatch.setenv("SYNAPSCALE_RECOUNT_BATCH", "2")
    monkeypatch.setenv("SYNAPSCALE_LOCK_TIMEOUT", "100ms")
    # a write in flight on workspace 5 for 0.8 s: the steps that need its row or its table wait and retry
    upgrade_while_held(dsn, "workspaces",
                       "SELECT 1 FROM synapscale_db.workspaces WHERE id = '33333333-0000-0000-0000-000000000005' FOR UPDATE")
    counted = ("SELECT count(*) FROM synapscale_db.workspaces w WHERE activity_count <> (SELECT count(*) FROM "
               "synapscale_db.workspace_activities a WHERE a.workspace_id = w.id) OR member_count <> (SELECT count(*) "
               "FROM synapscale_db.workspace_members m WHERE m.workspace_id = w.id)")
    assert one(dsn, counted) == 0
    drift = ("SELECT count(*) FROM synapscale_db.migration_quarantine WHERE reason = 'counter_drift' "
             "AND column_name = 'activity_count'")
    assert one(dsn, drift) == 8  # workspaces 2..9 (the seed's W1 has no activity and a stored 0)
    assert one(dsn, "SELECT original_text FROM synapscale_db.migration_quarantine WHERE reason = 'counter_drift' "
                    "AND primary_key = '33333333-0000-0000-0000-000000000009' AND column_name = 'activity_count'") \
        == '{"stored" : 1, "counted" : 9}'
    assert audit(dsn) == audit(whole)
    assert "LockNotAvailable" in caplog.text  # the held row made steps wait and retry, none failed
    # the last write to workspaces 2..9 is their recount: one transaction for all of them, one per batch of 2
    batches = ("SELECT count(DISTINCT xmin::text) FROM synapscale_db.workspaces "
               "WHERE id > '33333333-0000-0000-0000-000000000001'")
    assert (one(whole, batches), one(dsn, batches)) == (1, 5)
