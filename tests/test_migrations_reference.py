"""The reference restructure (synapscale/migrations) against a real PostgreSQL: up, down, up again.

A handful of hand-written legacy rows carry every data move the spec asks for (json the jsonb type
rejects, a workflow without workspace, an unknown permission key, an inline message rating, tenant
drift, a drifted counter, a backup table with rows), so nothing here depends on the data generator.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from synap_verify import migrate
from synap_verify.catalog import Catalog, read_catalog
from synap_verify.resources import LEGACY_SCHEMA
from synap_verify.server import Server, embedded, sqlalchemy_url
from synapscale.migrations import ops

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "synapscale" / "migrations"
LEGACY = LEGACY_SCHEMA
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
def server(pg_factory: Callable[[], Server]) -> Server:
    return pg_factory()


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNAPSCALE_ARCHIVE_DIR", str(tmp_path / "archive"))
    return tmp_path / "archive"


_counter = iter(range(10_000))


# every migration session reads instants in a zone with DST gaps: the revisions must not care
IN_NEW_YORK = " options='-c TimeZone=America/New_York'"


def fill_legacy(dsn: str, seed: bool = True) -> None:
    """The legacy schema into an empty database, with the hand-written rows unless ``seed`` is False."""
    load_legacy(dsn)
    if seed:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SEED)  # type: ignore[arg-type]


def new_db(server: Server, seed: bool = True) -> str:
    name = f"ref_{next(_counter)}_{int(time.time() * 1000) % 100000}"
    with server.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = server.dsn(name)
    fill_legacy(dsn, seed)
    return dsn + IN_NEW_YORK


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
            assert all("current_setting('app.current_tenant_id'::text, true)" in (p.using or p.with_check or "")
                       for p in t.policies), t.name
    app = cat.roles["synapscale_app"]
    assert app.can_login and not app.superuser and not app.bypassrls
    assert all(t.owner != "synapscale_app" for t in cat.tables.values())
    gin = {(t.name, c) for t in cat.tables.values() for i in t.indexes if i.method == "gin" and i.valid for c in i.columns}
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
    assert len(steps) == 18  # 15 groups (expand), foundation, the expanded merge, the contract
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
    # the generated G7/G8 trigger functions (and every other function of the restructure) are gone too
    assert {(f.name, f.signature) for f in down.functions} == {(f.name, f.signature) for f in legacy.functions}

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
    # the timestamp indexes were dropped for the type change and built again CONCURRENTLY, valid; the
    # (tenant_id, created_at) one then gave way to the wider index it leads (Table.indexes)
    widened = ("ix_analytics_events_tenant_id_created_at", ("tenant_id", "created_at"))
    after = {(i.name, i.columns) for i in t.indexes}
    assert before - {widened} <= after and widened in before and widened not in after and all(i.valid for i in t.indexes)
    assert ("ix_analytics_events_tenant_id_created_at_id", ("tenant_id", "created_at", "id")) in after
    assert one(dsn, "SELECT count(*) FROM synapscale_db.migration_undo WHERE kind = 'index_rebuild'") == 0
    assert t.column("properties").type == "jsonb"  # type: ignore[union-attr]
    assert not [c for c in t.columns if c.name.endswith("__jsonb")] and not [g for g in t.triggers if "__jsonb" in g]
    assert one(dsn, "SELECT count(*) FROM synapscale_db.analytics_events WHERE properties ? 'i'") == 12000
    assert one(dsn, "SELECT properties->>'note' FROM synapscale_db.analytics_events WHERE event_type = 'click'") == "beforeafter"
    assert one(dsn, "SELECT count(*) FROM synapscale_db.migration_quarantine WHERE table_name = 'analytics_events'") == 1
    migrate.downgrade(dsn, MIGRATIONS, "base")
    assert one(dsn, "SELECT properties::text FROM synapscale_db.analytics_events WHERE event_type = 'click'") == NUL_JSON
    assert {(i.name, i.columns) for i in catalog(dsn).tables["analytics_events"].indexes} == before


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


def test_lock_timeout_retried_until_the_lock_is_free(server: Server, archive: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A step that times out waiting for a lock backs off and retries; a short blocker costs no failure."""
    dsn = new_db(server)
    upgrade_timed(dsn, ["foundation"])
    monkeypatch.setenv("SYNAPSCALE_LOCK_TIMEOUT", "100ms")
    upgrade_while_held(dsn, "workflows", "LOCK TABLE synapscale_db.tenants IN ACCESS SHARE MODE")
    assert migrate.current(dsn, MIGRATIONS) == {"workflows_1"}
    assert "retrying; held by" in caplog.text and "LOCK TABLE synapscale_db.tenants" in caplog.text  # met, not outrun
    assert catalog(dsn).tables["workflows"].rls_forced


