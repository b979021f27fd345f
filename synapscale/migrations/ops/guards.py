"""G7 child tenant = parent tenant: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

from functools import partial

from synapscale.migrations.ops.declarations import CASCADE, Table, log
from synapscale.migrations.ops.plumbing import (
    autocommit,
    concurrently,
    lit,
    q,
    quarantine,
    run,
    scalar,
    schema,
    step,
    tenant,
)


def guard_name(table: str, column: str) -> str:
    return f"{table}_{column}_tenant_guard"[:63]


def guard_function(table: str, column: str) -> str:
    """The guard's own trigger function, named like its trigger."""
    return f"{schema()}.{guard_name(table, column)}"


def guard_function_sql(table: str, column: str, parent: str) -> str:
    """One guard's trigger function: the parent lookup is static SQL, planned once per session.

    A child row must carry its parent's tenant; a missing tenant is taken from the parent, a parent
    the caller cannot see (RLS) is refused like a foreign one. SECURITY INVOKER, so the caller's RLS
    decides what "visible" means.
    """
    tc = tenant()
    return (
        f"CREATE OR REPLACE FUNCTION {guard_function(table, column)}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "DECLARE\n    parent_tenant uuid;\n    seen boolean;\nBEGIN\n"
        f"    IF NEW.{column} IS NULL THEN\n        RETURN NEW;\n    END IF;\n"
        f"    SELECT p.{tc}, true INTO parent_tenant, seen FROM {q(parent)} p WHERE p.id = NEW.{column};\n"
        f"    IF NEW.{tc} IS NULL AND seen THEN\n        NEW.{tc} := parent_tenant;\n"
        f"    ELSIF seen IS NOT TRUE OR parent_tenant IS DISTINCT FROM NEW.{tc} THEN\n"
        f"        RAISE EXCEPTION '%.{tc} % differs from the tenant of %.% %', TG_TABLE_NAME, NEW.{tc},\n"
        f"            {lit(parent)}, {lit(column)}, NEW.{column} USING ERRCODE = 'check_violation';\n"
        "    END IF;\n    RETURN NEW;\nEND $$"
    )


def apply_guards(t: Table) -> None:
    """A trigger rejects any new drift, then legacy drift is reported (reason 'tenant_drift').

    Trigger first (a short SHARE ROW EXCLUSIVE transaction), report after (a scan without a table
    lock): no drift can slip in between. Drifted rows are left where they are: their own tenant_id
    keeps RLS from showing them to the parent's tenant, so reporting them leaks nothing, while
    "fixing" them could. Each (table, column) gets its own function (:func:`guard_function_sql`), not
    even called for a row without a parent (the trigger's WHEN). Columns of ``t.tenant_keys`` get a
    composite FK instead (:func:`apply_tenant_keys`).
    """
    for col, parent in t.parents:
        if col in t.tenant_keys:
            continue
        name = guard_name(t.name, col)
        step("; ".join((
            guard_function_sql(t.name, col, parent), f"DROP TRIGGER IF EXISTS {name} ON {q(t.name)}",
            f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE OF {tenant()}, {col} ON {q(t.name)} FOR EACH ROW "
            f"WHEN (NEW.{col} IS NOT NULL) EXECUTE FUNCTION {guard_function(t.name, col)}()")),
             t.name, mode="SHARE ROW EXCLUSIVE")
        step(partial(_report_drift, t.name, col, parent))


def _report_drift(table: str, col: str, parent: str) -> int:
    """Quarantine-report the rows whose tenant differs from their parent's (reason 'tenant_drift')."""
    tc = tenant()
    return quarantine(table, col, "tenant_drift",
                      f"SELECT c.id, json_build_object({lit(tc)}, c.{tc}, {lit(col)}, c.{col}, "
                      f"{lit('parent_' + tc)}, p.{tc})::text FROM {q(table)} c JOIN {q(parent)} p ON p.id = c.{col} "
                      f"WHERE c.{tc} IS DISTINCT FROM p.{tc}")


