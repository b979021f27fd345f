"""backup: archive the 16 backup_* tables (pg_dump -Fc, sha256, audit row, restore check), then drop them.

Implements G9 (spec "### backup"): each table is dumped in custom format to ``SYNAPSCALE_ARCHIVE_DIR``
(default ``./archive``), the archive's data section is read back with pg_restore and must hold the
table's row count, a ``migration_archive`` row records table, rows, file, sha256, when and who, and
only then is the table dropped. The downgrade recreates every table from its archive (checksum first).

Revision ID: backup_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops

revision = "backup_1"
down_revision = "foundation"
branch_labels = ("backup",)
depends_on = None

BACKUP_TABLES = (
    "backup_agents_20240220",
    "backup_analytics_events_20240501",
    "backup_billing_events_20240601",
    "backup_invoices_20240601",
    "backup_llms_conversations_20240310",
    "backup_llms_messages_20240310",
    "backup_marketplace_components_20240405",
    "backup_nodes_20240405",
    "backup_rbac_roles_20240220",
    "backup_user_tenant_roles_20240220",
    "backup_users_20240115",
    "backup_users_20240612",
    "backup_workflow_executions_20240301",
    "backup_workflows_20240301",
    "backup_workspace_members_20240115",
    "backup_workspaces_20240115",
)


def upgrade() -> None:
    ops.begin()
    for table in BACKUP_TABLES:
        if ops.exists_table(table):
            ops.archive_table(table, revision)


def downgrade() -> None:
    ops.begin()
    for table in BACKUP_TABLES:
        ops.restore_table(table)
