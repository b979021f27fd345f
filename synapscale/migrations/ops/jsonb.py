"""G1 json -> jsonb: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import partial

from synapscale.migrations.ops.declarations import DEFAULT_EXPAND_CONTRACT_ROWS, JSONB_SUSPECT, SHADOW, Table
from synapscale.migrations.ops.plumbing import (
    autocommit,
    columns_of,
    concurrently,
    exists_table,
    has_column,
    is_not_null,
    journal,
    lit,
    lock_settings,
    now_defaults,
    q,
    quarantine,
    run,
    scalar,
    schema,
    step,
)
from synapscale.migrations.ops.views import lifted, reading_views, with_views


def converted(t: Table) -> list[str]:
    """json columns converted in place: a renamed one gets its jsonb column under the new name instead (ops.compat)."""
    renamed = {old for old, _ in t.renames}
    return [c for c in t.json if c not in renamed]


def expand_contract_rows() -> int:
    return int(os.environ.get("SYNAPSCALE_EXPAND_CONTRACT_ROWS", DEFAULT_EXPAND_CONTRACT_ROWS))


def row_estimate(table: str, cap: int) -> int:
    """The planner's row estimate; a table never analysed is counted, but never past ``cap + 1`` rows."""
    est = scalar("SELECT reltuples::bigint FROM pg_class WHERE oid = %(t)s::regclass", {"t": q(table)})
    if est is not None and est >= 0:
        return int(est)
    return int(scalar(f"SELECT count(*) FROM (SELECT 1 FROM {q(table)} LIMIT %(n)s) s", {"n": cap + 1}))


def quarantine_json(table: str, column: str) -> int:
    """Every value of a json column that jsonb rejects goes, verbatim, into migration_quarantine."""
    return quarantine(table, column, "jsonb_rejects",
                      f"SELECT id, {column}::text FROM {q(table)} WHERE {column} IS NOT NULL "
                      f"AND {column}::text ~ {lit(JSONB_SUSPECT)} AND NOT {schema()}.jsonb_accepts({column}::text)")


def sanitise_json(table: str, column: str) -> None:
    """Rewrite (after quarantining) the values jsonb rejects into what json_sanitize keeps of them."""
    run(f"UPDATE {q(table)} SET {column} = {schema()}.json_sanitize({column}::text)::json WHERE {column} IS NOT NULL "
        f"AND {column}::text ~ {lit(JSONB_SUSPECT)} AND NOT {schema()}.jsonb_accepts({column}::text)")


def expand_large(tables: Iterable[Table], batch: int = 5000) -> None:
    """Expand phase for tables over the threshold, outside the revision transaction (short locks only).

    Adds ``<col>__jsonb`` shadow columns, a trigger that keeps them in sync with every write (and
    quarantines a written value jsonb rejects, so values written during the expand are kept verbatim
    too), then quarantines the existing rejected values and backfills in keyset batches, each
    committed on its own. The contract (swap) happens later in
    :func:`apply_json_and_time`, in one short transaction. Idempotent: a rerun resumes.
    """
    threshold = expand_contract_rows()
    large = [t for t in tables if converted(t) and exists_table(t.name) and columns_of(t.name, "json")
             and row_estimate(t.name, threshold) > threshold]
    if not large:
        return
    with autocommit():
        lock_settings()
        for t in large:
            cols = [c for c in converted(t) if c in columns_of(t.name, "json")]
            if not cols:
                continue
            fn = f"{schema()}.{t.name}{SHADOW}_sync"
            body = "".join(f"IF NEW.{c} IS NOT NULL AND NEW.{c}::text ~ {lit(JSONB_SUSPECT)} "
                           f"AND NOT {schema()}.jsonb_accepts(NEW.{c}::text) THEN INSERT INTO {q('migration_quarantine')} "
                           f"(table_name, primary_key, column_name, original_text, reason) VALUES ({lit(t.name)}, "
                           f"NEW.id::text, {lit(c)}, NEW.{c}::text, 'jsonb_rejects'); END IF; "
                           f"NEW.{c}{SHADOW} := {schema()}.json_to_jsonb(NEW.{c}); " for c in cols)

            def shadow(t: Table = t, cols: list[str] = cols, fn: str = fn, body: str = body) -> None:
                for c in cols:
                    run(f"ALTER TABLE {q(t.name)} ADD COLUMN IF NOT EXISTS {c}{SHADOW} jsonb")
                # SECURITY DEFINER: the application role writes rows but may not write the quarantine
                run(f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                    f"SET search_path = pg_catalog AS $$ BEGIN {body}RETURN NEW; END $$")
                run(f"DROP TRIGGER IF EXISTS {t.name}{SHADOW}_sync ON {q(t.name)}")
                run(f"CREATE TRIGGER {t.name}{SHADOW}_sync BEFORE INSERT OR UPDATE OF {', '.join(cols)} ON {q(t.name)} "
                    f"FOR EACH ROW EXECUTE FUNCTION {fn}()")

            step(shadow, t.name)
            for c in cols:  # a scan, without any lock beyond reading
                step(partial(quarantine_json, t.name, c))
            backfill(t.name, ", ".join(f"{c}{SHADOW} = {schema()}.json_to_jsonb(t.{c})" for c in cols), batch=batch)
            for c in cols:  # NOT NULL on the shadow without a long scan under an exclusive lock
                if is_not_null(t.name, c):
                    ck = f"{t.name}_{c}{SHADOW}_nn"[:63]
                    step(f"ALTER TABLE {q(t.name)} DROP CONSTRAINT IF EXISTS {ck}, "
                         f"ADD CONSTRAINT {ck} CHECK ({c}{SHADOW} IS NOT NULL) NOT VALID", t.name)
                    step(f"ALTER TABLE {q(t.name)} VALIDATE CONSTRAINT {ck}")


