"""llm: renames, rating/feedback into message_feedbacks, model_provider into provider, usage logs keep history.

Implements, for every table of the group (spec "### llm"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: llm_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "llm_1"
down_revision = "foundation"
branch_labels = ("llm",)
depends_on = None

INLINE = "legacy_inline"  # feedback_type of the rows carried over from messages.rating/feedback

TABLES = (
    Table(
        "agent_acl",
        tenant=REQUIRED,
        parents=(("agent_id", "agents"),),
        fks=(
            Fk("agent_id", "agents", CASCADE, "agent_acl_agent_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_acl_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "agent_acl_user_id_fkey:a"),
        ),
    ),
    Table(
        "agent_configurations",
        tenant=REQUIRED,
        parents=(("agent_id", "agents"),),
        fks=(
            Fk("agent_id", "agents", CASCADE, "agent_configurations_agent_id_fkey:a"),
            Fk("created_by", "users", SET_NULL, "agent_configurations_created_by_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_configurations_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "agent_error_logs",
        tenant=REQUIRED,
        parents=(("agent_id", "agents"),),
        fks=(
            Fk("agent_id", "agents", CASCADE, "agent_error_logs_agent_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_error_logs_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "agent_hierarchy",
        tenant=REQUIRED,
        parents=(
            ("ancestor_id", "agents"),
            ("descendant_id", "agents"),
        ),
        fks=(
            Fk("ancestor_id", "agents", CASCADE, "agent_hierarchy_ancestor_id_fkey:a"),
            Fk("descendant_id", "agents", CASCADE, "agent_hierarchy_descendant_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_hierarchy_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "agent_kbs",
        tenant=REQUIRED,
        parents=(
            ("agent_id", "agents"),
            ("kb_id", "knowledge_bases"),
        ),
        fks=(
            Fk("agent_id", "agents", CASCADE, "agent_kbs_agent_id_fkey:a"),
            Fk("kb_id", "knowledge_bases", CASCADE, "agent_kbs_kb_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_kbs_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "agent_models",
        tenant=REQUIRED,
        parents=(("agent_id", "agents"),),
        fks=(
            Fk("agent_id", "agents", CASCADE, "agent_models_agent_id_fkey:a"),
            Fk("llm_id", "llms", CASCADE, "agent_models_llm_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_models_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "agent_quotas",
        tenant=REQUIRED,
        parents=(("agent_id", "agents"),),
        fks=(
            Fk("agent_id", "agents", CASCADE, "agent_quotas_agent_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_quotas_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "agent_tools",
        tenant=REQUIRED,
        parents=(
            ("agent_id", "agents"),
            ("tool_id", "tools"),
        ),
        fks=(
            Fk("agent_id", "agents", CASCADE, "agent_tools_agent_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_tools_tenant_id_fkey:a"),
            Fk("tool_id", "tools", CASCADE, "agent_tools_tool_id_fkey:a"),
        ),
    ),
    Table(
        "agent_triggers",
        tenant=REQUIRED,
        parents=(("agent_id", "agents"),),
        fks=(
            Fk("agent_id", "agents", CASCADE, "agent_triggers_agent_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_triggers_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "agent_usage_metrics",
        tenant=REQUIRED,
        parents=(("agent_id", "agents"),),
        fks=(
            Fk("agent_id", "agents", CASCADE, "agent_usage_metrics_agent_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "agent_usage_metrics_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "agents",
        json=("tools", "knowledge_base", "capabilities", "configuration"),
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        legacy_rls="policy",
        kept=(("model_provider", "provider"),),  # the old application's name of the provider, until the contract
        fks=(
            Fk("tenant_id", "tenants", CASCADE, "agents_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "agents_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "agents_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "knowledge_bases",
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("created_by", "users", SET_NULL, "knowledge_bases_created_by_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "knowledge_bases_tenant_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "knowledge_bases_workspace_id_fkey:a"),
        ),
    ),
    Table("llms", json=("llm_metadata",)),
    Table(
        "llms_conversations",
        json=("context", "settings"),
        tenant=REQUIRED,
        parents=(
            ("agent_id", "agents"),
            ("workspace_id", "workspaces"),
        ),
        fks=(
            Fk("agent_id", "agents", SET_NULL, "llms_conversations_agent_id_fkey:a"),
            Fk("llm_id", "llms", SET_NULL, "llms_conversations_llm_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "llms_conversations_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "llms_conversations_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "llms_conversations_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "conversation_turns",
        legacy_name="llms_conversations_turns",
        tenant=REQUIRED,
        parents=(("conversation_id", "llms_conversations"),),
        fks=(
            Fk("conversation_id", "llms_conversations", CASCADE, "llms_conversations_turns_conversation_id_fkey:a"),
            Fk("llm_id", "llms", SET_NULL, "llms_conversations_turns_llm_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "llms_conversations_turns_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "message_feedbacks",
        legacy_name="llms_message_feedbacks",
        json=("feedback_metadata",),
        tenant=REQUIRED,
        parents=(("message_id", "messages"),),
        fks=(
            Fk("message_id", "messages", CASCADE, "llms_message_feedbacks_message_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "llms_message_feedbacks_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "llms_message_feedbacks_user_id_fkey:a"),
        ),
    ),
    Table(
        "messages",
        legacy_name="llms_messages",
        json=("attachments",),
        tenant=REQUIRED,
        indexes=("tenant_id, conversation_id",),  # a conversation's messages, the chat's main read
        # read by the old application through llms_messages during the expand (written: message_feedbacks)
        legacy_columns=tuple(
            (col, f"SELECT f.{src} FROM {ops.q('message_feedbacks')} f WHERE f.message_id = x.id "
                  f"AND f.feedback_type = '{INLINE}' ORDER BY f.created_at DESC LIMIT 1")
            for col, src in (("rating", "rating"), ("feedback", "feedback_text"))
        ),
        parents=(
            ("conversation_id", "llms_conversations"),
            ("turn_id", "conversation_turns"),
        ),
        fks=(
            Fk("conversation_id", "llms_conversations", CASCADE, "llms_messages_conversation_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "llms_messages_tenant_id_fkey:a"),
            Fk("turn_id", "conversation_turns", SET_NULL, "llms_messages_turn_id_fkey:a"),
        ),
    ),
    Table(
        "llms_usage_logs",
        json=("api_request_payload", "api_response_metadata", "model_settings"),
        tenant=REQUIRED,
        parents=(
            ("conversation_id", "llms_conversations"),
            ("message_id", "messages"),
            ("workspace_id", "workspaces"),
        ),
        fks=(
            Fk("conversation_id", "llms_conversations", SET_NULL, "llms_usage_logs_conversation_id_fkey:a"),
            Fk("llm_id", "llms", SET_NULL, "llms_usage_logs_llm_id_fkey:r"),
            Fk("message_id", "messages", SET_NULL, "llms_usage_logs_message_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "llms_usage_logs_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "llms_usage_logs_user_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "llms_usage_logs_workspace_id_fkey:a"),
        ),
        # usage per model per day read from the index alone, never from the wider jsonb rows
        indexes=("tenant_id, created_at INCLUDE model, total_tokens, cost_usd",),
    ),
    Table("tools", tenant=REQUIRED, fks=(Fk("tenant_id", "tenants", CASCADE, "tools_tenant_id_fkey:a"),)),
)

COUNTERS: tuple[ops.Counter, ...] = ()
GIN = (ops.Gin("llms_usage_logs", "model_settings"),)
GROUP = ops.Group(TABLES, COUNTERS, GIN)


A, M, F = ops.q("agents"), ops.q("messages"), ops.q("message_feedbacks")
MESSAGES, AGENTS = (next(t for t in TABLES if t.name == name) for name in ("messages", "agents"))


def upgrade() -> None:
    """Renames first, then data before drops: rating/feedback -> message_feedbacks, model_provider -> provider."""
    ops.begin()
    with ops.autocommit():
        ops.rename_tables(GROUP.tables)
    ops.expand_large(GROUP.tables)
    with ops.autocommit():
        ops.step(carry_feedback, *ops.with_views("messages"))
        ops.expand_kept(AGENTS)  # model_provider kept for the old application, synced with provider
        ops.step(carry_provider, "agents")
        ops.rehome_to_default_workspace("agents")
    ops.upgrade_group(GROUP)


def carry_feedback() -> None:
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
        ops.drop_compat_views([MESSAGES])
        ops.run(f"ALTER TABLE {M} DROP COLUMN rating, DROP COLUMN feedback")
        ops.create_compat_view(MESSAGES)  # rating/feedback now read from message_feedbacks


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


def downgrade() -> None:
    ops.begin()
    ops.downgrade_group(GROUP)
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
    ops.rename_tables(GROUP.tables, back=True)