def probe_db(server: Server, name: str, sql: str) -> str:
    """A database of its own holding the target schema and what ``sql`` makes in it: for one ops function."""
    with server.connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = server.dsn(name)
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE SCHEMA synapscale_db; {sql}")  # type: ignore[arg-type]
    return dsn


@contextlib.contextmanager
def migration_session(dsn: str) -> Iterator[None]:
    """The ops functions' context as a revision gives it, outside its transaction (``ops.autocommit``)."""
    engine = create_engine(sqlalchemy_url(dsn), poolclass=NullPool)
    try:
        with engine.connect() as conn, Operations.context(MigrationContext.configure(conn)), ops.autocommit():
            yield
    finally:
        engine.dispose()


def test_a_step_of_sql_alone_retries_its_lock_and_rolls_back_a_failure(server: Server, monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A step given SQL sends its transaction, locks, SQL and commit in one round trip: a lock timeout still backs
    off and retries, and a failing statement still rolls the whole step back. Seeded defects: a short blocker
    (the retry must wait it out) and a division by zero after an insert (the insert must not stay)."""
    dsn = probe_db(server, "step_probe", "CREATE TABLE synapscale_db.step_probe (id int)")
    monkeypatch.setenv("SYNAPSCALE_LOCK_TIMEOUT", "100ms")
    holder = psycopg.connect(dsn)
    holder.execute("LOCK TABLE synapscale_db.step_probe IN ACCESS SHARE MODE")
    release = threading.Timer(0.5, holder.rollback)
    release.start()
    try:
        with migration_session(dsn):
            ops.step("ALTER TABLE synapscale_db.step_probe ADD COLUMN added int", "step_probe")
            with pytest.raises(psycopg.errors.DivisionByZero):
                ops.step("INSERT INTO synapscale_db.step_probe VALUES (1, 1); SELECT 1 / 0", "step_probe")
            ops.step("INSERT INTO synapscale_db.step_probe VALUES (2, 2)")  # the connection is usable again
    finally:
        release.join()
        holder.close()
    assert "retrying; held by" in caplog.text
    assert one(dsn, "SELECT string_agg(id || ':' || added, ',') FROM synapscale_db.step_probe") == "2:2"


def test_not_null_is_proven_by_its_check_and_never_scanned_under_the_lock(server: Server) -> None:
    """``set_not_null`` reads the table once, in the VALIDATE under SHARE UPDATE EXCLUSIVE; the SET NOT NULL under
    ACCESS EXCLUSIVE reads no row, the validated CHECK proving it. Counted by the table's sequential scans.
    Seeded defect: the CHECK dropped in the same ALTER as the SET NOT NULL (an ALTER runs its drops first), which
    made PostgreSQL scan the whole table again under the lock."""
    dsn = probe_db(server, "not_null_probe",
                   "CREATE TABLE synapscale_db.nn_probe AS SELECT i AS id, i AS v FROM generate_series(1, 1000) i")

    def scans() -> int:
        ops.run("SELECT pg_stat_force_next_flush()")  # this session's counts, flushed once it is idle
        return int(ops.scalar("SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'synapscale_db.nn_probe'::regclass"))

    with migration_session(dsn):
        before = scans()
        ops.set_not_null("nn_probe", "v")
        after = scans()
        constraints = ops.run("SELECT conname FROM pg_constraint WHERE conrelid = 'synapscale_db.nn_probe'::regclass "
                              "AND contype = 'c'")
    assert one(dsn, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'synapscale_db.nn_probe'::regclass "
                    "AND attname = 'v'") is True
    assert constraints == []
    assert after - before == 1, f"{after - before} scans of the table: only the VALIDATE may read it"


def test_concurrent_index_build_waits_out_an_old_snapshot(server: Server, archive: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """CREATE INDEX CONCURRENTLY waits for every older snapshot under lock_timeout (and for autovacuum's
    lock): it retries like a step, and the GIN index ends valid, not left INVALID by a timed-out try."""
    dsn = new_db(server)
    upgrade_timed(dsn, ["foundation"])
    monkeypatch.setenv("SYNAPSCALE_LOCK_TIMEOUT", "100ms")
    upgrade_while_held(dsn, "workflows", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SELECT 1", seconds=1.5)
    assert migrate.current(dsn, MIGRATIONS) == {"workflows_1"}
    for index in ("ix_workflow_executions_status_tenant_id_created_at_id", "ix_workflows_tags_gin"):
        assert one(dsn, f"SELECT indisvalid FROM pg_index WHERE indexrelid = 'synapscale_db.{index}'::regclass")
    # the revision's first concurrent build (the widened executions index) timed out and was retried
    assert "LockNotAvailable on workflow_executions" in caplog.text


# --------------------------------------------------------------------------------------------------
# G7/G8 triggers on the write path: one static function per guard and per counter


@pytest.fixture(scope="module")
def restructured(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One seeded database at head, shared by the trigger tests (each leaves the counters exact)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNAPSCALE_ARCHIVE_DIR", str(tmp_path_factory.mktemp("archive")))
        dsn = new_db(server)
        migrate.upgrade(dsn, MIGRATIONS, ["heads"])
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO synapscale_db.workspaces (id, tenant_id, owner_id, name, slug) VALUES "
                     f"('{W2}', '{T1}', '{U1}', 'Side', 'side'), ('{W3}', '{T2}', '{U2}', 'Theirs', 'theirs')")
        conn.execute(f"INSERT INTO synapscale_db.workflows (id, name, user_id, workspace_id, tenant_id) VALUES "
                     f"('{WF3}', 'theirs', '{U2}', '{W3}', '{T2}')")
        conn.execute(f"INSERT INTO synapscale_db.nodes (id, name, type, user_id, tenant_id, is_public) VALUES "
                     f"('{N1}', 'http', 'action', '{U1}', '{T1}', true), ('{N2}', 'mail', 'action', '{U1}', '{T1}', true)")
        conn.execute("INSERT INTO synapscale_db.users (email, hashed_password) "
                     "SELECT 'member' || i || '@acme.io', 'x' FROM generate_series(1, 6) i")
    return dsn


W2, W3 = "33333333-0000-0000-0000-000000000002", "33333333-0000-0000-0000-000000000003"
WF3 = "44444444-0000-0000-0000-000000000003"
N1, N2 = "cccccccc-0000-0000-0000-000000000001", "cccccccc-0000-0000-0000-000000000002"


def declared_counters() -> list[tuple[str, str, str, str, str]]:
    """(parent, child, fk, column, aggregate) of every counter the revisions declare."""
    groups = [getattr(r.module, "GROUP", None) for r in migrate.script_directory(MIGRATIONS).walk_revisions()]
    return [(c.parent, c.child, c.fk, col, expr) for g in groups if g is not None for c in g.counters
            for col, expr in c.assignments]


def drifted_counters(conn: psycopg.Connection) -> list[str]:
    """Counters whose stored value differs from a recount (expected: none, whatever was written)."""
    drift = []
    for parent, child, fk, col, expr in declared_counters():
        n = conn.execute(f"SELECT count(*) FROM synapscale_db.{parent} p WHERE p.{col} IS DISTINCT FROM "  # type: ignore[arg-type]
                         f"(SELECT {expr} FROM synapscale_db.{child} c WHERE c.{fk} = p.id)").fetchone()[0]  # type: ignore[index]
        if n:
            drift.append(f"{parent}.{col} from {child}: {n} rows")
    return drift


def test_trigger_functions_static_and_per_table(restructured: str) -> None:
    """Every G7/G8 trigger runs a function of its own, named like it, with no dynamic SQL or row-to-jsonb."""
    with psycopg.connect(restructured) as conn:
        rows = conn.execute(
            "SELECT t.tgname, p.proname, n.nspname, t.tgnargs, p.prosecdef, p.proconfig, p.prosrc "
            "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE t.tgrelid::regclass::text LIKE 'synapscale_db.%' AND NOT t.tgisinternal "
            "AND (t.tgname LIKE '%\\_tenant\\_guard' OR t.tgname LIKE '%\\_sync\\_%\\_counters')").fetchall()
        generic = conn.execute("SELECT count(*) FROM pg_proc WHERE proname IN ('enforce_parent_tenant', 'sync_counters')"
                               ).fetchone()
    guards = [r for r in rows if r[0].endswith("_tenant_guard")]
    counters = [r for r in rows if not r[0].endswith("_tenant_guard")]
    assert len(counters) == len({(p, c) for p, c, *_ in declared_counters()}) == 15
    assert len(guards) > 60 and generic == (0,)
    for tgname, proname, schema, nargs, definer, config, source in rows:
        assert (proname, schema, nargs) == (tgname, "synapscale_db", 0), tgname
        assert not re.search(r"\bEXECUTE\b|to_jsonb|TG_ARGV", source), tgname
        if tgname.endswith("_tenant_guard"):
            assert not definer and config is None, tgname  # the caller's RLS decides what a parent is
        else:
            assert definer and config == ["search_path=pg_catalog"], tgname


def test_guards_for_the_application_role(restructured: str) -> None:
    """Same semantics as the generic guard: tenant filled from the parent, foreign or invisible parents refused."""
    q = "synapscale_db."
    differs = r"workspace_projects\.tenant_id {} differs from the tenant of workspaces\.workspace_id {}"
    with psycopg.connect(restructured) as conn:
        conn.execute("SET ROLE synapscale_app")
        conn.execute(f"SELECT set_config('app.current_tenant_id', '{T1}', false)")
        row = conn.execute(f"INSERT INTO {q}workspace_projects (workspace_id, name) VALUES ('{W1}', 'filled') "
                           "RETURNING tenant_id::text").fetchone()
        assert row == (T1,)
        conn.execute(f"INSERT INTO {q}analytics_events (event_type, tenant_id, workspace_id, workflow_id) "
                     f"VALUES ('no parent', '{T1}', '{W1}', NULL)")  # a NULL parent is not checked
        for ws, tenant, message in ((W1, T2, differs.format(T2, W1)),  # a parent of another tenant
                                    (W3, T1, differs.format(T1, W3)),  # a parent RLS hides
                                    ("33333333-0000-0000-0000-0000000000ff", T1, "workspaces.workspace_id")):  # none
            with pytest.raises(psycopg.errors.CheckViolation, match=message), conn.transaction():
                conn.execute(f"INSERT INTO {q}workspace_projects (workspace_id, tenant_id, name) "
                             f"VALUES ('{ws}', '{tenant}', 'x')")
        with pytest.raises(psycopg.errors.CheckViolation, match=differs.format(T1, W3)), conn.transaction():
            conn.execute(f"UPDATE {q}workspace_projects SET workspace_id = '{W3}' WHERE name = 'filled'")
        conn.execute(f"UPDATE {q}workspace_projects SET workspace_id = '{W2}' WHERE name = 'filled'")  # same tenant
        assert conn.execute(f"SELECT count(*) FROM {q}workspace_projects WHERE workspace_id = '{W2}'").fetchone() == (1,)
        conn.rollback()


TENANT_KEYS = {  # Table.tenant_keys: (child, column) -> parent, a T1 child's INSERT, T1's parent, T2's, the move to T2
    ("analytics_events", "workspace_id"): (
        "workspaces", f"INSERT INTO synapscale_db.analytics_events (event_type, tenant_id, workspace_id) "
                      f"VALUES ('x', '{T1}', '{{}}')", W2, W3,
        f"UPDATE synapscale_db.workspaces SET tenant_id = '{T2}' WHERE id = '{W2}'"),
    ("workflow_executions", "workflow_id"): (
        "workflows", f"INSERT INTO synapscale_db.workflow_executions (execution_id, workflow_id, user_id, tenant_id) "
                     f"VALUES (gen_random_uuid()::text, '{{}}', '{U1}', '{T1}')", WF2, WF3,
        f"UPDATE synapscale_db.workflows SET tenant_id = '{T2}', workspace_id = '{W3}' WHERE id = '{WF2}'"),  # its guard holds
}


@pytest.mark.parametrize("child, column", list(TENANT_KEYS))
def test_tenant_key_is_a_composite_foreign_key(restructured: str, child: str, column: str) -> None:
    """A G7 tie on a hot write path (Table.tenant_keys): no guard trigger, a validated (column, tenant_id) FK that
    refuses another tenant's or an invisible parent, and a parent that cannot move tenant under its children."""
    parent, insert, own, foreign, move = TENANT_KEYS[child, column]
    table = catalog(restructured).tables[child]
    (composite,) = [fk for fk in table.foreign_keys if fk.columns == (column, "tenant_id")]
    assert (composite.target_table, composite.target_columns, composite.on_delete) == (
        parent, ("id", "tenant_id"), "CASCADE")
    key = ops.tenant_key_name(child, column)
    assert [t for t in table.triggers if ops.guard_name(child, column) in t] == []
    assert one(restructured, f"SELECT convalidated FROM pg_constraint WHERE conname = '{key}'")
    with psycopg.connect(restructured) as conn:
        conn.execute("SET ROLE synapscale_app")
        conn.execute(f"SELECT set_config('app.current_tenant_id', '{T1}', false)")
        conn.execute(insert.format(own))  # type: ignore[arg-type]
        for parent_id in (foreign, "33333333-0000-0000-0000-0000000000ff"):  # another tenant's (RLS hides it too), none
            with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"{child}_{column}_"), conn.transaction():
                conn.execute(insert.format(parent_id))  # type: ignore[arg-type]
        conn.execute("RESET ROLE")
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match=key), conn.transaction():
            conn.execute(move)  # type: ignore[arg-type]
        conn.rollback()


