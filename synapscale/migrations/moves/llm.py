"""llm's data moves by hand (contract.yaml `moves:`): messages' rating/feedback into message_feedbacks,
agents.model_provider into provider, agents without a workspace re-homed.

rating/feedback leave ``messages`` in the move (the old application reads them through the compatibility view,
from message_feedbacks: ``Table.legacy_columns``); model_provider stays for the old application until the
contract, synced with provider (``Table.kept``).
"""

from __future__ import annotations

from functools import partial

from synapscale.migrations import ops

INLINE = "legacy_inline"  # feedback_type of the rows carried over from messages.rating/feedback
A, M, F = ops.q("agents"), ops.q("messages"), ops.q("message_feedbacks")
# read by the old application through llms_messages during the expand (written: message_feedbacks)
LEGACY_COLUMNS = tuple(
    (col, f"SELECT f.{src} FROM {F} f WHERE f.message_id = x.id AND f.feedback_type = '{INLINE}' "
          "ORDER BY f.created_at DESC LIMIT 1")
    for col, src in (("rating", "rating"), ("feedback", "feedback_text"))
)


def up(group: ops.Group) -> None:
    """Data before drops: rating/feedback -> message_feedbacks, model_provider -> provider; then NULL workspaces
    re-homed."""
    ops.step(partial(carry_feedback, group.table("messages")), *ops.with_views("messages"))
    ops.expand_kept(group.table("agents"))  # model_provider kept for the old application, synced with provider
    ops.step(carry_provider, "agents")
    ops.rehome_to_default_workspace("agents")


def carry_feedback(messages: ops.Table) -> None:
    """rating/feedback into message_feedbacks and the columns dropped, in one short transaction."""
    if ops.has_column("messages", "rating"):
        ops.journal(
            "message_feedbacks",
            "id",
            "inline_feedback",
            f"INSERT INTO {F} (message_id, user_id, tenant_id, rating, feedback_type, feedback_text, feedback_metadata) "
            f"SELECT m.id, c.user_id, m.tenant_id, m.rating, '{INLINE}', m.feedback, "
            f"json_build_object('source', 'llms_messages.rating/feedback', 'created_at', m.created_at) "
            f"FROM {M} m JOIN {ops.q('llms_conversations')} c ON c.id = m.conversation_id "
            f"WHERE m.rating IS NOT NULL OR m.feedback IS NOT NULL RETURNING id, message_id",
        )
        ops.drop_compat_views([messages])
        ops.run(f"ALTER TABLE {M} DROP COLUMN rating, DROP COLUMN feedback")
        ops.create_compat_view(messages)  # rating/feedback now read from message_feedbacks


def carry_provider() -> None:
    """model_provider into provider (journaled, disagreements reported), in one short transaction; the contract drops it."""
    done = ops.scalar(f"SELECT 1 FROM {ops.q('migration_undo')} WHERE table_name = 'agents' AND kind = 'model_provider' LIMIT 1")
    if ops.has_column("agents", "model_provider") and not done:  # a rerun finds the move journaled
        ops.journal(
            "agents", "model_provider", "model_provider", f"SELECT id, model_provider FROM {A} WHERE model_provider IS NOT NULL"
        )
        ops.journal(
            "agents",
            "provider",
            "provider_filled",
            f"UPDATE {A} SET provider = model_provider WHERE provider IS NULL AND model_provider IS NOT NULL "
            "RETURNING id, NULL::text",
        )
        ops.quarantine(
            "agents",
            "model_provider",
            "model_provider_disagrees",
            f"SELECT id, model_provider FROM {A} WHERE model_provider IS DISTINCT FROM provider AND model_provider IS NOT NULL",
        )


def down(group: ops.Group) -> None:
    """The workspaces, provider values and feedback rows the moves wrote go back where they were."""
    ops.revert_rehome("agents")
    undo = ops.q("migration_undo")
    ops.run(f"ALTER TABLE {A} ADD COLUMN IF NOT EXISTS model_provider text")
    ops.run(
        f"UPDATE {A} a SET model_provider = j.old_value FROM {undo} j WHERE j.table_name = 'agents' "
        "AND j.kind = 'model_provider' AND a.id::text = j.primary_key"
    )
    ops.run(
        f"UPDATE {A} a SET provider = NULL FROM {undo} j WHERE j.table_name = 'agents' "
        "AND j.kind = 'provider_filled' AND a.id::text = j.primary_key"
    )
    ops.run(f"ALTER TABLE {M} ADD COLUMN IF NOT EXISTS rating integer, ADD COLUMN IF NOT EXISTS feedback text")
    ops.run(
        f"UPDATE {M} m SET rating = f.rating, feedback = f.feedback_text FROM {F} f "
        f"WHERE f.message_id = m.id AND f.feedback_type = '{INLINE}'"
    )
    ops.run(
        f"DELETE FROM {F} f USING {undo} j WHERE j.table_name = 'message_feedbacks' AND j.kind = 'inline_feedback' "
        "AND f.id::text = j.primary_key"
    )
    for table, kind in (("agents", "model_provider"), ("agents", "provider_filled"), ("message_feedbacks", "inline_feedback")):
        ops.forget(table, kind)


MOVES = ops.Moves(up, down, {
    "agents": {"kept": (("model_provider", "provider"),)},  # the old application's name of the provider, until the contract
    "messages": {"legacy_columns": LEGACY_COLUMNS},
})