def backfill(table: str, sets: str, where: str = "true", batch: int = 5000) -> None:
    """``UPDATE table t SET sets`` over the rows matching ``where``, in keyset batches by id, each its own short step.

    Every batch commits on its own, so no row lock is held longer than one batch; a rerun resumes.
    """
    last = "00000000-0000-0000-0000-000000000000"
    while True:
        upto = step(partial(
            scalar, f"WITH b AS (SELECT id FROM {q(table)} WHERE id > %(last)s ORDER BY id LIMIT {batch}), "
            f"u AS (UPDATE {q(table)} t SET {sets} FROM b WHERE t.id = b.id AND ({where}) RETURNING 1) "
            "SELECT (SELECT id FROM b ORDER BY id DESC LIMIT 1) FROM (SELECT count(*) FROM u) n", {"last": last}))
        if upto is None:
            return
        last = str(upto)


def _contract(t: Table, cols: list[str]) -> None:
    """Swap the backfilled shadow columns in: drop trigger and old column, rename, restore NOT NULL."""
    run(f"DROP TRIGGER IF EXISTS {t.name}{SHADOW}_sync ON {q(t.name)}")
    run(f"DROP FUNCTION IF EXISTS {schema()}.{t.name}{SHADOW}_sync()")
    for c in cols:
        notnull = is_not_null(t.name, c)
        run(f"ALTER TABLE {q(t.name)} DROP COLUMN {c}")
        run(f"ALTER TABLE {q(t.name)} RENAME COLUMN {c}{SHADOW} TO {c}")
        if notnull:
            ck = f"{t.name}_{c}{SHADOW}_nn"[:63]
            run(f"ALTER TABLE {q(t.name)} ALTER COLUMN {c} SET NOT NULL")
            run(f"ALTER TABLE {q(t.name)} DROP CONSTRAINT IF EXISTS {ck}")


def apply_json_and_time(t: Table) -> None:
    """G1 + G2 for one table, each change in a short transaction holding ACCESS EXCLUSIVE on it (and on its
    compatibility views first, which are lifted around the change: ops.views).

    json columns, together: quarantine + sanitise the rejected values, then ``TYPE jsonb`` (a rewrite,
    only on tables under the expand/contract threshold) or the contract of an expand/contract.
    Naive timestamps, one column per transaction (no table rewrite under TimeZone UTC, but the
    column's indexes are rebuilt: about 0.2 s per index at 1.2 M rows here): ``TYPE timestamptz``
    with no USING, and the legacy ``now() AT TIME ZONE 'utc'`` default becomes ``now()``. G3 (the
    renamed columns) is ops.compat's expand. Idempotent: what is left to change is read from the catalog first, so a
    rerun does what is left.
    """
    step(partial(_json, t), *with_views(t.name))
    naive = [(c, now) for c, now in now_defaults(t.name, "timestamp without time zone")
             if t.timestamps is None or c in t.timestamps]
    large = bool(naive) and row_estimate(t.name, expand_contract_rows()) > expand_contract_rows()
    views = reading_views(t.name) if naive else []
    for c, now in naive:
        rebuilt = _drop_plain_indexes(t.name, c) if large else []
        change = f'ALTER TABLE {q(t.name)} ALTER COLUMN "{c}" TYPE timestamptz' \
            + (f', ALTER COLUMN "{c}" SET DEFAULT now()' if now else "")
        step(partial(_lifted, t.name, change) if views else change, *views, t.name)
        if rebuilt:
            _recreate_indexes(t.name, c, rebuilt)
    left = run(f"SELECT column_name, array_agg(old_value) FROM {q('migration_undo')} WHERE table_name = %(t)s "
               "AND kind = 'index_rebuild' GROUP BY 1", {"t": t.name})  # a run that failed in between
    for c, definitions in left:
        _recreate_indexes(t.name, c, list(definitions))


