"""workspaces: jsonb, timestamptz, CASCADE to workspace, counters kept by triggers.

Implements, for every table of the group (spec "### workspaces"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: workspaces_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "workspaces_1"
down_revision = "foundation"
branch_labels = ("workspaces",)
depends_on = None

TABLES = (
    Table(
        "project_collaborators",
        json=("current_cursor_position",),
        tenant=REQUIRED,
        parents=(("project_id", "workspace_projects"),),
        fks=(
            Fk("project_id", "workspace_projects", CASCADE, "project_collaborators_project_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "project_collaborators_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "project_collaborators_user_id_fkey:a"),
        ),
    ),
    Table(
        "project_comments",
        tenant=REQUIRED,
        parents=(
            ("parent_id", "project_comments"),
            ("project_id", "workspace_projects"),
        ),
        fks=(
            Fk("parent_id", "project_comments", SET_NULL, "project_comments_parent_id_fkey:a"),
            Fk("project_id", "workspace_projects", CASCADE, "project_comments_project_id_fkey:a"),
            Fk("resolved_by", "users", SET_NULL, "project_comments_resolved_by_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "project_comments_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "project_comments_user_id_fkey:a"),
        ),
    ),
    Table(
        "project_versions",
        json=("workflow_data", "changes_summary"),
        tenant=REQUIRED,
        parents=(("project_id", "workspace_projects"),),
        fks=(
            Fk("project_id", "workspace_projects", CASCADE, "project_versions_project_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "project_versions_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "project_versions_user_id_fkey:a"),
        ),
    ),
    Table(
        "workspace_activities",
        json=("meta_data",),
        renames=(("meta_data", "metadata"),),
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "workspace_activities_tenant_id_fkey:a"),
            Fk("user_id", "users", SET_NULL, "workspace_activities_user_id_fkey:a"),
            Fk(
                "workspace_id",
                "workspaces",
                CASCADE,
                "fk_workspace_activities_workspace_id:n workspace_activities_workspace_id_fkey:c",
            ),
        ),
    ),
    Table(
        "workspace_features",
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("feature_id", "features", CASCADE, "workspace_features_feature_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "workspace_features_tenant_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "workspace_features_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "workspace_invitations",
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("invited_user_id", "users", SET_NULL, "workspace_invitations_invited_user_id_fkey:a"),
            Fk("inviter_id", "users", RESTRICT, "workspace_invitations_inviter_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "workspace_invitations_tenant_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "workspace_invitations_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "workspace_members",
        json=("custom_permissions", "notification_preferences"),
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "workspace_members_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "workspace_members_user_id_fkey:a"),
            Fk(
                "workspace_id", "workspaces", CASCADE, "fk_workspace_members_workspace_id:a workspace_members_workspace_id_fkey:a"
            ),
        ),
    ),
    Table(
        "workspace_projects",
        tenant=REQUIRED,
        parents=(
            ("workflow_id", "workflows"),
            ("workspace_id", "workspaces"),
        ),
        fks=(
            Fk("created_by", "users", SET_NULL, "workspace_projects_created_by_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "workspace_projects_tenant_id_fkey:a"),
            Fk("workflow_id", "workflows", SET_NULL, "workspace_projects_workflow_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "workspace_projects_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "workspaces",
        json=("feature_usage_count",),
        tenant=REQUIRED,
        tenant_was_not_null=True,
        legacy_rls="policy",
        fks=(
            Fk("owner_id", "users", RESTRICT, "workspaces_owner_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "workspaces_tenant_id_fkey:a"),
        ),
    ),
)

COUNTERS = (
    ops.Counter("workspaces", "workspace_members", "workspace_id", (("member_count", "count(*)"),)),
    ops.Counter("workspaces", "workspace_projects", "workspace_id", (("project_count", "count(*)"),)),
    ops.Counter("workspaces", "workspace_activities", "workspace_id", (("activity_count", "count(*)"),)),
    ops.Counter("workspace_projects", "project_collaborators", "project_id", (("collaborator_count", "count(*)"),)),
    ops.Counter("workspace_projects", "project_versions", "project_id", (("edit_count", "count(*)"),)),
    ops.Counter("workspace_projects", "project_comments", "project_id", (("comment_count", "count(*)"),)),
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
