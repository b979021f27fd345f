"""billing: billing_metadata jsonb, financial FKs RESTRICT, forced RLS with policies.

Implements, for every table of the group (spec "### billing"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: billing_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "billing_1"
down_revision = "foundation"
branch_labels = ("billing",)
depends_on = None

TABLES = (
    Table(
        "billing_events",
        json=("billing_metadata",),
        tenant=REQUIRED,
        tenant_was_not_null=True,
        parents=(
            ("invoice_id", "invoices"),
            ("subscription_id", "subscriptions"),
            ("workspace_id", "workspaces"),
        ),
        legacy_rls="no_policy",
        fks=(
            Fk("invoice_id", "invoices", RESTRICT, "billing_events_invoice_id_fkey:a"),
            Fk("subscription_id", "subscriptions", RESTRICT, "billing_events_subscription_id_fkey:a"),
            Fk("tenant_id", "tenants", RESTRICT, "billing_events_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "billing_events_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", RESTRICT, "billing_events_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "invoices",
        tenant=REQUIRED,
        tenant_was_not_null=True,
        parents=(
            ("customer_id", "payment_customers"),
            ("subscription_id", "subscriptions"),
        ),
        legacy_rls="no_policy",
        fks=(
            Fk("customer_id", "payment_customers", RESTRICT, "invoices_customer_id_fkey:a"),
            Fk("subscription_id", "subscriptions", RESTRICT, "invoices_subscription_id_fkey:a"),
            Fk("tenant_id", "tenants", RESTRICT, "invoices_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "payment_customers",
        tenant=REQUIRED,
        fks=(
            Fk("provider_id", "payment_providers", RESTRICT, "payment_customers_provider_id_fkey:a"),
            Fk("tenant_id", "tenants", RESTRICT, "payment_customers_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "payment_customers_user_id_fkey:a"),
        ),
    ),
    Table(
        "payment_methods",
        tenant=REQUIRED,
        parents=(("customer_id", "payment_customers"),),
        fks=(
            Fk("customer_id", "payment_customers", RESTRICT, "payment_methods_customer_id_fkey:a"),
            Fk("tenant_id", "tenants", RESTRICT, "payment_methods_tenant_id_fkey:a"),
        ),
    ),
    Table("payment_providers"),
)

COUNTERS: tuple[ops.Counter, ...] = ()
GIN: tuple[ops.Gin, ...] = ()
GROUP = ops.Group(TABLES, COUNTERS, GIN)


def upgrade() -> None:
    ops.expand_large(GROUP.tables)
    ops.begin()
    ops.upgrade_group(GROUP)


def downgrade() -> None:
    ops.begin()
    ops.downgrade_group(GROUP)
