"""workflows' data move by hand (contract.yaml `moves:`): NULL workspace_id re-homed, then NOT NULL.

Which workspace a workflow without one belongs to is the application's answer, not a target shape: the
tenant's default workspace, created when the tenant has none (``ops.rehome_to_default_workspace``).
"""

from __future__ import annotations

from synapscale.migrations import ops


def up(group: ops.Group) -> None:
    """workflows.workspace_id: NULLs re-homed to the tenant's default workspace, then NOT NULL."""
    ops.rehome_to_default_workspace("workflows")


def down(group: ops.Group) -> None:
    ops.revert_rehome("workflows")


MOVES = ops.Moves(up, down)