def test_drifted_events_are_reported_and_still_cascade(server: Server, archive: Path) -> None:
    """Legacy drift keeps the composite FK NOT VALID (enforced for new rows), is reported, and the single-column
    FK still deletes the drifted event with its workspace."""
    dsn = new_db(server)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO synapscale_db.analytics_events (event_type, tenant_id, workspace_id) "
                     f"VALUES ('drifted', '{T2}', '{W1}')")
    migrate.upgrade(dsn, MIGRATIONS, ["analytics@head"])
    assert one(dsn, "SELECT convalidated FROM pg_constraint WHERE conname = 'analytics_events_workspace_id_tenant_fkey'") is False
    assert one(dsn, "SELECT count(*) FROM synapscale_db.migration_quarantine WHERE table_name = 'analytics_events' "
                    "AND column_name = 'workspace_id' AND reason = 'tenant_drift'") == 1
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(f"INSERT INTO synapscale_db.analytics_events (event_type, tenant_id, workspace_id) "
                     f"VALUES ('new drift', '{T2}', '{W1}')")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DELETE FROM synapscale_db.workspaces WHERE id = '{W1}'")
    assert one(dsn, "SELECT count(*) FROM synapscale_db.analytics_events WHERE event_type = 'drifted'") == 0


def test_counters_follow_every_write(restructured: str) -> None:
    """Inserts, deletes, moves between parents, NULL parents and watched columns, as the application role."""
    q = "synapscale_db."
    with psycopg.connect(restructured) as conn:
        conn.execute("SET ROLE synapscale_app")
        conn.execute(f"SELECT set_config('app.current_tenant_id', '{T1}', false)")

        def ws(col: str, w: str = W1) -> object:
            return conn.execute(f"SELECT {col} FROM {q}workspaces WHERE id = '{w}'").fetchone()[0]  # type: ignore[index]

        def node(n: str = N1) -> tuple:
            return conn.execute(f"SELECT rating_count, rating_average::text FROM {q}nodes WHERE id = '{n}'").fetchone()  # type: ignore[return-value]

        projects = ws("project_count")
        conn.execute(f"INSERT INTO {q}workspace_projects (workspace_id, tenant_id, name) VALUES "
                     f"('{W1}', '{T1}', 'a'), ('{W1}', '{T1}', 'b'), ('{W1}', '{T1}', 'c')")
        assert ws("project_count") == projects + 3
        conn.execute(f"UPDATE {q}workspace_projects SET workspace_id = '{W2}' WHERE name = 'a'")
        assert (ws("project_count"), ws("project_count", W2)) == (projects + 2, 1)
        conn.execute(f"UPDATE {q}workspace_projects SET description = 'not a watched column' WHERE name = 'b'")
        conn.execute(f"DELETE FROM {q}workspace_projects WHERE name IN ('a', 'b')")
        assert (ws("project_count"), ws("project_count", W2)) == (projects + 1, 0)

        conn.execute(f"INSERT INTO {q}node_ratings (node_id, user_id, tenant_id, rating) VALUES "
                     f"('{N1}', '{U1}', '{T1}', 5), ('{N1}', '{U2}', '{T1}', 2)")
        assert node() == (2, "3.50")
        conn.execute(f"UPDATE {q}node_ratings SET rating = 4 WHERE user_id = '{U2}'")
        assert node() == (2, "4.50")
        conn.execute(f"UPDATE {q}node_ratings SET node_id = '{N2}' WHERE user_id = '{U1}'")
        assert (node(), node(N2)) == ((1, "4.00"), (1, "5.00"))
        conn.execute(f"DELETE FROM {q}node_ratings WHERE user_id = '{U2}'")
        assert node() == (0, "0.00")

        storage = ws("storage_used_mb")
        conn.execute(f"INSERT INTO {q}files (tenant_id, workspace_id, user_id, filename, file_path, file_size) VALUES "
                     f"('{T1}', NULL, '{U1}', 'loose', '/loose', 3145728), ('{T1}', '{W1}', '{U1}', 'kept', '/kept', 1048576)")
        assert ws("storage_used_mb") == storage + 1
        conn.execute(f"UPDATE {q}files SET workspace_id = '{W1}' WHERE filename = 'loose'")  # NULL -> a parent
        assert ws("storage_used_mb") == storage + 4
        conn.execute(f"UPDATE {q}files SET file_size = 2097152 WHERE filename = 'kept'")
        assert ws("storage_used_mb") == storage + 5
        conn.execute(f"UPDATE {q}files SET workspace_id = NULL WHERE filename = 'kept'")  # a parent -> NULL
        assert ws("storage_used_mb") == storage + 3
        conn.execute("RESET ROLE")
        assert drifted_counters(conn) == []
        conn.rollback()


