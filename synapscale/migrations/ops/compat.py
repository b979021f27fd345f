"""Zero-downtime renames: expand keeps the old names working, contract removes them (docs/decisions.md).

- A renamed table becomes its new name and, in the same transaction, a view under its old name:
  ``security_invoker`` (the table's RLS applies to whoever queries the view), one table in FROM and
  plain column references, so PostgreSQL updates through it by itself. Dropped columns the old
  application still reads appear in it as read-only expressions over their destination
  (``Table.legacy_columns``). The old name never disappears, not even for one statement.
- A renamed column gets its new column next to the old one (jsonb when the old one is json), a
  trigger that copies whichever side a statement wrote to the other side, and a keyset backfill.
- A dropped column the old application still uses (``Table.kept``) stays until the contract, kept in sync with
  the column of the same table its data moved to (the same trigger); one whose data moved elsewhere (rows of
  another table, another table's column: ``Table.carried``) by a trigger on the tables its ``Carried.on`` names.
- A new NOT NULL column the old application does not write (``Table.filled``) is filled by a trigger from the
  rest of the row: on an insert that leaves it NULL, on an update that leaves it as it was.
- Contract: refused while a session still uses an old name; then the views, triggers and old columns go.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from functools import partial

import psycopg
from alembic import op

from synapscale.migrations.ops.declarations import JSONB_SUSPECT, SHADOW, Carried, Table
from synapscale.migrations.ops.jsonb import backfill, quarantine_json
from synapscale.migrations.ops.plumbing import (
    autocommit,
    begin,
    exists_table,
    has_column,
    is_not_null,
    journal,
    lit,
    q,
    run,
    run_all,
    scalar,
    schema,
    step,
)
from synapscale.migrations.ops.rls import set_not_null
from synapscale.migrations.ops.views import create_view, is_view

DEFAULT_CONTRACT_WATCH_S = 2.0


def compat_select(t: Table) -> str:
    """The old table as the new one shows it: every current column but the G1 expand's shadows (``<col>__jsonb``,
    renamed over their column by its contract), then the dropped ones read from their destination."""
    cols = [f'x."{c}"' for (c,) in run("SELECT attname::text FROM pg_attribute WHERE attrelid = %(t)s::regclass "
                                       "AND attnum > 0 AND NOT attisdropped AND right(attname, %(n)s) <> %(s)s "
                                       "ORDER BY attnum", {"t": q(t.name), "n": len(SHADOW), "s": SHADOW})]
    cols += [f'({expr}) AS "{c}"' for c, expr in t.legacy_columns if not has_column(t.name, c)]
    return f"SELECT {', '.join(cols)} FROM {q(t.name)} x"


def create_compat_view(t: Table) -> None:
    """(Re)create the view under ``t.legacy_name``; inside a step holding the table's lock."""
    if t.legacy_name and exists_table(t.name):
        run(f"DROP VIEW IF EXISTS {q(t.legacy_name)}")
        create_view(t.legacy_name, compat_select(t))


def drop_compat_views(tables: Iterable[Table]) -> None:
    for t in tables:
        if t.legacy_name and is_view(t.legacy_name):
            run(f"DROP VIEW {q(t.legacy_name)}")


def _rename_with_view(t: Table) -> None:
    if t.legacy_name and exists_table(t.legacy_name) and not is_view(t.legacy_name):
        run(f'ALTER TABLE {q(t.legacy_name)} RENAME TO "{t.name}"')
    if t.legacy_name and not is_view(t.legacy_name):
        create_compat_view(t)


def expand_tables(tables: Iterable[Table]) -> None:
    """Each renamed table to its new name with its compatibility view, in one short transaction per table."""
    for t in tables:
        if t.legacy_name:
            step(partial(_rename_with_view, t), t.legacy_name if exists_table(t.legacy_name) else t.name)


# ---- renamed columns: a trigger keeps both names in sync -------------------------------------------------------


def sync_name(table: str, old: str) -> str:
    return f"{table}_{old}_compat_sync"[:63]


def _types(t: Table, old: str, new: str) -> tuple[str, str]:
    """(old type, new type): json becomes jsonb under its new name (G1); any other type stays."""
    if old in t.json:
        return "json", "jsonb"
    have = str(scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %(t)s::regclass "
                      "AND attname = %(c)s", {"t": q(t.name), "c": old if has_column(t.name, old) else new}))
    return have, have


