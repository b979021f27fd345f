"""nodes: jsonb, metadata, FK actions, node and template counters.

Implements, for every table of the group (spec "### nodes"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: nodes_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "nodes_1"
down_revision = "foundation"
branch_labels = ("nodes",)
depends_on = None

TABLES = (
    Table("node_categories", fks=(Fk("parent_id", "node_categories", SET_NULL, "node_categories_parent_id_fkey:a"),)),
    Table(
        "node_executions",
        json=(
            "input_data",
            "output_data",
            "config_data",
            "error_details",
            "debug_info",
            "dependencies",
            "dependents",
            "meta_data",
        ),
        renames=(("meta_data", "metadata"),),
        tenant=REQUIRED,
        parents=(("workflow_execution_id", "workflow_executions"),),  # node_id: public nodes cross tenants
        fks=(
            Fk("node_id", "nodes", SET_NULL, "node_executions_node_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "node_executions_tenant_id_fkey:a"),
            Fk("workflow_execution_id", "workflow_executions", CASCADE, "node_executions_workflow_execution_id_fkey:a"),
        ),
    ),
    Table(
        "node_ratings",
        tenant=REQUIRED,
        # node_id: ratings of public nodes come from other tenants, no parent guard
        fks=(
            Fk("node_id", "nodes", CASCADE, "node_ratings_node_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "node_ratings_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "node_ratings_user_id_fkey:a"),
        ),
    ),
    Table(
        "node_templates",
        json=("input_schema", "output_schema", "parameters_schema", "examples"),
        fks=(Fk("category_id", "node_categories", SET_NULL, "node_templates_category_id_fkey:a"),),
    ),
    Table(
        "nodes",
        json=("input_schema", "output_schema", "parameters_schema", "examples"),
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("category_id", "node_categories", SET_NULL, "nodes_category_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "nodes_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "nodes_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "nodes_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "workflow_connections",
        tenant=REQUIRED,
        parents=(
            ("source_node_id", "workflow_nodes"),
            ("target_node_id", "workflow_nodes"),
            ("workflow_id", "workflows"),
        ),
        fks=(
            Fk("source_node_id", "workflow_nodes", CASCADE, "workflow_connections_source_node_id_fkey:a"),
            Fk("target_node_id", "workflow_nodes", CASCADE, "workflow_connections_target_node_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "workflow_connections_tenant_id_fkey:a"),
            Fk("workflow_id", "workflows", CASCADE, "workflow_connections_workflow_id_fkey:a"),
        ),
    ),
    Table(
        "workflow_execution_metrics",
        json=("value_json", "tags"),
        tenant=REQUIRED,
        parents=(
            ("node_execution_id", "node_executions"),
            ("workflow_execution_id", "workflow_executions"),
        ),
        fks=(
            Fk("node_execution_id", "node_executions", SET_NULL, "workflow_execution_metrics_node_execution_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "workflow_execution_metrics_tenant_id_fkey:a"),
            Fk(
                "workflow_execution_id", "workflow_executions", CASCADE, "workflow_execution_metrics_workflow_execution_id_fkey:a"
            ),
        ),
    ),
    Table(
        "workflow_execution_queue",
        json=("meta_data",),
        renames=(("meta_data", "metadata"),),
        tenant=REQUIRED,
        parents=(("workflow_execution_id", "workflow_executions"),),
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "workflow_execution_queue_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "workflow_execution_queue_user_id_fkey:a"),
            Fk("workflow_execution_id", "workflow_executions", CASCADE, "workflow_execution_queue_workflow_execution_id_fkey:a"),
        ),
    ),
    Table(
        "workflow_nodes",
        json=("configuration",),
        tenant=REQUIRED,
        parents=(("workflow_id", "workflows"),),  # node_id: public nodes cross tenants
        fks=(
            Fk("node_id", "nodes", CASCADE, "workflow_nodes_node_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "workflow_nodes_tenant_id_fkey:a"),
            Fk("workflow_id", "workflows", CASCADE, "workflow_nodes_workflow_id_fkey:a"),
        ),
    ),
    Table(
        "workflow_templates",
        json=(
            "tags",
            "workflow_data",
            "nodes_data",
            "connections_data",
            "required_variables",
            "optional_variables",
            "default_config",
            "keywords",
            "use_cases",
            "industries",
            "preview_images",
            "changelog",
        ),
        tenant=REQUIRED,
        # original_workflow_id: SET NULL history link; a published template may outlive a moved workflow
        fks=(
            Fk("author_id", "users", RESTRICT, "workflow_templates_author_id_fkey:a"),
            Fk("original_workflow_id", "workflows", SET_NULL, "workflow_templates_original_workflow_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "workflow_templates_tenant_id_fkey:a"),
        ),
    ),
)

COUNTERS = (
    ops.Counter("nodes", "workflow_nodes", "node_id", (("usage_count", "count(*)"),)),
    ops.Counter(
        "nodes",
        "node_ratings",
        "node_id",
        (("rating_count", "count(*)"), ("rating_average", "coalesce(round(avg(c.rating), 2), 0)")),
        watch=("rating",),
    ),
)
GIN = (ops.Gin("workflow_templates", "tags"),)
GROUP = ops.Group(TABLES, COUNTERS, GIN)


def upgrade() -> None:
    ops.expand_large(GROUP.tables)
    ops.begin()
    ops.upgrade_group(GROUP)


def downgrade() -> None:
    ops.begin()
    ops.downgrade_group(GROUP)