def race(dsn: str, first_sql: str, second_sql: str) -> None:
    """``first_sql`` in an open transaction, ``second_sql`` in another one that must wait for it (a lock), then
    both commit, the first first."""
    with psycopg.connect(dsn) as first, psycopg.connect(dsn) as second:
        first.execute(first_sql)  # type: ignore[arg-type]
        pid, errors = second.info.backend_pid, []

        def write() -> None:
            try:
                second.execute(second_sql)  # type: ignore[arg-type]
                second.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        worker = threading.Thread(target=write)
        worker.start()
        waited = False
        for _ in range(250):
            if one(dsn, f"SELECT wait_event_type FROM pg_stat_activity WHERE pid = {pid}") == "Lock":
                waited = True
                break
            time.sleep(0.02)
        first.commit()
        worker.join(30)
        assert waited and not worker.is_alive() and not errors, errors


def test_concurrent_writes_keep_counters_exact(restructured: str) -> None:
    """Two transactions adding children to one parent at once: the second waits on the parent row, then counts
    the first's child too (a recount in its own earlier snapshot would miss it: the counter one short)."""
    q = "synapscale_db."
    with psycopg.connect(restructured) as conn:
        members = [r[0] for r in conn.execute(f"SELECT id FROM {q}users WHERE email LIKE 'member%' ORDER BY email")]
    member = f"INSERT INTO {q}workspace_members (workspace_id, user_id, tenant_id) VALUES ('{W1}', '{{}}', '{T1}')"
    race(restructured, member.format(members[0]), member.format(members[1]))
    rating = f"INSERT INTO {q}node_ratings (node_id, user_id, tenant_id, rating) VALUES ('{N1}', '{{}}', '{T1}', {{}})"
    race(restructured, rating.format(members[0], 5), rating.format(members[1], 2))
    with psycopg.connect(restructured) as conn:
        assert drifted_counters(conn) == []
        row = conn.execute(f"SELECT rating_count, rating_average::text FROM {q}nodes WHERE id = '{N1}'").fetchone()
        assert row == (2, "3.50")
        conn.execute(f"DELETE FROM {q}node_ratings WHERE user_id = ANY(%s)", (members[:2],))
        conn.execute(f"DELETE FROM {q}workspace_members WHERE user_id = ANY(%s)", (members[:2],))
        conn.commit()
        assert drifted_counters(conn) == []


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
