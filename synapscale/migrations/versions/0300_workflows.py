"""workflows: workspace_id NOT NULL (re-homed), json/metadata, CASCADE to workspace.

Implements, for every table of the group (spec "### workflows"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: workflows_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "workflows_1"
down_revision = "foundation"
branch_labels = ("workflows",)
depends_on = None

TABLES = (
    Table(
        "workflow_executions",
        json=("input_data", "output_data", "context_data", "variables", "meta_data"),
        renames=(("meta_data", "metadata"),),
        tenant=REQUIRED,
        indexes=("status, tenant_id, created_at DESC, id",),  # a tenant's executions by status, newest first
        parents=(("workflow_id", "workflows"),),
        tenant_keys=("workflow_id",),  # the status UPDATE path: a composite FK, no row-locking guard trigger
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "workflow_executions_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "workflow_executions_user_id_fkey:a"),
            Fk(
                "workflow_id", "workflows", CASCADE, "fk_workflow_executions_workflow_id:a workflow_executions_workflow_id_fkey:a"
            ),
        ),
    ),
    Table(
        "workflows",
        json=("tags",),
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        legacy_rls="policy",
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "workflows_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "workflows_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "workflows_workspace_id_fkey:a"),
        ),
    ),
)

COUNTERS: tuple[ops.Counter, ...] = ()
GIN = (ops.Gin("workflows", "tags"),)
GROUP = ops.Group(TABLES, COUNTERS, GIN)


def upgrade() -> None:
    """workflows.workspace_id: NULLs re-homed to the tenant's default workspace, then NOT NULL."""
    ops.expand_large(GROUP.tables)
    ops.begin()
    with ops.autocommit():
        ops.rehome_to_default_workspace("workflows")
    ops.upgrade_group(GROUP)


def downgrade() -> None:
    ops.begin()
    ops.downgrade_group(GROUP)
    ops.revert_rehome("workflows")
