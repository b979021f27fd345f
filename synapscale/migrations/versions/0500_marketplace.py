"""marketplace: author_name dropped (disagreements kept), tags text[], counters.

Implements, for every table of the group (spec "### marketplace"): G1 json -> jsonb (rejected values
quarantined, then sanitised; expand/contract above the row threshold), G2 timestamptz read as UTC,
G3 meta_data -> metadata, G4 one FK per column with an explicit ON DELETE, G5 tenant_id NOT NULL
where nothing is NULL + RLS enabled, forced, one policy per command, G6 GIN, G7 tenant guards,
G8 counters.

Revision ID: marketplace_1
Revises: foundation
"""

from __future__ import annotations

from synapscale.migrations import ops
from synapscale.migrations.ops import CASCADE, GLOBAL, REQUIRED, RESTRICT, SET_NULL, Fk, Table  # noqa: F401

revision = "marketplace_1"
down_revision = "foundation"
branch_labels = ("marketplace",)
depends_on = None

MC, U = ops.q("marketplace_components"), ops.q("users")
FULL_NAME = f"(SELECT u.full_name FROM {U} u WHERE u.id = NEW.author_id)"
# author_name for the old application until the contract: a name it writes that is not the author's full_name is
# kept in metadata (as the move keeps the legacy ones); a row written without one (the new application) or given
# another author shows the author's full_name
AUTHOR_NAME = ops.Carried(
    "author_name", "text",
    sync=("BEGIN\n"
          "    IF TG_OP = 'INSERT' AND NEW.author_name IS NULL OR TG_OP = 'UPDATE' AND "
          "NEW.author_id IS DISTINCT FROM OLD.author_id AND NEW.author_name IS NOT DISTINCT FROM OLD.author_name THEN\n"
          f"        NEW.author_name := {FULL_NAME};\n"
          "    END IF;\n"
          f"    IF NEW.author_name IS NOT NULL AND NEW.author_name IS DISTINCT FROM {FULL_NAME} THEN\n"
          "        NEW.metadata := NEW.metadata || jsonb_build_object('legacy_author_name', NEW.author_name);\n"
          "    ELSE\n"
          "        NEW.metadata := NEW.metadata - 'legacy_author_name';\n"
          "    END IF;\n"
          "    RETURN NEW;\nEND"),
    restore=(f"UPDATE {MC} m SET author_name = coalesce(m.metadata ->> 'legacy_author_name', u.full_name) FROM {U} u "
             "WHERE u.id = m.author_id AND m.author_name IS NULL",),
    on=(("marketplace_components", "BEFORE INSERT OR UPDATE"),),
)

TABLES = (
    Table(
        "component_downloads",
        tenant=REQUIRED,  # the buyer's tenant, not the author's: no parent guard (public marketplace)
        fks=(
            Fk("component_id", "marketplace_components", CASCADE, "component_downloads_component_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "component_downloads_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "component_downloads_user_id_fkey:a"),
        ),
    ),
    Table(
        "component_purchases",
        tenant=REQUIRED,  # the buyer's tenant, not the author's: no parent guard (public marketplace)
        fks=(
            Fk("component_id", "marketplace_components", RESTRICT, "component_purchases_component_id_fkey:a"),
            Fk("tenant_id", "tenants", RESTRICT, "component_purchases_tenant_id_fkey:a"),
            Fk("user_id", "users", RESTRICT, "component_purchases_user_id_fkey:a"),
        ),
    ),
    Table(
        "component_ratings",
        tenant=REQUIRED,  # the buyer's tenant, not the author's: no parent guard (public marketplace)
        fks=(
            Fk("component_id", "marketplace_components", CASCADE, "component_ratings_component_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "component_ratings_tenant_id_fkey:a"),
            Fk("user_id", "users", CASCADE, "component_ratings_user_id_fkey:a"),
        ),
    ),
    Table(
        "component_versions",
        json=("component_data", "dependencies"),
        tenant=REQUIRED,
        parents=(("component_id", "marketplace_components"),),
        fks=(
            Fk("component_id", "marketplace_components", CASCADE, "component_versions_component_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "component_versions_tenant_id_fkey:a"),
        ),
    ),
    Table(
        "marketplace_components",
        json=("configuration_schema", "dependencies", "compatibility", "examples", "screenshots", "keywords"),
        tenant=REQUIRED,
        fks=(
            Fk("author_id", "users", RESTRICT, "marketplace_components_author_id_fkey:a"),
            Fk("tenant_id", "tenants", CASCADE, "marketplace_components_tenant_id_fkey:a"),
        ),
        carried=(AUTHOR_NAME,),  # the contract revision drops author_name
    ),
)

COUNTERS = (
    ops.Counter("marketplace_components", "component_downloads", "component_id", (("downloads_count", "count(*)"),)),
    ops.Counter(
        "marketplace_components",
        "component_ratings",
        "component_id",
        (("rating_count", "count(*)"), ("rating_average", "coalesce(round(avg(c.rating), 2), 0)")),
        watch=("rating",),
    ),
)
GIN = (ops.Gin("marketplace_components", "tags"),)
GROUP = ops.Group(TABLES, COUNTERS, GIN)
COMPONENTS = TABLES[-1]

TAGS_TO_ARRAY = "CASE WHEN btrim(tags) = '' THEN '{}'::text[] ELSE regexp_split_to_array(btrim(tags), '\\s*,\\s*') END"


def upgrade() -> None:
    """author_name: disagreements with users.full_name kept in metadata and reported, the column kept in sync until
    the contract; tags -> text[]."""
    ops.expand_large(GROUP.tables)
    ops.begin()
    with ops.autocommit():
        ops.step(carry_author_name, "marketplace_components")
        ops.step(tags_to_array, "marketplace_components")
    ops.upgrade_group(GROUP)


def carry_author_name() -> None:
    """metadata added, disagreeing author names kept in it, then the sync: one short transaction."""
    ops.run(f"ALTER TABLE {MC} ADD COLUMN IF NOT EXISTS metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb")
    if ops.has_column("marketplace_components", "author_name"):
        disagree = (
            f"FROM {MC} m LEFT JOIN {U} u ON u.id = m.author_id WHERE m.author_name IS DISTINCT FROM u.full_name"
        )
        ops.quarantine(
            "marketplace_components",
            "author_name",
            "author_name_mismatch",
            f"SELECT m.id, m.author_name {disagree} AND m.author_name IS NOT NULL",
        )
        ops.run(
            f"UPDATE {MC} x SET metadata = x.metadata || jsonb_build_object('legacy_author_name', m.author_name) "
            f"FROM (SELECT m.id, m.author_name {disagree} AND m.author_name IS NOT NULL) m WHERE x.id = m.id"
        )
        ops.sync_carried(COMPONENTS, AUTHOR_NAME)


def tags_to_array() -> None:
    """A rewrite under ACCESS EXCLUSIVE: the component catalogue stays small (see docs/decisions.md)."""
    if "tags" in ops.columns_of("marketplace_components", "text"):
        ops.run(f"ALTER TABLE {MC} ALTER COLUMN tags TYPE text[] USING {TAGS_TO_ARRAY}")


def downgrade() -> None:
    """tags come back comma-joined (no spaces); author_name never left (the contract's downgrade puts it back)."""
    ops.begin()
    ops.downgrade_group(GROUP)
    ops.run(f"ALTER TABLE {MC} ALTER COLUMN tags TYPE text USING array_to_string(tags, ',')")
    ops.run(f"ALTER TABLE {MC} DROP COLUMN IF EXISTS metadata")
