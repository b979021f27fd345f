"""analytics: jsonb + GIN on widgets/properties, workflow SET NULL, workspace CASCADE.

Implements, for every table of the group (spec "### analytics"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: analytics_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "analytics_1"
down_revision = "foundation"
branch_labels = ("analytics",)
depends_on = None

TABLES = (
    Table(
        "analytics_alerts",
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "analytics_alerts_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "analytics_alerts_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "analytics_alerts_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "analytics_dashboards",
        json=("layout", "widgets", "filters", "shared_with"),
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "analytics_dashboards_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "analytics_dashboards_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "analytics_dashboards_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "analytics_events",
        json=("properties", "context"),
        tenant=REQUIRED,
        parents=(
            ("workflow_id", "workflows"),
            ("workspace_id", "workspaces"),
        ),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "analytics_events_tenant_id_fkey:a"),
            Fk("user_id", "users", SET_NULL, "analytics_events_user_id_fkey:a"),
            Fk("workflow_id", "workflows", SET_NULL, "analytics_events_workflow_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "analytics_events_workspace_id_fkey:a"),
        ),
        tenant_keys=("workspace_id",),  # the event ingestion path: a composite FK, no guard trigger
        indexes=("tenant_id, created_at DESC, id",),  # a tenant's events in a window, newest first
    ),
    Table(
        "analytics_exports",
        tenant=REQUIRED,
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "analytics_exports_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "analytics_exports_user_id_fkey:a"),
        ),
    ),
    Table(
        "analytics_metrics",
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "analytics_metrics_tenant_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "analytics_metrics_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "analytics_reports",
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "analytics_reports_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "analytics_reports_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "analytics_reports_workspace_id_fkey:a"),
        ),
    ),
)

COUNTERS: tuple[ops.Counter, ...] = ()
GIN = (ops.Gin("analytics_dashboards", "widgets"), ops.Gin("analytics_events", "properties"))
GROUP = ops.Group(TABLES, COUNTERS, GIN)


def upgrade() -> None:
    ops.expand_large(GROUP.tables)
    ops.begin()
    ops.upgrade_group(GROUP)


def downgrade() -> None:
    ops.begin()
    ops.downgrade_group(GROUP)
