"""metrics: jsonb, timestamptz, FK actions.

Implements, for every table of the group (spec "### metrics"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: metrics_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "metrics_1"
down_revision = "foundation"
branch_labels = ("metrics",)
depends_on = None

TABLES = (
    Table("business_metrics", tenant=REQUIRED, fks=(Fk("tenant_id", "tenants", CASCADE, "business_metrics_tenant_id_fkey:a"),)),
    Table(
        "custom_reports",
        json=("query_config", "visualization_config", "filters", "schedule_config", "shared_with", "cached_data"),
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "custom_reports_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "custom_reports_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "custom_reports_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "report_executions",
        json=("parameters", "result_data"),
        tenant=REQUIRED,
        parents=(("report_id", "custom_reports"),),
        fks=(
            Fk("report_id", "custom_reports", CASCADE, "report_executions_report_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "report_executions_tenant_id_fkey:a"),
            Fk("user_id", "users", SET_NULL, "report_executions_user_id_fkey:a"),
        ),
    ),
    Table("system_performance_metrics", json=("tags",)),
    Table(
        "user_behavior_metrics",
        tenant=REQUIRED,
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "user_behavior_metrics_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "user_behavior_metrics_user_id_fkey:a"),
        ),
    ),
    Table(
        "user_insights",
        json=("supporting_data", "action_data"),
        tenant=REQUIRED,
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "user_insights_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "user_insights_user_id_fkey:a"),
        ),
    ),
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
