"""foundation: tenant context, application role, quarantine/undo/archive tables, shared functions.

What every group revision needs first (spec: G5 tenant context and application role, G1 quarantine,
G9 archive audit):
- ``current_tenant_id()``: the target's tenant setting (``app.current_tenant_id``) read with missing_ok, NULL when absent or empty
  (fail closed: no tenant context, no rows);
- role ``synapscale_app``: LOGIN, not superuser, not BYPASSRLS, owns nothing (cluster-wide, so
  created only if missing);
- ``migration_quarantine`` (values the restructure could not keep as they were, and drift it found),
  ``migration_undo`` (old values of data moves, for the downgrades), ``migration_archive`` (G9 audit);
- ``jsonb_accepts``/``json_sanitize``/``json_to_jsonb`` (G1).

The G7/G8 trigger functions are not here: each group generates one per guard and per counter, with
static SQL (``ops.guard_function_sql``, ``ops.counter_function_sql``), and drops them on downgrade.

Revision ID: foundation
Revises:
"""

from __future__ import annotations

from synapscale.migrations import ops

revision = "foundation"
down_revision = None
branch_labels = None
depends_on = None


def functions(target: ops.Target) -> str:
    """The shared functions, in the run's schema (env.py's target): computed when the revision runs."""
    S = target.schema
    return f"""
CREATE OR REPLACE FUNCTION {S}.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT {target.tenant_context}
$$;

CREATE OR REPLACE FUNCTION {S}.jsonb_accepts(txt text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM txt::jsonb;
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN false;
END $$;

-- What jsonb can keep of a json text it rejects: \\u0000 escapes removed, lone high surrogates
-- replaced by U+FFFD, numbers beyond numeric's range turned into strings; JSON null as a last resort.
-- Callers quarantine the original text first.
CREATE OR REPLACE FUNCTION {S}.json_sanitize(txt text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text := txt;
    prev text;
BEGIN
    BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN NULL; END;
    LOOP
        prev := t;
        t := regexp_replace(t, '(^|[^\\\\])((\\\\\\\\)*)\\\\u0000', '\\1\\2', 'g');
        EXIT WHEN t = prev;
    END LOOP;
    BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN NULL; END;
    t := regexp_replace(t, '\\\\u[dD][89abAB][0-9a-fA-F]{{2}}(?!\\\\u[dD][c-fC-F])', '\\\\ufffd', 'g');
    BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN NULL; END;
    t := regexp_replace(t, '(-?[0-9]+(\\.[0-9]+)?[eE][+-]?[0-9]{{5,}})', '"\\1"', 'g');
    BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN NULL; END;
    RETURN 'null'::jsonb;
END $$;

CREATE OR REPLACE FUNCTION {S}.json_to_jsonb(j json) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN j::text ~ '{ops.JSONB_SUSPECT}' AND NOT {S}.jsonb_accepts(j::text)
                THEN {S}.json_sanitize(j::text) ELSE j::jsonb END
$$;
"""


def tables(S: str) -> str:
    """The audit tables in schema ``S``."""
    return f"""
CREATE TABLE IF NOT EXISTS {S}.migration_quarantine (
    id              bigserial PRIMARY KEY,
    table_name      text NOT NULL,
    primary_key     text,
    column_name     text,
    original_text   text,
    reason          text NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_migration_quarantine_table_reason ON {S}.migration_quarantine (table_name, reason);

CREATE TABLE IF NOT EXISTS {S}.migration_undo (
    id           bigserial PRIMARY KEY,
    table_name   text NOT NULL,
    primary_key  text,
    column_name  text,
    old_value    text,
    kind         text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_migration_undo_table_kind ON {S}.migration_undo (table_name, kind);

CREATE TABLE IF NOT EXISTS {S}.migration_archive (
    id             bigserial PRIMARY KEY,
    table_name     text NOT NULL,
    row_count      bigint NOT NULL,
    restored_rows  bigint NOT NULL,
    file_path      text NOT NULL,
    sha256         text NOT NULL,
    revision       text NOT NULL,
    archived_at    timestamptz NOT NULL DEFAULT now(),
    archived_by    text NOT NULL DEFAULT current_user
);
"""


def upgrade() -> None:
    ops.begin()
    ops.run(f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ops.APP_ROLE}') THEN
            CREATE ROLE {ops.APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        END IF;
    END $$""")
    ops.run(f"ALTER ROLE {ops.APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    ops.run(tables(ops.schema()))
    ops.run(functions(ops.target()))
    ops.grant_app()


def downgrade() -> None:
    ops.begin()
    S = ops.schema()
    # a G7/G8 trigger function its group's downgrade left behind (a table gone, a renamed group)
    ops.run(f"""DO $$ DECLARE f regprocedure; BEGIN
        FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = '{S}'::regnamespace
                 AND p.prorettype = 'trigger'::regtype AND p.proname ~ '(_tenant_guard|_sync_.*_counters)$' LOOP
            EXECUTE format('DROP FUNCTION %s', f);
        END LOOP;
    END $$""")
    for fn in (
        "sync_counters()",  # the generic G7/G8 functions of earlier versions of this revision
        "enforce_parent_tenant()",
        "json_to_jsonb(json)",
        "json_sanitize(text)",
        "jsonb_accepts(text)",
        "current_tenant_id()",
    ):
        ops.run(f"DROP FUNCTION IF EXISTS {S}.{fn}")
    for t in ("migration_archive", "migration_undo", "migration_quarantine"):
        ops.run(f"DROP TABLE IF EXISTS {S}.{t}")
    ops.run(f"REVOKE ALL ON ALL TABLES IN SCHEMA {S} FROM {ops.APP_ROLE}")
    ops.run(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {S} FROM {ops.APP_ROLE}")
    ops.run(f"REVOKE ALL ON SCHEMA {S} FROM {ops.APP_ROLE}")
    # the role is cluster-wide: other databases may still use it, then it stays
    ops.run(f"""DO $$ BEGIN DROP ROLE IF EXISTS {ops.APP_ROLE};
        EXCEPTION WHEN dependent_objects_still_exist OR object_in_use THEN NULL; END $$""")
