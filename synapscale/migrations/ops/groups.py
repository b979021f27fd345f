"""whole groups: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable

from synapscale.migrations.ops.compat import drop_compat_views, expand_columns, expand_tables, revert_columns
from synapscale.migrations.ops.counters import apply_counters, revert_counters
from synapscale.migrations.ops.declarations import Group, Table
from synapscale.migrations.ops.fks import apply_fks, revert_fks
from synapscale.migrations.ops.gin import apply_gin, revert_gin
from synapscale.migrations.ops.guards import apply_guards, apply_tenant_keys, revert_guards, revert_tenant_keys
from synapscale.migrations.ops.jsonb import apply_json_and_time, revert_json_and_time
from synapscale.migrations.ops.plumbing import autocommit, exists_table, grant_app, q, step
from synapscale.migrations.ops.rls import (
    add_tenant_column,
    apply_indexes,
    apply_tenant,
    drop_added_tenant_column,
    revert_indexes,
    revert_tenant,
    revert_views,
    secure_views,
)
from synapscale.migrations.ops.views import is_view


def rename_tables(tables: Iterable[Table], back: bool = False) -> None:
    """Forward: each to its new name with a compatibility view under the old one (the expand). Back: the
    views go (they are dropped first by :func:`downgrade_group`) and the tables take their old names again."""
    if not back:
        expand_tables(tables)
        return
    for t in tables:
        if t.legacy_name and exists_table(t.name):
            step("; ".join((*([f"DROP VIEW {q(t.legacy_name)}"] if is_view(t.legacy_name) else []),
                            f'ALTER TABLE {q(t.name)} RENAME TO "{t.legacy_name}"')), t.name)


def upgrade_group(g: Group) -> None:
    """G1-G5 per table, G7, G8, grants, G6 last; each step a short transaction of its own.

    Leaves the revision's transaction (see :func:`step` for lock order and retries); every step is
    idempotent, so a revision that failed half-way converges when rerun.
    """
    with autocommit():
        for t in g.tables:
            add_tenant_column(t)
            apply_json_and_time(t)
            expand_columns(t)
        for t in g.tables:
            apply_fks(t)
        for t in g.tables:
            apply_tenant(t)
            apply_indexes(t)
        secure_views(g.views)
        for t in g.tables:
            apply_guards(t)
            apply_tenant_keys(t)
        apply_counters(g.counters)
        step(grant_app)
        apply_gin(g.gin)


def downgrade_group(g: Group) -> None:
    """Back to the legacy shape, from the expand state (compatibility objects first) or from the group's own."""
    drop_compat_views(g.tables)
    for t in g.tables:
        revert_columns(t)
    revert_gin(g.gin)
    revert_counters(g.counters)
    for t in g.tables:
        revert_tenant_keys(t)
        revert_guards(t)
    revert_views(g.views)
    for t in g.tables:
        revert_indexes(t)
        revert_tenant(t)
    for t in g.tables:
        revert_fks(t)
    for t in g.tables:
        revert_json_and_time(t)
        drop_added_tenant_column(t)
