"""contract: the old names of renamed tables and columns go, once no session uses them (the end state, the one head).

Run after the switch (the new application deployed on ``expanded``, the old one stopped). Refused
while a session still names an old table or column (``ops.ensure_unused``); then each compatibility
view, sync trigger and old column goes in a short transaction of its own. The downgrade expands again:
views back, old columns re-added and backfilled, kept in sync.

Revision ID: restructured
Revises: expanded
"""

from __future__ import annotations

from synapscale.migrations import ops

revision = "restructured"
down_revision = "expanded"
branch_labels = None
depends_on = None

# the group revisions that keep old names for the old application
EXPANDS = ("rbac_1", "workflows_1", "llm_1", "marketplace_1", "users_1", "workspaces_1", "nodes_1")


def upgrade() -> None:
    ops.contract_revision(EXPANDS)


def downgrade() -> None:
    ops.re_expand_revision(EXPANDS)
