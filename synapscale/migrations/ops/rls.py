"""G5 tenant column + RLS: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from synapscale.migrations.ops.declarations import GLOBAL, REQUIRED, Policy, Table, target
from synapscale.migrations.ops.jsonb import _plain_indexes
from synapscale.migrations.ops.plumbing import (
    autocommit,
    concurrently,
    exists_table,
    forget,
    is_not_null,
    journal,
    lit,
    q,
    quarantine,
    run,
    run_all,
    schema,
    step,
    tenant,
)


def set_not_null(table: str, column: str) -> None:
    """SET NOT NULL without a scan under ACCESS EXCLUSIVE: a validated CHECK proves it first (PG 12+).

    Three short transactions: add the CHECK NOT VALID, VALIDATE it (SHARE UPDATE EXCLUSIVE), then
    SET NOT NULL (no scan, the check proves it) and drop the check. Idempotent.
    """
    if is_not_null(table, column):
        return
    ck = f"{table}_{column}_nn"[:63]
    step(f"ALTER TABLE {q(table)} DROP CONSTRAINT IF EXISTS {ck}, "
         f"ADD CONSTRAINT {ck} CHECK ({column} IS NOT NULL) NOT VALID", table)
    step(f"ALTER TABLE {q(table)} VALIDATE CONSTRAINT {ck}")
    # two statements, not one ALTER: an ALTER drops first, and SET NOT NULL without the check scans under the lock
    step(f"ALTER TABLE {q(table)} ALTER COLUMN {column} SET NOT NULL; ALTER TABLE {q(table)} DROP CONSTRAINT {ck}", table)


def apply_tenant(t: Table) -> None:
    """The tenant column: derived from the parent where NULL, then NOT NULL if nothing is left; then RLS forced.

    The backfill and the check for leftovers take no table lock beyond their writes; the policies
    swap in one short transaction (RLS is never enabled without its policies).
    """
    if t.tenant is None:
        return
    tc = tenant()
    if t.tenant == REQUIRED and not t.tenant_was_not_null:
        for col, parent in t.parents:
            if parent == t.name:
                continue
            step(partial(
                journal, t.name, tc, "tenant_backfill",
                f"UPDATE {q(t.name)} c SET {tc} = p.{tc} FROM {q(parent)} p WHERE c.{tc} IS NULL "
                f"AND c.{col} = p.id AND p.{tc} IS NOT NULL RETURNING c.id, NULL::text"))
        missing = step(lambda: quarantine(t.name, tc, "tenant_missing",
                                          f"SELECT id, NULL::text FROM {q(t.name)} WHERE {tc} IS NULL"))
        if not missing:
            set_not_null(t.name, tc)
    step(lambda: _policies(t), t.name)


def add_tenant_column(t: Table) -> None:
    """A table that gains its tenant column: nullable (no rewrite, NULL = global) and indexed, in one short step.

    Only a GLOBAL table gains one: a REQUIRED tenant needs a source of data, which a person states."""
    if not t.tenant_added:
        return
    if t.tenant != GLOBAL:
        raise ValueError(f"{t.name}: only a GLOBAL table gains its tenant column (NULL = global), not {t.tenant}")
    index = f"ix_{t.name}_{tenant()}"[:63]
    step(f"ALTER TABLE {q(t.name)} ADD COLUMN IF NOT EXISTS {tenant()} uuid; "
         f'CREATE INDEX IF NOT EXISTS "{index}" ON {q(t.name)} ({tenant()})', t.name)


def drop_added_tenant_column(t: Table) -> None:
    if t.tenant_added and exists_table(t.name):
        run(f"ALTER TABLE {q(t.name)} DROP COLUMN IF EXISTS {tenant()}")


def partitions(table: str) -> list[str]:
    """The partitions of ``table``, at every level: a query naming one directly skips the parent's policies."""
    return [r[0] for r in run(
        "WITH RECURSIVE p(oid) AS (SELECT inhrelid FROM pg_inherits WHERE inhparent = %(t)s::regclass "
        "UNION SELECT i.inhrelid FROM pg_inherits i JOIN p ON i.inhparent = p.oid) "
        "SELECT c.relname::text FROM p JOIN pg_class c ON c.oid = p.oid ORDER BY 1", {"t": q(table)})]