def _recreate_indexes(table: str, column: str, definitions: list[str]) -> None:
    """The indexes :func:`_drop_plain_indexes` dropped, built CONCURRENTLY from their own definition."""
    with autocommit():
        for definition in definitions:
            name = re.match(r"CREATE (?:UNIQUE )?INDEX (\S+) ON", definition)
            concurrently(definition.replace("CREATE INDEX ", "CREATE INDEX CONCURRENTLY IF NOT EXISTS ", 1)
                         .replace("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ", 1),
                         table, name.group(1).strip('"') if name else None)
        step(partial(run, f"DELETE FROM {q('migration_undo')} WHERE table_name = %(t)s AND column_name = %(c)s "
                          "AND kind = 'index_rebuild'", {"t": table, "c": column}))


def _plain_indexes(table: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, definition, columns in order) of the indexes on ``table`` that are safe to drop and build
    again: no expression, predicate, uniqueness or constraint behind them."""
    return [(str(n), str(d), tuple(c)) for n, d, c in run(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid), ARRAY(SELECT a.attname::text FROM unnest(i.indkey::smallint[]) "
        "WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %(t)s::regclass "
        "AND i.indexprs IS NULL AND i.indpred IS NULL AND NOT i.indisunique "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)", {"t": q(table)})]


def _drop_plain_indexes(table: str, column: str) -> list[str]:
    """Plain indexes on ``column`` (no expression, predicate or constraint), dropped CONCURRENTLY.

    ``TYPE timestamptz`` skips the table rewrite but rebuilds every index on the column under ACCESS
    EXCLUSIVE (1.46 s for ``analytics_events.created_at`` at prod under load): on a large table these
    indexes are dropped without a strong lock and built again CONCURRENTLY after the type change, from
    their own definition (same name, same columns). Queries run without them meanwhile: slower, never
    blocked. Idempotent through ``IF NOT EXISTS``; a rerun after a failure in between finds them gone
    and recreates nothing, so the definitions are journaled first (kind ``index_rebuild``).
    """
    rows = [(n, d) for n, d, columns in _plain_indexes(table) if column in columns]
    pending = run(f"SELECT primary_key, old_value FROM {q('migration_undo')} WHERE table_name = %(t)s "
                  "AND column_name = %(c)s AND kind = 'index_rebuild'", {"t": table, "c": column})
    found = [str(d) for _, d in rows] + [str(d) for n, d in pending if n not in {r[0] for r in rows}]
    with autocommit():
        for name, definition in rows:
            step(partial(journal, table, column, "index_rebuild", f"SELECT {lit(name)}, {lit(definition)}"))
            concurrently(f'DROP INDEX CONCURRENTLY IF EXISTS {schema()}."{name}"', table)
    return found


def _json(t: Table) -> None:
    json_now = columns_of(t.name, "json")
    shadowed = [c for c in converted(t) if c in json_now and has_column(t.name, c + SHADOW)]
    if shadowed:
        with lifted(t.name):
            _contract(t, shadowed)
    parts: list[str] = []
    for c in converted(t):
        if c in json_now and c not in shadowed:
            quarantine_json(t.name, c)
            sanitise_json(t.name, c)
            parts.append(f"ALTER COLUMN {c} TYPE jsonb USING {c}::jsonb")
    if parts:
        with lifted(t.name):
            run(f"ALTER TABLE {q(t.name)} " + ", ".join(parts))


def _lifted(table: str, sql: str) -> None:
    """``sql`` with the views reading ``table`` dropped around it."""
    with lifted(table):
        run(sql)


def revert_json_and_time(t: Table) -> None:
    """Back to json (values normalised by jsonb; quarantined originals put back verbatim) and naive UTC."""
    parts: list[str] = []
    jsonb_now = columns_of(t.name, "jsonb")
    for c in t.json:
        if c in jsonb_now:
            parts.append(f"ALTER COLUMN {c} TYPE json USING {c}::json")
    for c, now in now_defaults(t.name, "timestamp with time zone"):
        if t.timestamps is not None and c not in t.timestamps:
            continue
        parts.append(f'ALTER COLUMN "{c}" TYPE timestamp')
        if now:
            parts.append(f"""ALTER COLUMN "{c}" SET DEFAULT (now() AT TIME ZONE 'utc')""")
    if parts:
        with lifted(t.name):  # the database's own views reading the columns
            run(f"ALTER TABLE {q(t.name)} " + ", ".join(parts))
    for c in t.json:
        run(f"UPDATE {q(t.name)} x SET {c} = s.original_text::json FROM ("
            f"SELECT DISTINCT ON (primary_key) primary_key, original_text FROM {q('migration_quarantine')} "
            f"WHERE table_name = %(t)s AND column_name = %(c)s AND reason = 'jsonb_rejects' "
            f"ORDER BY primary_key, id DESC) s WHERE x.id::text = s.primary_key", {"t": t.name, "c": c})