def _converters(old_type: str, new_type: str) -> tuple[str, str]:
    """Format strings turning a value of the old column into the new type, and back."""
    if (old_type, new_type) == ("json", "jsonb"):
        return f"{schema()}.json_to_jsonb({{}})", "({})::json"
    return "{}", "{}"


def sync_function_sql(t: Table, old: str, new: str) -> str:
    """The trigger function keeping ``old`` and ``new`` equal, whichever a statement wrote.

    INSERT: the side left NULL takes the other's value. UPDATE: a changed old side is copied to the new
    one; a changed new side that disagrees with the old one is copied back (the backfill writes agreeing
    values, so it never rewrites the old text). json the jsonb type rejects is quarantined verbatim, as
    the G1 conversion does; SECURITY DEFINER because the application role may not write the quarantine.
    """
    old_type, new_type = _types(t, old, new)
    to_new, to_old = _converters(old_type, new_type)
    n_old, n_new, o_old, o_new = f"NEW.{old}", f"NEW.{new}", f"OLD.{old}", f"OLD.{new}"
    keep = ""
    if old_type == "json":
        keep = (f"IF {n_old} IS NOT NULL AND {n_old}::text ~ {lit(JSONB_SUSPECT)} "
                f"AND NOT {schema()}.jsonb_accepts({n_old}::text) "
                f"AND (TG_OP = 'INSERT' OR {n_old}::text IS DISTINCT FROM {o_old}::text) THEN INSERT INTO "
                f"{q('migration_quarantine')} (table_name, primary_key, column_name, original_text, reason) VALUES "
                f"({lit(t.name)}, NEW.id::text, {lit(old)}, {n_old}::text, 'jsonb_rejects'); END IF;\n    ")
    return (f"CREATE OR REPLACE FUNCTION {schema()}.{sync_name(t.name, old)}() RETURNS trigger LANGUAGE plpgsql "
            f"SECURITY DEFINER SET search_path = pg_catalog AS $$\nBEGIN\n    {keep}"
            f"IF TG_OP = 'INSERT' THEN\n"
            f"        IF {n_new} IS NULL THEN {n_new} := {to_new.format(n_old)};\n"
            f"        ELSIF {n_old} IS NULL THEN {n_old} := {to_old.format(n_new)};\n        END IF;\n"
            f"    ELSIF {n_old}::text IS DISTINCT FROM {o_old}::text THEN\n        {n_new} := {to_new.format(n_old)};\n"
            f"    ELSIF {n_new}::text IS DISTINCT FROM {o_new}::text AND {n_new} IS DISTINCT FROM {to_new.format(n_old)} THEN\n"
            f"        {n_old} := {to_old.format(n_new)};\n    END IF;\n    RETURN NEW;\nEND $$")


def _synced(table: str, old: str) -> bool:
    return bool(scalar("SELECT 1 FROM pg_trigger WHERE tgrelid = %(t)s::regclass AND tgname = %(n)s",
                       {"t": q(table), "n": sync_name(table, old)}))