def _policies(t: Table) -> None:
    """The four tenant policies, RLS enabled and forced: on the table and on each of its partitions."""
    tc = tenant()
    mine = f"{tc} = {target().tenant_context}"
    visible = f"({mine} OR {tc} IS NULL)" if t.tenant == GLOBAL else mine
    for name in (t.name, *partitions(t.name)):
        run_all(*_drop_policies(name), f"ALTER TABLE {q(name)} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
                f"CREATE POLICY {name}_tenant_select ON {q(name)} FOR SELECT USING ({visible})",
                f"CREATE POLICY {name}_tenant_insert ON {q(name)} FOR INSERT WITH CHECK ({mine})",
                f"CREATE POLICY {name}_tenant_update ON {q(name)} FOR UPDATE USING ({mine}) WITH CHECK ({mine})",
                f"CREATE POLICY {name}_tenant_delete ON {q(name)} FOR DELETE USING ({mine})")


def _drop_policies(table: str) -> list[str]:
    """The statements dropping every policy ``table`` has now."""
    return [f'DROP POLICY "{pol}" ON {q(table)}'
            for (pol,) in run("SELECT polname FROM pg_policy WHERE polrelid = %(t)s::regclass", {"t": q(table)})]


def revert_tenant(t: Table) -> None:
    """Back to the legacy RLS state; partitions back to none (the planner leaves a partition with RLS of its own
    to a person)."""
    if t.tenant is None:
        return
    for name in partitions(t.name):
        run_all(*_drop_policies(name), f"ALTER TABLE {q(name)} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY")
    legacy = t.legacy_name or t.name
    run_all(*_drop_policies(t.name), f"ALTER TABLE {q(t.name)} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY",
            *([f"ALTER TABLE {q(t.name)} ENABLE ROW LEVEL SECURITY"] if t.legacy_rls else []),
            *([f"ALTER TABLE {q(t.name)} FORCE ROW LEVEL SECURITY"] if t.legacy_rls == "forced" else []),
            *(create_policy_sql(t.name, p) for p in t.legacy_policies),
            *([f"CREATE POLICY {legacy}_tenant_isolation ON {q(t.name)} "
               f"USING ({tenant()} = current_setting({lit(target().tenant_setting)})::uuid)"]
              if t.legacy_rls == "policy" else []))
    if not t.tenant_was_not_null:
        run(f"ALTER TABLE {q(t.name)} ALTER COLUMN {tenant()} DROP NOT NULL")
        run(f"UPDATE {q(t.name)} x SET {tenant()} = NULL FROM {q('migration_undo')} u WHERE u.table_name = %(t)s "
            f"AND u.kind = 'tenant_backfill' AND x.id::text = u.primary_key", {"t": t.name})
        forget(t.name, "tenant_backfill")


def create_policy_sql(table: str, p: Policy) -> str:
    """``CREATE POLICY`` for a policy frozen from the catalog (its expressions as pg_get_expr printed them)."""
    roles = ", ".join(r if r == "public" else f'"{r}"' for r in p.roles)
    sql = (f'CREATE POLICY "{p.name}" ON {q(table)} AS {"PERMISSIVE" if p.permissive else "RESTRICTIVE"} '
           f"FOR {p.command} TO {roles}")
    if p.using is not None:
        sql += f" USING ({p.using})"
    if p.with_check is not None:
        sql += f" WITH CHECK ({p.with_check})"
    return sql


