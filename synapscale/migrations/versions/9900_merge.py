"""expanded: every group applied, the old names still working (the switch point).

Every group's revision is an expand: renamed tables answer under their old names too (compatibility
views), renamed columns under both names (kept in sync). The new application is deployed once the
database is here (the switch); the revision after this one (``restructured``) contracts.

Revision ID: expanded
Revises: backup_1, rbac_1, workflows_1, llm_1, marketplace_1, analytics_1, billing_1, users_1,
  workspaces_1, nodes_1, metrics_1, templates_1, other_1, core_1, contacts_1
"""

from __future__ import annotations

revision = "expanded"
down_revision = (
    "backup_1",
    "rbac_1",
    "workflows_1",
    "llm_1",
    "marketplace_1",
    "analytics_1",
    "billing_1",
    "users_1",
    "workspaces_1",
    "nodes_1",
    "metrics_1",
    "templates_1",
    "other_1",
    "core_1",
    "contacts_1",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to do: joining the branches is the point."""


def downgrade() -> None:
    """Nothing to undo."""
