"""G6 GIN indexes: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from synapscale.migrations.ops.declarations import Gin, log
from synapscale.migrations.ops.plumbing import autocommit, concurrently, exists_table, has_column, q, run, scalar, schema, tenant

# The containment operators the GIN indexes serve. Under RLS the planner may use a condition as an
# index condition only when its function is LEAKPROOF (else it could see other tenants' rows before
# the policy filters them); PostgreSQL does not mark these two, so under the application role every
# GIN index was unusable. Neither raises on any value of its arguments nor reveals anything but its
# result. Marking them takes a superuser and is per database; pg_dump and pg_upgrade do not carry it
# (docs/decisions.md "GIN under RLS").
CONTAINMENT = {"jsonb": "pg_catalog.jsonb_contains(jsonb, jsonb)", "array": "pg_catalog.arraycontains(anyarray, anyarray)"}


def _containment(g: Gin) -> str | None:
    """The containment function of the GIN index's column type (jsonb or an array), if one of ours."""
    kind = scalar("SELECT CASE WHEN t.typcategory = 'A' THEN 'array' ELSE t.typname END FROM pg_attribute a "
                  "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = %(t)s::regclass AND a.attname = %(c)s",
                  {"t": q(g.table), "c": g.column})
    return CONTAINMENT.get(str(kind))


def _leakproof(functions: Iterable[str], on: bool) -> None:
    if not scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        log.warning("not a superuser: %s left as they are; under RLS the GIN indexes stay unusable to the "
                    "application (docs/decisions.md, GIN under RLS)", ", ".join(functions))
        return
    for f in functions:
        run(f"ALTER FUNCTION {f} {'' if on else 'NOT '}LEAKPROOF")


def apply_gin(indexes: Sequence[Gin]) -> None:
    """CREATE INDEX CONCURRENTLY outside any transaction; a leftover invalid index is rebuilt.

    On a tenant table the index leads with the tenant column (btree_gin): every application query is
    tenant-scoped, and a GIN posting list of the whole table for a common value (a widget type, a
    tag) costs more than the tenant's rows it is intersected with. Measured at small under RLS: the
    widget-type lookup went 0.024 -> 0.083 ms through a plain GIN index, 0.018 ms through this one.
    """
    if not indexes:
        return
    with autocommit():
        tenant_led = {g.table: has_column(g.table, tenant()) for g in indexes}
        _leakproof(sorted({f for f in map(_containment, indexes) if f}), on=True)
        if any(tenant_led.values()):
            run("CREATE EXTENSION IF NOT EXISTS btree_gin WITH SCHEMA public")
        for g in indexes:
            columns = f"{tenant()}, {g.column}" if tenant_led[g.table] else g.column
            concurrently(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {g.name} ON {q(g.table)} USING gin ({columns})",
                         g.table, g.name)


def revert_gin(indexes: Sequence[Gin]) -> None:
    """Drop the indexes; the containment functions lose LEAKPROOF with the schema's last GIN index.
    btree_gin stays installed: it may have been there before, and it changes nothing by itself."""
    kinds = {f for g in indexes if exists_table(g.table) and (f := _containment(g))}
    for g in indexes:
        run(f"DROP INDEX IF EXISTS {schema()}.{g.name}")
    remaining = scalar("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a "
                       "ON a.oid = c.relam WHERE a.amname = 'gin' AND c.relnamespace = %(s)s::regnamespace",
                       {"s": schema()})
    if kinds and not remaining:
        _leakproof(sorted(kinds), on=False)
