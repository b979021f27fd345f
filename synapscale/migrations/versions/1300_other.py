"""other: jsonb tags/tag_metadata, FK actions, RLS.

Implements, for every table of the group (spec "### other"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: other_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "other_1"
down_revision = "foundation"
branch_labels = ("other",)
depends_on = None

TABLES = (
    Table(
        "audit_log",
        tenant=REQUIRED,
        fks=(
            Fk("tenant_id", "tenants", RESTRICT, "audit_log_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "audit_log_user_id_fkey:a"),
        ),
    ),
    Table(
        "conversion_journeys",
        tenant=REQUIRED,
        parents=(
            ("campaign_id", "campaigns"),
            ("contact_id", "contacts"),
        ),
        fks=(
            Fk("campaign_id", "campaigns", SET_NULL, "conversion_journeys_campaign_id_fkey:a"),
            Fk("contact_id", "contacts", SET_NULL, "conversion_journeys_contact_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "conversion_journeys_tenant_id_fkey:a"),
            Fk("user_id", "users", SET_NULL, "conversion_journeys_user_id_fkey:a"),
        ),
    ),
    Table("coupons", fks=(Fk("plan_id", "plans", RESTRICT, "coupons_plan_id_fkey:a"),)),
    Table(
        "files",
        json=("tags",),
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "files_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "files_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "files_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "tags",
        json=("tag_metadata",),
        tenant=REQUIRED,
        fks=(
            Fk("created_by", "users", SET_NULL, "tags_created_by_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "tags_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "webhook_logs",
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "webhook_logs_tenant_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "webhook_logs_workspace_id_fkey:a"),
        ),
    ),
)

COUNTERS = (  # workspaces.storage_used_mb is the sum of its files' sizes
    ops.Counter(
        "workspaces",
        "files",
        "workspace_id",
        (("storage_used_mb", "round(coalesce(sum(c.file_size), 0) / 1048576.0, 2)"),),
        watch=("file_size",),
    ),
)
GIN: tuple[ops.Gin, ...] = ()
GROUP = ops.Group(TABLES, COUNTERS, GIN)


def upgrade() -> None:
    ops.expand_large(GROUP.tables)
    ops.begin()
    ops.upgrade_group(GROUP)


def downgrade() -> None:
    ops.begin()
    ops.downgrade_group(GROUP)