def tenant_key_name(table: str, column: str) -> str:
    return f"{table}_{column}_tenant_fkey"[:63]


def parent_key_name(parent: str) -> str:
    return f"{parent}_id_{tenant()}_key"[:63]


def apply_tenant_keys(t: Table) -> None:
    """G7 by a composite FK ``(column, tenant_id) -> parent (id, tenant_id)`` for the columns of ``t.tenant_keys``.

    A guard trigger looks up the parent row that the column's FK check looks up again: on an event
    insert at small the guard was +0.15-0.19 of the legacy time and 4 of the 8 extra blocks per row,
    where the composite FK's one RI lookup (C, no PL/pgSQL, no RLS) was nearly free; on an UPDATE that
    sets neither column (the execution status) a BEFORE UPDATE row trigger still locks and fetches the
    old row, +0.03-0.04 of the legacy time and 5 blocks per 5 updates at small. It needs a
    unique ``(id, tenant_id)`` on the parent (built CONCURRENTLY), and the FK refuses what the guard
    refused, plus a parent moving to another tenant under its children. It does not fill a missing
    tenant_id from the parent (nothing relies on that on these tables: the application sets it, and
    RLS requires it). The single-column FK stays: it carries the ON DELETE action for every row,
    including drifted legacy rows, which the composite key does not match; so the composite FK must
    CASCADE too. Added NOT VALID (a short lock), drift reported like the guards', and VALIDATEd only
    when there is none: drifted rows are reported, never moved, and would fail the validation.
    """
    fks = {fk.column: fk for fk in t.fks}
    for col in t.tenant_keys:
        parent = dict(t.parents)[col]
        if col in fks and fks[col].on_delete != CASCADE:  # not redeclared: already CASCADE (the planner checks)
            raise ValueError(f"{t.name}.{col}: a composite tenant FK must CASCADE like its column's FK, not {fks[col].on_delete}")
        name, key = tenant_key_name(t.name, col), parent_key_name(parent)
        with autocommit():
            concurrently(f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {key} ON {q(parent)} (id, {tenant()})", parent, key)
        if not scalar("SELECT 1 FROM pg_constraint WHERE conrelid = %(t)s::regclass AND conname = %(n)s",
                      {"t": q(t.name), "n": name}):
            step(f'ALTER TABLE {q(t.name)} ADD CONSTRAINT "{name}" FOREIGN KEY ({col}, {tenant()}) '
                 f"REFERENCES {q(parent)} (id, {tenant()}) ON DELETE CASCADE NOT VALID",
                 t.name, parent, mode="SHARE ROW EXCLUSIVE")
        drifted = step(partial(_report_drift, t.name, col, parent))  # counts rows a rerun finds recorded too
        if drifted:
            log.warning("%s: %s rows drift from their %s tenant; %s stays NOT VALID (docs/decisions.md)",
                        t.name, drifted, parent, name)
        else:
            step(f'ALTER TABLE {q(t.name)} VALIDATE CONSTRAINT "{name}"')


def revert_tenant_keys(t: Table) -> None:
    for col in t.tenant_keys:
        run(f'ALTER TABLE {q(t.name)} DROP CONSTRAINT IF EXISTS "{tenant_key_name(t.name, col)}"')
        key = parent_key_name(dict(t.parents)[col])
        if not scalar("SELECT 1 FROM pg_constraint WHERE conindid = to_regclass(%(k)s)", {"k": f"{schema()}.{key}"}):
            run(f"DROP INDEX IF EXISTS {schema()}.{key}")


def revert_guards(t: Table) -> None:
    for col, _ in t.parents:
        run(f"DROP TRIGGER IF EXISTS {guard_name(t.name, col)} ON {q(t.name)}")
        run(f"DROP FUNCTION IF EXISTS {guard_function(t.name, col)}()")
