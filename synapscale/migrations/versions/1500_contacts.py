"""contacts: generic global rules.

Implements, for every table of the group (spec "### contacts"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: contacts_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "contacts_1"
down_revision = "foundation"
branch_labels = ("contacts",)
depends_on = None

TABLES = (
    Table(
        "campaign_contacts",
        tenant=REQUIRED,
        parents=(
            ("campaign_id", "campaigns"),
            ("contact_id", "contacts"),
        ),
        fks=(
            Fk("campaign_id", "campaigns", CASCADE, "campaign_contacts_campaign_id_fkey:a"),
            Fk("contact_id", "contacts", CASCADE, "campaign_contacts_contact_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "campaign_contacts_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "campaigns",
        tenant=REQUIRED,
        parents=(("workspace_id", "workspaces"),),
        fks=(
            Fk("created_by", "users", SET_NULL, "campaigns_created_by_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "campaigns_tenant_id_fkey:a"),
            Fk("workspace_id", "workspaces", CASCADE, "campaigns_workspace_id_fkey:a"),
        ),
    ),
    Table(
        "contact_events",
        tenant=REQUIRED,
        parents=(("contact_id", "contacts"),),
        fks=(
            Fk("contact_id", "contacts", CASCADE, "contact_events_contact_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "contact_events_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "contact_interactions",
        tenant=REQUIRED,
        parents=(("contact_id", "contacts"),),
        fks=(
            Fk("contact_id", "contacts", CASCADE, "contact_interactions_contact_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "contact_interactions_tenant_id_fkey:a"),
            Fk("user_id", "users", SET_NULL, "contact_interactions_user_id_fkey:a"),
        ),
    ),
    Table(
        "contact_list_memberships",
        tenant=REQUIRED,
        parents=(
            ("contact_id", "contacts"),
            ("list_id", "contact_lists"),
        ),
        fks=(
            Fk("added_by", "users", SET_NULL, "contact_list_memberships_added_by_fkey:a"),
            Fk("contact_id", "contacts", CASCADE, "contact_list_memberships_contact_id_fkey:a"),
            Fk("list_id", "contact_lists", CASCADE, "contact_list_memberships_list_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "contact_list_memberships_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "contact_lists",
        tenant=REQUIRED,
        fks=(
            Fk("created_by", "users", SET_NULL, "contact_lists_created_by_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "contact_lists_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "contact_notes",
        tenant=REQUIRED,
        parents=(("contact_id", "contacts"),),
        fks=(
            Fk("author_id", "users", SET_NULL, "contact_notes_author_id_fkey:a"),
            Fk("contact_id", "contacts", CASCADE, "contact_notes_contact_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "contact_notes_tenant_id_fkey:a"),
        ),
    ),
    Table("contact_sources", tenant=REQUIRED, fks=(Fk("tenant_id", "tenants", CASCADE, "contact_sources_tenant_id_fkey:a"),)),
    Table(
        "contact_tags",
        tenant=REQUIRED,
        parents=(("contact_id", "contacts"),),
        fks=(
            Fk("contact_id", "contacts", CASCADE, "contact_tags_contact_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "contact_tags_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "contacts",
        tenant=REQUIRED,
        parents=(("source_id", "contact_sources"),),
        fks=(
            Fk("source_id", "contact_sources", SET_NULL, "contacts_source_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "contacts_tenant_id_fkey:a"),
        ),
    ),
)

COUNTERS: tuple[ops.Counter, ...] = ()
GIN: tuple[ops.Gin, ...] = ()
GROUP = ops.Group(TABLES, COUNTERS, GIN)


def upgrade() -> None:
    ops.expand_large(GROUP.tables)
    ops.begin()
    ops.upgrade_group(GROUP)


def downgrade() -> None:
    ops.begin()
    ops.downgrade_group(GROUP)
