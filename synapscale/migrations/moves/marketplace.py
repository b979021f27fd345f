"""marketplace's data moves by hand (contract.yaml `moves:`): author_name into users.full_name, tags into text[].

A component's author_name that is not its author's full_name is kept in the new ``metadata`` and reported; the
column stays for the old application until the contract, kept by a trigger (``ops.Carried``). Comma-separated
tags become a text[] (whitespace around the commas trimmed, as the workload compares them).
"""

from __future__ import annotations

from functools import partial

from synapscale.migrations import ops

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
TAGS_TO_ARRAY = "CASE WHEN btrim(tags) = '' THEN '{}'::text[] ELSE regexp_split_to_array(btrim(tags), '\\s*,\\s*') END"


def up(group: ops.Group) -> None:
    """author_name: disagreements with users.full_name kept in metadata and reported, the column kept in sync until
    the contract; tags -> text[]."""
    ops.step(partial(carry_author_name, group.table("marketplace_components")), "marketplace_components")
    ops.step(tags_to_array, "marketplace_components")


def carry_author_name(components: ops.Table) -> None:
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
        ops.sync_carried(components, AUTHOR_NAME)


def tags_to_array() -> None:
    """A rewrite under ACCESS EXCLUSIVE: the component catalogue stays small (see docs/decisions.md)."""
    if "tags" in ops.columns_of("marketplace_components", "text"):
        ops.run(f"ALTER TABLE {MC} ALTER COLUMN tags TYPE text[] USING {TAGS_TO_ARRAY}")


def down(group: ops.Group) -> None:
    """tags come back comma-joined (no spaces); author_name never left (the contract's downgrade puts it back)."""
    ops.run(f"ALTER TABLE {MC} ALTER COLUMN tags TYPE text USING array_to_string(tags, ',')")
    ops.run(f"ALTER TABLE {MC} DROP COLUMN IF EXISTS metadata")


# the contract revision drops author_name
MOVES = ops.Moves(up, down, {"marketplace_components": {"carried": (AUTHOR_NAME,)}})
