"""rbac's data moves by hand (contract.yaml `moves:`): roles' permission lists into rbac_role_permissions, and a
new NOT NULL scope on roles and permissions.

The json list becomes rows (unknown keys quarantined); the list stays for the old application until the
contract, kept in sync both ways (``ops.Carried``). ``scope`` follows tenant_id (the spec's CHECK); a row the old
application writes gets it by a trigger (``Table.filled``).
"""

from __future__ import annotations

from functools import partial

from synapscale.migrations import ops

R, P, RP = ops.q("rbac_roles"), ops.q("rbac_permissions"), ops.q("rbac_role_permissions")
KEYS = "json_array_elements_text(CASE WHEN json_typeof(NEW.permissions) = 'array' THEN NEW.permissions ELSE '[]' END) k(key)"
GRANTED = f"(SELECT coalesce(json_agg(p.key ORDER BY p.key), '[]'::json) FROM {RP} x JOIN {P} p ON p.id = x.permission_id " \
          "WHERE x.role_id = {role})"
# rbac_roles.permissions for the old application until the contract: a list it writes becomes the role's rows (known
# keys; an unknown key stays in its text only, as the data move quarantines it); a row the new application grants
# or revokes rewrites the list. The other side's trigger writes are not synced back (pg_trigger_depth).
PERMISSIONS = ops.Carried(
    "permissions", "json",
    sync=("DECLARE\n    role uuid;\nBEGIN\n"
          "    IF pg_trigger_depth() > 1 THEN\n        RETURN NULL;\n    END IF;\n"
          "    IF TG_TABLE_NAME = 'rbac_roles' THEN\n"
          "        IF TG_OP = 'UPDATE' AND NEW.permissions::text IS NOT DISTINCT FROM OLD.permissions::text THEN\n"
          "            RETURN NULL;\n        END IF;\n"
          f"        DELETE FROM {RP} x WHERE x.role_id = NEW.id AND x.permission_id NOT IN "
          f"(SELECT p.id FROM {P} p JOIN {KEYS} ON p.key = k.key);\n"
          f"        INSERT INTO {RP} (role_id, permission_id, granted_at) SELECT DISTINCT NEW.id, p.id, now() FROM {P} p "
          f"JOIN {KEYS} ON p.key = k.key ON CONFLICT (role_id, permission_id) DO NOTHING;\n"
          "        RETURN NULL;\n    END IF;\n"
          "    IF TG_OP = 'DELETE' THEN\n        role := OLD.role_id;\n    ELSE\n        role := NEW.role_id;\n    END IF;\n"
          f"    UPDATE {R} SET permissions = {GRANTED.format(role='role')} WHERE id = role;\n"
          "    RETURN NULL;\nEND"),
    restore=(f"UPDATE {R} r SET permissions = {GRANTED.format(role='r.id')} WHERE r.permissions IS NULL "
             f"AND EXISTS (SELECT 1 FROM {RP} x WHERE x.role_id = r.id)",),
    on=(("rbac_roles", "AFTER INSERT OR UPDATE"), ("rbac_role_permissions", "AFTER INSERT OR UPDATE OR DELETE")),
)

# scope follows tenant_id (the spec's CHECK): a role or permission the old application writes gets it by a trigger
SCOPE = (("scope", "CASE WHEN NEW.tenant_id IS NULL THEN 'global' ELSE 'tenant' END"),)
SCOPED = ("rbac_roles", "rbac_permissions")

# (role, key) pairs of the legacy json list; a value that is not a list of strings is reported whole
PAIRS = (
    f"SELECT r.id AS role_id, k.key FROM {R} r CROSS JOIN LATERAL json_array_elements_text(r.permissions) k(key) "
    "WHERE json_typeof(r.permissions) = 'array'"
)


def up(group: ops.Group) -> None:
    """rbac_roles.permissions kept in sync with rbac_role_permissions, its pairs carried there (unknown keys
    quarantined); scope added."""
    ops.step(partial(carry_permissions, group.table("rbac_roles")), "rbac_role_permissions", "rbac_roles")
    for name in SCOPED:
        ops.step(partial(add_scope, group.table(name)), name)


def carry_permissions(roles: ops.Table) -> None:
    """The pairs move, then the sync starts, in one short transaction: the pairs inserted by the move must not
    rewrite the lists they came from (a rerun inserts only what is missing)."""
    if ops.has_column("rbac_roles", "permissions"):
        ops.quarantine(
            "rbac_roles",
            "permissions",
            "unknown_permission",
            f"SELECT x.role_id, x.key FROM ({PAIRS}) x WHERE NOT EXISTS (SELECT 1 FROM {P} p WHERE p.key = x.key)",
        )
        ops.quarantine(
            "rbac_roles",
            "permissions",
            "unparseable_permissions",
            f"SELECT id, permissions::text FROM {R} WHERE permissions IS NOT NULL AND json_typeof(permissions) <> 'array'",
        )
        ops.journal(
            "rbac_role_permissions",
            "id",
            "rp_inserted",
            f"INSERT INTO {RP} (role_id, permission_id, granted_at) SELECT DISTINCT x.role_id, p.id, now() "
            f"FROM ({PAIRS}) x JOIN {P} p ON p.key = x.key ON CONFLICT (role_id, permission_id) DO NOTHING "
            "RETURNING id, NULL::text",
        )
        ops.sync_carried(roles, PERMISSIONS)


def add_scope(table: ops.Table) -> None:
    """scope, filled, NOT NULL and checked, and the old application's writes filled by a trigger, in one short
    transaction (role tables are small); idempotent."""
    t, tq = table.name, ops.q(table.name)
    ops.run(f"ALTER TABLE {tq} ADD COLUMN IF NOT EXISTS scope text")
    ops.run(f"UPDATE {tq} SET scope = CASE WHEN tenant_id IS NULL THEN 'global' ELSE 'tenant' END WHERE scope IS NULL")
    ops.run(f"ALTER TABLE {tq} ALTER COLUMN scope SET NOT NULL")
    ops.run(f"ALTER TABLE {tq} DROP CONSTRAINT IF EXISTS {t}_scope_check")
    ops.run(
        f"ALTER TABLE {tq} ADD CONSTRAINT {t}_scope_check CHECK (scope IN ('global', 'tenant') "
        "AND (scope = 'global') = (tenant_id IS NULL))"
    )
    ops.fill_new(table)


def down(group: ops.Group) -> None:
    """The pairs the upgrade added are removed; the json list never left (the contract's downgrade puts it back)."""
    for t in SCOPED:
        ops.run(f"ALTER TABLE {ops.q(t)} DROP COLUMN IF EXISTS scope")
    ops.run(
        f"DELETE FROM {RP} x USING {ops.q('migration_undo')} j WHERE j.table_name = 'rbac_role_permissions' "
        "AND j.kind = 'rp_inserted' AND x.id::text = j.primary_key"
    )
    ops.forget("rbac_role_permissions", "rp_inserted")


# the contract revision drops permissions
MOVES = ops.Moves(up, down, {"rbac_roles": {"carried": (PERMISSIONS,), "filled": SCOPE}, "rbac_permissions": {"filled": SCOPE}})