@dataclass(frozen=True)
class WideIndex:
    """One of ``Table.indexes``, e.g. ``tenant_id, created_at DESC INCLUDE model, cost_usd``, parsed once."""

    name: str  # ix_<table>_<every column, key and included>
    key: tuple[str, ...]  # key column names, in order: the plain indexes these lead are replaced
    sql: str  # (tenant_id, created_at DESC) INCLUDE (model, cost_usd)
    descending: tuple[bool, ...]  # per key column (the contract's T-INDEX compares it with the catalog's)
    include: tuple[str, ...]  # the INCLUDE columns

    @classmethod
    def of(cls, table: str, columns: str) -> WideIndex:
        key, _, include = columns.partition(" INCLUDE ")
        keys = [c.split() for c in key.split(",")]
        included = tuple(c.strip() for c in include.split(",") if c.strip())
        return cls(f"ix_{table}_" + "_".join([k[0] for k in keys] + list(included))[:63 - len(table) - 4],
                   tuple(k[0] for k in keys), f"({key})" + (f" INCLUDE ({include})" if include else ""),
                   tuple(any(w.upper() == "DESC" for w in k[1:]) for k in keys), included)

    def replaces(self, name: str, definition: str, columns: tuple[str, ...]) -> bool:
        """A plain B-tree index whose columns lead this one's key: this one serves every read it served."""
        return name != self.name and columns == self.key[:len(columns)] and " USING btree " in definition


def apply_indexes(t: Table) -> None:
    """Each of ``t.indexes`` in place of the plain indexes whose columns lead it, both CONCURRENTLY.

    Under RLS every query carries ``tenant_id = ...``; with an index per column the planner ANDs two
    bitmaps (the costs tie) and sorts, where one descent of a wider index finds the rows in order: a
    conversation's messages at small read 62 blocks instead of 52 and took 1.17x the legacy time, 1.01x
    with ``(tenant_id, conversation_id)``; a tenant's executions by status, newest first, took 1.17x
    through the status and (tenant_id, created_at) bitmaps, 0.84x through ``(status, tenant_id,
    created_at DESC, id)``. The G1/G2/G5 costs of a read (timestamptz output, wider jsonb rows, RLS's
    gating filter) are paid back the same way: a tenant's events in a window read in index order without
    the incremental sort, usage per day from the index alone (INCLUDE). Replacing (not adding) keeps every
    write's index count as it was, and an index that leads with the same columns still serves whatever
    the narrow one served. The dropped definitions are journaled (kind ``index_widened``) for the downgrade.
    """
    with autocommit():
        for wide in (WideIndex.of(t.name, columns) for columns in t.indexes):
            concurrently(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {wide.name} ON {q(t.name)} {wide.sql}", t.name, wide.name)
            for old, definition, _ in [r for r in _plain_indexes(t.name) if wide.replaces(*r)]:
                step(partial(journal, t.name, wide.key[0], "index_widened",
                             f"SELECT {lit(old)}, {lit(definition)} WHERE NOT EXISTS (SELECT 1 FROM {q('migration_undo')} "
                             f"WHERE table_name = {lit(t.name)} AND kind = 'index_widened' AND primary_key = {lit(old)})"))
                concurrently(f'DROP INDEX CONCURRENTLY IF EXISTS {schema()}."{old}"', t.name)


def revert_indexes(t: Table) -> None:
    if not t.indexes or not exists_table(t.name):
        return
    for (definition,) in run(f"SELECT old_value FROM {q('migration_undo')} WHERE table_name = %(t)s AND kind = 'index_widened'",
                             {"t": t.name}):
        run(str(definition).replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
    for columns in t.indexes:
        run(f"DROP INDEX IF EXISTS {schema()}.{WideIndex.of(t.name, columns).name}")
    forget(t.name, "index_widened")


def secure_views(views: Iterable[str]) -> None:
    """``security_invoker`` on views reading tenant tables: the tables' RLS then applies to the view's reader, where
    a view running with its owner's rights shows every tenant's rows (the compatibility views are made so too)."""
    for view in views:
        step(f"ALTER VIEW {q(view)} SET (security_invoker = true)", view)


def revert_views(views: Iterable[str]) -> None:
    for view in views:
        if exists_table(view):
            run(f"ALTER VIEW {q(view)} RESET (security_invoker)")
