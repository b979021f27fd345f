"""data moves shared by several groups, and the loader of a group's hand-written moves (`Moves`): part of the
restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from synapscale.migrations.ops.declarations import Moves
from synapscale.migrations.ops.plumbing import exists_table, forget, journal, q, quarantine, run, step
from synapscale.migrations.ops.rls import set_not_null


def rehome_to_default_workspace(table: str) -> bool:
    """workspace_id NULL -> the tenant's default workspace (created when missing), then NOT NULL.

    Every changed row and every created workspace is journaled for the downgrade; rows whose tenant is
    unknown cannot be re-homed: they are quarantined ('workspace_missing') and the column stays
    nullable. Returns whether NOT NULL was set.
    """
    if step(lambda: _rehome(table)):
        return False
    set_not_null(table, "workspace_id")
    return True


def _rehome(table: str) -> int:
    """The moves of :func:`rehome_to_default_workspace`, atomically; returns how many rows stay homeless."""
    t, ws, utr = q(table), q("workspaces"), q("user_tenant_roles")
    journal(table, "tenant_id", "tenant_backfill",
            f"UPDATE {t} x SET tenant_id = r.tenant_id FROM (SELECT user_id, min(tenant_id::text)::uuid AS tenant_id "
            f"FROM {utr} GROUP BY user_id HAVING count(DISTINCT tenant_id) = 1) r "
            f"WHERE x.workspace_id IS NULL AND x.tenant_id IS NULL AND r.user_id = x.user_id RETURNING x.id, NULL::text")
    journal("workspaces", "id", "default_workspace_created",
            f"INSERT INTO {ws} (tenant_id, owner_id, name, slug, is_default) "
            f"SELECT x.tenant_id, (array_agg(x.user_id ORDER BY x.created_at))[1], 'Default', "
            f"CASE WHEN EXISTS (SELECT 1 FROM {ws} w WHERE w.tenant_id = x.tenant_id AND w.slug = 'default') "
            f"THEN 'default-' || left(md5(random()::text), 8) ELSE 'default' END, true "
            f"FROM {t} x WHERE x.workspace_id IS NULL AND x.tenant_id IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {ws} w WHERE w.tenant_id = x.tenant_id AND w.is_default) "
            f"GROUP BY x.tenant_id RETURNING id, NULL::text")
    journal(table, "workspace_id", "rehomed",
            f"UPDATE {t} x SET workspace_id = d.id FROM (SELECT DISTINCT ON (tenant_id) tenant_id, id FROM {ws} "
            f"WHERE is_default ORDER BY tenant_id, created_at, id) d "
            f"WHERE x.workspace_id IS NULL AND x.tenant_id = d.tenant_id RETURNING x.id, NULL::text")
    return quarantine(table, "workspace_id", "workspace_missing", f"SELECT id, NULL::text FROM {t} WHERE workspace_id IS NULL")


def revert_rehome(table: str) -> None:
    """Re-homed rows get their NULL back; a default workspace the upgrade created goes if nothing uses it."""
    t, ws = q(table), q("workspaces")
    run(f"ALTER TABLE {t} ALTER COLUMN workspace_id DROP NOT NULL")
    run(f"UPDATE {t} x SET workspace_id = NULL FROM {q('migration_undo')} j WHERE j.table_name = %(t)s "
        "AND j.kind = 'rehomed' AND x.id::text = j.primary_key", {"t": table})
    forget(table, "rehomed")
    users = [u for u in ("workflows", "agents") if exists_table(u)]
    unused = " ".join(f"AND NOT EXISTS (SELECT 1 FROM {q(u)} r WHERE r.workspace_id = w.id)" for u in users)
    gone = run(f"DELETE FROM {ws} w USING {q('migration_undo')} j WHERE j.table_name = 'workspaces' "
               f"AND j.kind = 'default_workspace_created' AND w.id::text = j.primary_key {unused} RETURNING w.id::text")
    if gone:
        run(f"DELETE FROM {q('migration_undo')} WHERE table_name = 'workspaces' AND kind = 'default_workspace_created' "
            "AND primary_key = ANY(%(ids)s)", {"ids": [g[0] for g in gone]})


def load_moves(revision_file: str, relative: str) -> Moves:
    """The ``MOVES`` of a hand-written moves file, by its path in the revision's migrations folder.

    By path, not by package: Alembic loads revision files by path too, so a copy of the folder (a seeded defect,
    a plan written elsewhere) runs its own moves, never an installed package's.
    """
    path = Path(revision_file).resolve().parent.parent / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the moves file the contract names for this revision is missing "
                                "(write it there, or take the group's `moves:` out of the contract and plan again)")
    name = f"synapscale_moves_{path.stem}_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass or a pickled value of the module can find it
    spec.loader.exec_module(module)
    moves = getattr(module, "MOVES", None)
    if not isinstance(moves, Moves):
        raise TypeError(f"{path} defines no `MOVES = ops.Moves(up, down, tables)`")
    return moves