def _add_synced(t: Table, old: str, new: str) -> None:
    old_type, new_type = _types(t, old, new)
    if not has_column(t.name, new):
        run(f"ALTER TABLE {q(t.name)} ADD COLUMN {new} {new_type}")
    if not has_column(t.name, old):
        run(f"ALTER TABLE {q(t.name)} ADD COLUMN {old} {old_type}")
    name = sync_name(t.name, old)
    run_all(sync_function_sql(t, old, new), f"DROP TRIGGER IF EXISTS {name} ON {q(t.name)}",
            f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {q(t.name)} FOR EACH ROW EXECUTE FUNCTION {schema()}.{name}()")


def expand_columns(t: Table) -> None:
    """Both names of every renamed column of ``t``, kept in sync (expand; also the downgrade of the contract).

    Trigger first (short lock), backfill after in keyset batches: no write falls between the two.
    """
    for old, new in t.renames:
        if not (has_column(t.name, old) or has_column(t.name, new)):
            continue
        step(partial(_add_synced, t, old, new), t.name)
        if old in t.json:
            step(partial(quarantine_json, t.name, old))
        to_new, to_old = _converters(*_types(t, old, new))
        backfill(t.name, f"{new} = coalesce(t.{new}, {to_new.format('t.' + old)}), "
                         f"{old} = coalesce(t.{old}, {to_old.format('t.' + new)})",
                 f"(t.{new} IS NULL) <> (t.{old} IS NULL)")


def expand_kept(t: Table) -> None:
    """Each dropped column of ``t.kept`` stays for the old application, kept in sync with its destination.

    Before the group's data move: the move then writes agreeing values, and no write of the old
    application falls between the move and the trigger. No backfill: the data move is the backfill.
    """
    for old, new in t.kept:
        if has_column(t.name, old) and has_column(t.name, new) and not _synced(t.name, old):
            step(partial(_add_synced, t, old, new), t.name)


def sync_carried(t: Table, c: Carried) -> None:
    """The sync trigger of a carried column on each of its tables (idempotent). The revision calls it in its data
    move's step, after the move: one transaction, so no write falls between them, and the rows the move writes
    neither fire the sync nor rewrite the column they came from."""
    name = sync_name(t.name, c.column)
    # the invoker's rights (not the owner's): a row the old application could not write to the destination
    # itself, another tenant's membership, is refused by the destination's RLS
    run_all(f"CREATE OR REPLACE FUNCTION {schema()}.{name}() RETURNS trigger LANGUAGE plpgsql "
            f"SET search_path = pg_catalog AS $$\n{c.sync}\n$$",
            *(sql for table, when in c.on for sql in (
                f"DROP TRIGGER IF EXISTS {name} ON {q(table)}",
                f"CREATE TRIGGER {name} {when} ON {q(table)} FOR EACH ROW EXECUTE FUNCTION {schema()}.{name}()")))


def fill_name(table: str, column: str) -> str:
    return f"{table}_{column}_compat_fill"[:63]


def fill_new(t: Table) -> None:
    """The fill triggers of ``t.filled`` (idempotent). Called in the step that makes the column NOT NULL, so no
    write of the old application falls between the constraint and the trigger that satisfies it."""
    for column, value in t.filled:
        name = fill_name(t.name, column)
        run_all(f"CREATE OR REPLACE FUNCTION {schema()}.{name}() RETURNS trigger LANGUAGE plpgsql "
                f"SET search_path = pg_catalog AS $$\nBEGIN\n"
                f"    IF NEW.{column} IS NULL OR TG_OP = 'UPDATE' AND NEW.{column} IS NOT DISTINCT FROM OLD.{column} THEN\n"
                f"        NEW.{column} := {value};\n    END IF;\n    RETURN NEW;\nEND\n$$",
                f"DROP TRIGGER IF EXISTS {name} ON {q(t.name)}",
                f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {q(t.name)} FOR EACH ROW "
                f"EXECUTE FUNCTION {schema()}.{name}()")


def drop_fill(t: Table) -> None:
    """The fill triggers go: at the contract (nothing writes without the column any more) and on downgrade."""
    for column, _ in t.filled:
        run(f"DROP TRIGGER IF EXISTS {fill_name(t.name, column)} ON {q(t.name)}")
        run(f"DROP FUNCTION IF EXISTS {schema()}.{fill_name(t.name, column)}()")


def _unjournal_kept(table: str, column: str, type_: str) -> None:
    """A kept column re-added with the values the contract journaled before dropping it."""
    run(f"ALTER TABLE {q(table)} ADD COLUMN IF NOT EXISTS {column} {type_}")
    run(f"UPDATE {q(table)} x SET {column} = j.old_value::{type_} FROM {q('migration_undo')} j WHERE j.table_name = %(t)s "
        "AND j.column_name = %(c)s AND j.kind = 'kept_dropped' AND x.id::text = j.primary_key", {"t": table, "c": column})
    run(f"DELETE FROM {q('migration_undo')} WHERE table_name = %(t)s AND column_name = %(c)s AND kind = 'kept_dropped'",
        {"t": table, "c": column})


def _restore_kept(t: Table, old: str, new: str) -> None:
    """The downgrade of the contract for a kept column: re-added, its values back from the contract's journal."""
    _unjournal_kept(t.name, old, _types(t, old, new)[0])
    _add_synced(t, old, new)


def _restore_carried(t: Table, c: Carried) -> None:
    """The downgrade of the contract for a carried column: its journaled values back, then ``Carried.restore``,
    then the sync on both tables again."""
    _unjournal_kept(t.name, c.column, c.type)
    run_all(*c.restore)
    sync_carried(t, c)


def _drop_kept(t: Table, old: str) -> None:
    """The contract of a kept column: its values journaled (the downgrade puts them back exactly), then dropped."""
    journal(t.name, old, "kept_dropped", f"SELECT id, {old} FROM {q(t.name)} WHERE {old} IS NOT NULL")
    _drop_old(t.name, old)


def _drop_sync(table: str, old: str) -> None:
    """The sync trigger and its function (CASCADE: a carried column's trigger on its destination goes with it)."""
    run(f"DROP TRIGGER IF EXISTS {sync_name(table, old)} ON {q(table)}")
    run(f"DROP FUNCTION IF EXISTS {schema()}.{sync_name(table, old)}() CASCADE")


def _drop_old(table: str, old: str) -> None:
    """The old column and the trigger keeping it in sync."""
    _drop_sync(table, old)
    run(f"ALTER TABLE {q(table)} DROP COLUMN {old}")


def contract_columns(t: Table) -> None:
    """The old side of every renamed column goes (its NOT NULL, if any, carried to the new side first)."""
    for old, new in t.renames:
        if not has_column(t.name, old):
            continue
        if is_not_null(t.name, old):
            set_not_null(t.name, new)
        step(partial(_drop_old, t.name, old), t.name)


def revert_columns(t: Table) -> None:
    """Back from the expand: the sync triggers go, and the new side of each renamed column (the old side
    was never changed); a kept column and its destination are both legacy columns and stay."""
    if t.filled and exists_table(t.name):
        drop_fill(t)
    for old in (*(old for old, _ in t.kept), *(c.column for c in t.carried)):
        if exists_table(t.name):
            _drop_sync(t.name, old)
    for old, new in t.renames:
        if not exists_table(t.name):
            continue
        _drop_sync(t.name, old)
        if has_column(t.name, old) and has_column(t.name, new):
            run(f"ALTER TABLE {q(t.name)} DROP COLUMN {new}")
        elif has_column(t.name, new):  # a database renamed in place by an earlier version of the revision
            run(f"ALTER TABLE {q(t.name)} RENAME COLUMN {new} TO {old}")


# ---- contract guard ---------------------------------------------------------------------------------------------


def expanded_tables(revisions: Iterable[str]) -> list[Table]:
    """The renamed tables and tables with renamed or kept columns, as the group revisions ``revisions`` declare
    them (their ``GROUP``): what a contract revision removes the old names of, read from where they are stated."""
    scripts = op.get_context().script
    assert scripts is not None
    found = [t for rev in revisions for t in scripts.get_revision(rev).module.GROUP.tables]  # type: ignore[union-attr]
    return [t for t in found if t.expanded]


def old_names(tables: Iterable[Table]) -> list[str]:
    """The names only the old application uses. Not a carried column's: ``users.tenant_id`` shares its name with
    every tenant table's column, so no statement text tells its old use from the new application's; the old
    application still names the other old names of its release, and the operator confirms it is gone."""
    ts = list(tables)
    return sorted({t.legacy_name for t in ts if t.legacy_name} | {old for t in ts for old, _ in (*t.renames, *t.kept)})


def _pattern(names: list[str]) -> str:
    return r"\m(" + "|".join(names) + r")\M"


def sessions_using(names: list[str]) -> list[tuple[int, str, str]]:
    """Other sessions of this database whose running or last statement names one of ``names``."""
    return [(int(p), str(a), str(qy)) for p, a, qy in run(
        "SELECT pid, coalesce(application_name, ''), left(regexp_replace(query, '\\s+', ' ', 'g'), 160) "
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' AND query ~* %(p)s ORDER BY pid", {"p": _pattern(names)})]


def _statement_calls(names: list[str]) -> dict[int, int] | None:
    """queryid -> calls of the pg_stat_statements entries naming one of ``names``; None without the extension."""
    schema = scalar("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_stat_statements'")
    if schema is None:
        return None
    try:
        rows = run(f"SELECT queryid, calls FROM {schema}.pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
                   "WHERE datname = current_database()) AND query ~* %(p)s", {"p": _pattern(names)})
    except psycopg.Error:  # the extension without its preloaded library: the session check stands alone
        return None
    return {int(qid): int(calls) for qid, calls in rows}


def contract_watch() -> float:
    return float(os.environ.get("SYNAPSCALE_CONTRACT_WATCH_S", DEFAULT_CONTRACT_WATCH_S))


def ensure_unused(tables: Iterable[Table]) -> None:
    """Refuse the contract while anything still uses an old name.

    Two signs: a connected session whose running or last statement names one (``pg_stat_activity``:
    an old application's pooled connections stay connected), and, with ``pg_stat_statements``, a
    statement naming one whose calls grow during ``SYNAPSCALE_CONTRACT_WATCH_S`` seconds. Without
    the extension only the first sign is read, and the operator confirms the old application is gone
    (docs/rollback.md). ``SYNAPSCALE_CONTRACT_FORCE=1`` skips the check after that confirmation.
    """
    names = old_names(tables)
    if not names or os.environ.get("SYNAPSCALE_CONTRACT_FORCE") == "1":
        return
    users = sessions_using(names)
    before = _statement_calls(names)
    grown: list[int] = []
    if before is not None and not users:
        time.sleep(contract_watch())
        after = _statement_calls(names) or {}
        grown = [qid for qid, calls in after.items() if calls > before.get(qid, 0)]
    if users or grown:
        who = "; ".join(f"pid {p} ({a or 'no application_name'}): {qy[:100]}" for p, a, qy in users[:3])
        raise RuntimeError(
            f"contract refused: the old names ({', '.join(names)}) are still in use by "
            + (f"{len(users)} session(s): {who}" if users else f"{len(grown)} statement(s) of pg_stat_statements")
            + ". Stop the old application (or wait for its connections to close), then upgrade again; "
              "SYNAPSCALE_CONTRACT_FORCE=1 skips this check once that is confirmed")


def contract(tables: Iterable[Table]) -> None:
    """The contract of every renamed table and column of ``tables``, each in its own short step."""
    ts = list(tables)
    ensure_unused(ts)
    for t in ts:
        if t.legacy_name and is_view(t.legacy_name):
            step(partial(drop_compat_views, [t]), t.legacy_name, t.name)
    for t in ts:
        contract_columns(t)
        for old, _ in t.kept:
            if has_column(t.name, old):
                step(partial(_drop_kept, t, old), t.name)
        for c in t.carried:
            if has_column(t.name, c.column):
                step(partial(_drop_kept, t, c.column), *c.tables)
        if t.filled:
            step(partial(drop_fill, t), t.name)


def contract_revision(expands: Iterable[str], expanded: Iterable[Table] = ()) -> None:
    """The upgrade of a contract revision: :func:`contract` over what the group revisions ``expands`` expanded, and
    over ``expanded``, what an earlier expand had left when the revisions were planned."""
    begin()
    with autocommit():
        contract([*expanded_tables(expands), *expanded])


def re_expand_revision(expands: Iterable[str], expanded: Iterable[Table] = ()) -> None:
    """The downgrade of a contract revision: :func:`re_expand` over the same tables."""
    begin()
    with autocommit():
        re_expand([*expanded_tables(expands), *expanded])


def re_expand(tables: Iterable[Table]) -> None:
    """The downgrade of :func:`contract`: the old names back, kept in sync as in the expand."""
    ts = list(tables)
    for t in ts:
        expand_columns(t)
        for old, new in t.kept:
            if not has_column(t.name, old):
                step(partial(_restore_kept, t, old, new), t.name)
        for c in t.carried:
            if not has_column(t.name, c.column):
                step(partial(_restore_carried, t, c), *c.tables)
        if t.filled:
            step(partial(fill_new, t), t.name)
    for t in ts:
        if t.legacy_name and exists_table(t.name) and not exists_table(t.legacy_name):
            step(partial(create_compat_view, t), t.name)
