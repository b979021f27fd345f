"""Seeded defects: the reference migrations with ONE realistic bug each, made in a temporary copy.

Each defect is a small patch of one revision file (text in, text out). A patch asserts that the text
it rewrites is there, so a change to the reference revision makes the seeding fail loudly instead of
silently seeding nothing. ``env`` is what the migration runs under (a session TimeZone that is not
UTC, a row threshold that forces expand/contract); ``expect`` is a regex the suite's failure output
must match on a line reporting ``rule``: the message has to point at the bug, not merely fail.
"""

from __future__ import annotations

import inspect
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from synapscale.migrations import ops

REFERENCE = Path(__file__).resolve().parents[2] / "synapscale" / "migrations"


@dataclass(frozen=True)
class Defect:
    name: str
    revision: str  # file of the migrations folder: a revision (versions/...) or a group's hand-written moves
    patch: Callable[[str], str]
    group: str
    rule: str  # the finding the suite must report it under
    expect: str
    env: dict[str, str] = field(default_factory=dict)

    def apply(self, into: Path) -> Path:
        """A copy of the reference migrations with this defect patched into its revision."""
        target = into / "migrations"
        shutil.copytree(REFERENCE, target, ignore=shutil.ignore_patterns("__pycache__"))
        path = target / self.revision
        path.write_text(self.patch(path.read_text()))
        return target


def _swap(text: str, old: str, new: str) -> str:
    assert old in text, f"seeding failed: {old!r} is no longer in the revision"
    return text.replace(old, new, 1)


def _cut(text: str, pattern: str) -> str:
    patched, n = re.subn(pattern, "", text, count=1, flags=re.DOTALL)
    assert n == 1, f"seeding failed: {pattern!r} is no longer in the revision"
    return patched


def session_timezone(text: str) -> str:
    """The revision sets its lock timeout by hand and forgets ``TimeZone = 'UTC'``: naive values are read locally."""
    return _swap(text, "    ops.begin()\n    ops.expand_large(GROUP.tables)\n",
                 "    ops.run(\"SET LOCAL lock_timeout = '5s'\")\n    ops.expand_large(GROUP.tables)\n")


def rename_as_drop_add(text: str) -> str:
    """meta_data → metadata done as DROP + ADD: the column exists afterwards, empty."""
    text = _swap(text, '        renames=(("meta_data", "metadata"),),\n', "")
    return _swap(text, "    ops.upgrade_group(GROUP)\n",
                 "    ops.run(f\"ALTER TABLE {ops.q('workflow_executions')} DROP COLUMN IF EXISTS meta_data, \"\n"
                 "            \"ADD COLUMN IF NOT EXISTS metadata jsonb\")\n"
                 "    ops.upgrade_group(GROUP)\n")


def feedback_not_carried(text: str) -> str:
    """llms_messages.rating/feedback dropped without the INSERT into message_feedbacks."""
    return _cut(text, r'        ops\.journal\(\n            "message_feedbacks",.*?RETURNING id, message_id",\n        \)\n')


def permissions_dropped_first(text: str) -> str:
    """rbac_roles.permissions dropped at the start of the revision, before its pairs are carried over."""
    return _swap(text, "    ops.step(partial(carry_permissions, ",
                 "    ops.run(f\"ALTER TABLE {R} DROP COLUMN permissions\")\n    ops.step(partial(carry_permissions, ")


def backfill_skips_last_batch(text: str) -> str:
    """The expand/contract backfill loops ``rows // batch`` times: the last, partial batch is never copied."""
    expand = _swap(inspect.getsource(ops.expand_large), "def expand_large(", "def expand_large_in_batches(")
    expand = _swap(expand, "            backfill(", "            backfill_skipping_last(")
    loop = _swap(inspect.getsource(ops.backfill), "def backfill(", "def backfill_skipping_last(")
    loop = _swap(loop, "    while True:\n",
                 "    for _ in range(int(scalar(f\"SELECT count(*) FROM {q(table)}\")) // batch):\n")
    text = _swap(text, "    ops.expand_large(GROUP.tables)\n", "    expand_large_in_batches(GROUP.tables, batch=5)\n")
    header = "from synapscale.migrations.ops import *  # noqa: E402,F403 - the backfill below is ops' own, edited"
    return f"{text}\n\n{header}\n\n\n{expand}\n\n{loop}"


def nul_rows_deleted(text: str) -> str:
    """Rows whose json holds \\u0000 are deleted to let ``TYPE jsonb`` pass, instead of being quarantined."""
    return _swap(text, "    ops.expand_large(GROUP.tables)\n    ops.upgrade_group(GROUP)\n",
                 "    ops.expand_large(GROUP.tables)\n"
                 "    for t in GROUP.tables:\n"
                 "        for c in t.json:\n"
                 "            ops.run(f\"DELETE FROM {ops.q(t.name)} WHERE {c}::text ~ '\\\\\\\\u0000'\")\n"
                 "    ops.upgrade_group(GROUP)\n")


def downgrade_forgets_column(text: str) -> str:
    """marketplace_components.author_name dropped by the group's revision, whose downgrade never re-adds it."""
    return _swap(text, "        ops.sync_carried(components, AUTHOR_NAME)",
                 "        ops.run(f\"ALTER TABLE {MC} DROP COLUMN author_name\")")


NEW_YORK = {"PGTZ": "America/New_York"}
DEFECTS = (
    Defect("timestamps-in-session-timezone", "versions/0900_workspaces.py", session_timezone, "workspaces", "EQ-VALUE",
           r"workspace_projects\.created_at: \d+ instants moved \(shifted by [+-]\d", NEW_YORK),
    Defect("rename-as-drop-add", "versions/0300_workflows.py", rename_as_drop_add, "workflows", "EQ-VALUE",
           r"workflow_executions\.metadata: \d+ json documents changed meaning"),
    Defect("feedback-not-carried", "moves/llm.py", feedback_not_carried, "llm", "EQ-MOVED",
           r"llms_messages\.rating values are neither in message_feedbacks"),
    Defect("permissions-dropped-first", "moves/rbac.py", permissions_dropped_first, "rbac", "EQ-MOVED",
           r"rbac_roles\.permissions values are neither in rbac_role_permissions"),
    Defect("backfill-skips-last-batch", "versions/1300_other.py", backfill_skips_last_batch, "other", "EQ-VALUE",
           r"(tags\.tag_metadata|files\.tags): \d+ json documents changed meaning",
           {"SYNAPSCALE_EXPAND_CONTRACT_ROWS": "1"}),
    Defect("nul-rows-deleted", "versions/0600_analytics.py", nul_rows_deleted, "analytics", "EQ-ROWS",
           r"rows of analytics_events are missing after the migration .*held json text jsonb may reject"),
    Defect("downgrade-forgets-column", "moves/marketplace.py", downgrade_forgets_column, "marketplace", "EQ-COLUMN",
           r"marketplace_components\.author_name has no column in marketplace_components and the downgrade did not"),
)
