"""core: subscription_metadata jsonb, plan FKs RESTRICT, plan_provider_mappings gains tenant_id.

Implements, for every table of the group (spec "### core"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: core_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "core_1"
down_revision = "foundation"
branch_labels = ("core",)
depends_on = None

TABLES = (
    Table("features"),
    Table(
        "plan_entitlements",
        tenant=GLOBAL,
        fks=(
            Fk("plan_id", "plans", RESTRICT, "plan_entitlements_plan_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "plan_entitlements_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "plan_features",
        fks=(
            Fk("feature_id", "features", CASCADE, "plan_features_feature_id_fkey:a"),
            Fk("plan_id", "plans", RESTRICT, "plan_features_plan_id_fkey:a"),
        ),
    ),
    Table(
        "plan_provider_mappings",
        tenant=GLOBAL,  # gains tenant_id (added below): NULL = the platform-wide mapping
        fks=(
            Fk("plan_id", "plans", RESTRICT, "plan_provider_mappings_plan_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, ""),
        ),
    ),
    Table("plans"),
    Table(
        "subscriptions",
        tenant=REQUIRED,
        tenant_was_not_null=True,
        fks=(
            Fk("plan_id", "plans", RESTRICT, "subscriptions_plan_id_fkey:a"),
            Fk("tenant_id", "tenants", RESTRICT, "subscriptions_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "tenant_features",
        tenant=REQUIRED,
        fks=(
            Fk("feature_id", "features", CASCADE, "tenant_features_feature_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "tenant_features_tenant_id_fkey:a"),
        ),
    ),
    Table("tenants", fks=(Fk("plan_id", "plans", RESTRICT, "tenants_plan_id_fkey:a"),)),
    Table(
        "user_subscriptions",
        json=("subscription_metadata",),
        tenant=REQUIRED,
        parents=(("subscription_id", "subscriptions"),),
        fks=(
            Fk("plan_id", "plans", RESTRICT, "user_subscriptions_plan_id_fkey:a"),
            Fk("subscription_id", "subscriptions", RESTRICT, "user_subscriptions_subscription_id_fkey:a"),
            Fk("tenant_id", "tenants", RESTRICT, "user_subscriptions_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "user_subscriptions_user_id_fkey:a"),
        ),
    ),
    Table(
        "user_tenant_roles",
        tenant=REQUIRED,
        tenant_was_not_null=True,
        fks=(
            Fk("role_id", "rbac_roles", SET_NULL, "user_tenant_roles_role_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "user_tenant_roles_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "user_tenant_roles_user_id_fkey:a"),
        ),
    ),
)

COUNTERS: tuple[ops.Counter, ...] = ()
GIN: tuple[ops.Gin, ...] = ()
GROUP = ops.Group(TABLES, COUNTERS, GIN)


def upgrade() -> None:
    """plan_provider_mappings gains a nullable tenant_id (spec: keep or gain), then the global rules."""
    ops.expand_large(GROUP.tables)
    ops.begin()
    with ops.autocommit():
        ops.step(add_tenant_column, "plan_provider_mappings")
    ops.upgrade_group(GROUP)


def add_tenant_column() -> None:
    """A nullable column (no rewrite) and its index on a small table, in one short transaction."""
    ops.run(f"ALTER TABLE {ops.q('plan_provider_mappings')} ADD COLUMN IF NOT EXISTS tenant_id uuid")
    ops.run(f"CREATE INDEX IF NOT EXISTS ix_plan_provider_mappings_tenant_id ON {ops.q('plan_provider_mappings')} (tenant_id)")


def downgrade() -> None:
    ops.begin()
    ops.downgrade_group(GROUP)
    ops.run(f"ALTER TABLE {ops.q('plan_provider_mappings')} DROP COLUMN IF EXISTS tenant_id")
