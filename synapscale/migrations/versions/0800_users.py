"""users: users.tenant_id into user_tenant_roles, then dropped.

Implements, for every table of the group (spec "### users"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: users_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "users_1"
down_revision = "foundation"
branch_labels = ("users",)
depends_on = None  # see docs/decisions.md "No depends_on"

TABLES = (
    Table("email_verification_tokens", fks=(Fk("user_id", "users", CASCADE, "email_verification_tokens_user_id_fkey:a"),)),
    Table("password_reset_tokens", fks=(Fk("user_id", "users", CASCADE, "password_reset_tokens_user_id_fkey:a"),)),
    Table("refresh_tokens", fks=(Fk("user_id", "users", CASCADE, "refresh_tokens_user_id_fkey:c"),)),
    Table(
        "user_variables",
        tenant=REQUIRED,
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "user_variables_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "user_variables_user_id_fkey:a"),
        ),
    ),
    Table("users"),  # tenant_id is moved and dropped below, not migrated
)

COUNTERS: tuple[ops.Counter, ...] = ()
GIN: tuple[ops.Gin, ...] = ()
GROUP = ops.Group(TABLES, COUNTERS, GIN)


U, UTR = ops.q("users"), ops.q("user_tenant_roles")
# the role a (user, tenant) pair gets when it only existed as users.tenant_id: the global 'member' role
DEFAULT_ROLE = f"(SELECT id FROM {ops.q('rbac_roles')} WHERE tenant_id IS NULL AND name = 'member' LIMIT 1)"


def upgrade() -> None:
    """users.tenant_id: every (user, tenant) pair into user_tenant_roles first, then the column goes."""
    ops.expand_large(GROUP.tables)
    ops.begin()
    with ops.autocommit():
        ops.step(carry_tenants, "users")
    ops.upgrade_group(GROUP)


def carry_tenants() -> None:
    """Pairs into user_tenant_roles and the column dropped in one short transaction locking users."""
    if ops.has_column("users", "tenant_id"):
        ops.journal("users", "tenant_id", "users_tenant", f"SELECT id, tenant_id FROM {U} WHERE tenant_id IS NOT NULL")
        ops.journal(
            "user_tenant_roles",
            "id",
            "utr_inserted",
            f"INSERT INTO {UTR} (user_id, tenant_id, role_id, is_active, granted_at) "
            f"SELECT u.id, u.tenant_id, {DEFAULT_ROLE}, true, now() FROM {U} u WHERE u.tenant_id IS NOT NULL "
            "ON CONFLICT (user_id, tenant_id) DO NOTHING RETURNING id, NULL::text",
        )
        ops.run(f"ALTER TABLE {U} DROP COLUMN tenant_id")


def downgrade() -> None:
    ops.begin()
    ops.downgrade_group(GROUP)
    ops.run(f"ALTER TABLE {U} ADD COLUMN IF NOT EXISTS tenant_id uuid")
    ops.run(
        f"UPDATE {U} u SET tenant_id = j.old_value::uuid FROM {ops.q('migration_undo')} j "
        "WHERE j.table_name = 'users' AND j.kind = 'users_tenant' AND u.id::text = j.primary_key"
    )
    ops.run(f"ALTER TABLE {U} ADD CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES {ops.q('tenants')} (id)")
    ops.run(f"CREATE INDEX ix_users_tenant_id ON {U} (tenant_id)")
    # column order: tenant_id comes back last (documented in docs/decisions.md)
    ops.run(
        f"DELETE FROM {UTR} r USING {ops.q('migration_undo')} j WHERE j.table_name = 'user_tenant_roles' "
        "AND j.kind = 'utr_inserted' AND r.id::text = j.primary_key"
    )
    ops.forget("users", "users_tenant")
    ops.forget("user_tenant_roles", "utr_inserted")
