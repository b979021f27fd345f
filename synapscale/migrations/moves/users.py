"""users' data move by hand (contract.yaml `moves:`): users.tenant_id into user_tenant_roles.

Every (user, tenant) pair becomes a membership with the global 'member' role; the column stays for the old
application until the contract, kept in sync both ways (``ops.Carried``).
"""

from __future__ import annotations

from functools import partial

from synapscale.migrations import ops

U, UTR = ops.q("users"), ops.q("user_tenant_roles")
# the role a (user, tenant) pair gets when it only existed as users.tenant_id: the global 'member' role
DEFAULT_ROLE = f"(SELECT id FROM {ops.q('rbac_roles')} WHERE tenant_id IS NULL AND name = 'member' LIMIT 1)"
PAIR = (f"INSERT INTO {UTR} (user_id, tenant_id, role_id, is_active, granted_at) "
        "SELECT {user}, {tenant}, " + DEFAULT_ROLE + ", true, now() {rest} ON CONFLICT (user_id, tenant_id) DO NOTHING")
# users.tenant_id for the old application until the contract: a tenant it writes becomes a membership; the first
# membership of a user without one (a user the new application created) becomes its tenant_id
TENANT = ops.Carried(
    "tenant_id", "uuid",
    sync=("BEGIN\n"
          "    IF TG_TABLE_NAME = 'users' THEN\n"
          "        IF NEW.tenant_id IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN\n"
          "            " + PAIR.format(user="NEW.id", tenant="NEW.tenant_id", rest="") + ";\n"
          "        END IF;\n"
          "    ELSE\n"
          f"        UPDATE {U} SET tenant_id = NEW.tenant_id WHERE id = NEW.user_id AND tenant_id IS NULL;\n"
          "    END IF;\n"
          "    RETURN NULL;\n"
          "END"),
    restore=(f"UPDATE {U} u SET tenant_id = r.tenant_id FROM (SELECT DISTINCT ON (user_id) user_id, tenant_id "
             f"FROM {UTR} ORDER BY user_id, granted_at, id) r WHERE r.user_id = u.id AND u.tenant_id IS NULL",
             f"ALTER TABLE {U} ADD CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES {ops.q('tenants')} (id)",
             f"CREATE INDEX ix_users_tenant_id ON {U} (tenant_id)"),
    on=(("users", "AFTER INSERT OR UPDATE"), ("user_tenant_roles", "AFTER INSERT OR UPDATE")),
)


def up(group: ops.Group) -> None:
    """users.tenant_id: every (user, tenant) pair carried to user_tenant_roles, the column kept in sync until the
    contract."""
    ops.step(partial(carry_tenants, group.table("users")), "user_tenant_roles", "users")


def carry_tenants(users: ops.Table) -> None:
    """Pairs into user_tenant_roles, then the sync starts, in one short transaction (a rerun inserts only what is
    missing)."""
    if ops.has_column("users", "tenant_id"):
        ops.journal(
            "user_tenant_roles",
            "id",
            "utr_inserted",
            PAIR.format(user="u.id", tenant="u.tenant_id", rest=f"FROM {U} u WHERE u.tenant_id IS NOT NULL")
            + " RETURNING id, NULL::text",
        )
        ops.sync_carried(users, TENANT)


def down(group: ops.Group) -> None:
    """The memberships the upgrade carried go; users.tenant_id never left (the contract's downgrade puts it back)."""
    ops.run(
        f"DELETE FROM {UTR} r USING {ops.q('migration_undo')} j WHERE j.table_name = 'user_tenant_roles' "
        "AND j.kind = 'utr_inserted' AND r.id::text = j.primary_key"
    )
    ops.forget("user_tenant_roles", "utr_inserted")


MOVES = ops.Moves(up, down, {"users": {"carried": (TENANT,)}})  # the contract revision drops tenant_id
