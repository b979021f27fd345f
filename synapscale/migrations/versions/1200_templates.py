"""templates: jsonb, template counters on workflow_templates.

Implements, for every table of the group (spec "### templates"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: templates_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "templates_1"
down_revision = "foundation"
branch_labels = ("templates",)
depends_on = None  # see docs/decisions.md "No depends_on"

TABLES = (
    Table(
        "template_collections",
        json=("template_ids", "tags"),
        tenant=REQUIRED,
        fks=(
            Fk("creator_id", "users", RESTRICT, "template_collections_creator_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "template_collections_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "template_downloads",
        tenant=REQUIRED,
        # template_id: public templates are used by other tenants, no parent guard
        fks=(
            Fk("template_id", "workflow_templates", CASCADE, "template_downloads_template_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "template_downloads_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "template_downloads_user_id_fkey:a"),
        ),
    ),
    Table(
        "template_favorites",
        tenant=REQUIRED,
        # template_id: public templates are used by other tenants, no parent guard
        fks=(
            Fk("template_id", "workflow_templates", CASCADE, "template_favorites_template_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "template_favorites_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "template_favorites_user_id_fkey:a"),
        ),
    ),
    Table(
        "template_reviews",
        tenant=REQUIRED,
        # template_id: public templates are used by other tenants, no parent guard
        fks=(
            Fk("template_id", "workflow_templates", CASCADE, "template_reviews_template_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "template_reviews_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "template_reviews_user_id_fkey:a"),
        ),
    ),
    Table(
        "template_usage",
        json=("modifications_made",),
        tenant=REQUIRED,
        parents=(("workflow_id", "workflows"),),  # template_id: public templates cross tenants
        fks=(
            Fk("template_id", "workflow_templates", CASCADE, "template_usage_template_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "template_usage_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "template_usage_user_id_fkey:a"),
            Fk("workflow_id", "workflows", SET_NULL, "template_usage_workflow_id_fkey:a"),
        ),
    ),
)

WT = "workflow_templates"  # its counters live in the nodes group's table, kept here by this group's triggers
COUNTERS = (
    ops.Counter(WT, "template_downloads", "template_id", (("downloads_count", "count(*)"),)),
    ops.Counter(WT, "template_usage", "template_id", (("usage_count", "count(*)"),)),
    ops.Counter(WT, "template_favorites", "template_id", (("favorites_count", "count(*)"),)),
    ops.Counter(
        WT,
        "template_reviews",
        "template_id",
        (("rating_count", "count(*)"), ("rating_average", "coalesce(round(avg(c.rating), 2), 0)")),
        watch=("rating",),
    ),
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
