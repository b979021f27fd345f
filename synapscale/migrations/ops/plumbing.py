"""plumbing: part of the restructure's shared mechanics (see the package docstring)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from alembic import op

from synapscale.migrations.ops.declarations import (
    APP_ROLE,
    AUDIT_TABLES,
    DEFAULT_LOCK_RETRIES,
    DEFAULT_LOCK_TIMEOUT,
    REFERENCE,
    RETRYABLE,
    TARGET_OPTION,
    log,
    target,
    use,
)


def schema() -> str:
    """The schema the running revisions restructure (:class:`Target`)."""
    return target().schema


def tenant() -> str:
    """The tenant column of the running revisions (:class:`Target`)."""
    return target().tenant_column


def q(name: str) -> str:
    """A schema-qualified, quoted table name."""
    return f'{schema()}."{name}"'


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
    """The run's :class:`Target` (env.py's ``synapscale_target``, else the reference's), then the session settings
    of every revision: short lock waits, instants read as UTC.

    Session-wide, not LOCAL: a revision commits many short transactions and each must read naive
    timestamps as UTC.
    """
    use(op.get_context().opts.get(TARGET_OPTION, REFERENCE))
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


def _lock_sql(tables: Sequence[str], mode: str) -> str:
    return f"LOCK TABLE {', '.join(q(t) for t in dict.fromkeys(tables))} IN {mode} MODE" if tables else ""


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
    """Several statements without parameters, in one round trip (never ``CONCURRENTLY``: a multi-statement query is
    one transaction)."""
    if statements:
        run("; ".join(statements))


def step(body: Callable[[], Any] | str, *tables: str, mode: str = "ACCESS EXCLUSIVE") -> Any:
    """``body`` in one short transaction that takes its locks up front; returns what ``body`` returns.

    ``body`` may be SQL without parameters (statements joined by ``;``): the transaction, its locks, that SQL
    and the commit then go in one round trip, most of a revision's steps being a statement or two.

    Callers list the table they change first and its FK parents after it: the order an ordinary
    insert takes its locks in (its own table, then the parent rows its FK check locks), so the
    migration never waits on a table while holding one an insert needs next. Each try sets
    ``lock_timeout``; a lock timeout or deadlock rolls it back and retries after a jittered backoff,
    a bounded number of times, then raises. Outside :func:`autocommit` (inside the revision's own
    transaction) the locks are taken and ``body`` runs once, without a commit.
    """
    lock = _lock_sql(tables, mode)
    if not _dbapi().autocommit:
        run_all(*([lock] if lock else []), *([] if callable(body) else [body]))
        return body() if callable(body) else None
    tries = lock_retries()
    for i in range(tries):
        # one round trip: a revision runs a step per table and per batch, some 1,500 at the smallest scale
        opening = ["BEGIN", f"SET LOCAL lock_timeout = {lit(lock_timeout())}", *([lock] if lock else [])]
        try:
            if not callable(body):
                run_all(*opening, body, "COMMIT")
                return None
            run_all(*opening)
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
                                   {"n": f"{schema()}.{building}"}):
                run(f"DROP INDEX CONCURRENTLY IF EXISTS {schema()}.{building}")
            run(sql)
            return
        except RETRYABLE as exc:
            if i == tries - 1:
                raise
            _back_off([table], exc, i)


def exists_table(name: str) -> bool:
    return bool(scalar("SELECT to_regclass(%(n)s) IS NOT NULL", {"n": q(name)}))


def columns_of(table: str, type_name: str) -> list[str]:
    """Columns of ``table`` whose formatted type is ``type_name``, in column order."""
    return [c for c, _ in now_defaults(table, type_name)]


def now_defaults(table: str, type_name: str) -> list[tuple[str, bool]]:
    """:func:`columns_of`, each column with whether its default calls ``now()``."""
    return [(str(c), bool(now)) for c, now in run(
        "SELECT a.attname, strpos(pg_get_expr(d.adbin, d.adrelid), 'now()') > 0 FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = %(t)s::regclass "
        "AND a.attnum > 0 AND NOT a.attisdropped AND format_type(a.atttypid, a.atttypmod) = %(ty)s ORDER BY a.attnum",
        {"t": q(table), "ty": type_name})]


def has_column(table: str, column: str) -> bool:
    return bool(scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = %(t)s::regclass AND attname = %(c)s "
                       "AND NOT attisdropped", {"t": q(table), "c": column}))


def is_not_null(table: str, column: str) -> bool:
    return bool(scalar("SELECT attnotnull FROM pg_attribute WHERE attrelid = %(t)s::regclass AND attname = %(c)s",
                       {"t": q(table), "c": column}))


def grant_app() -> None:
    """Re-grant the application role on every table (new ones included); never on the audit tables."""
    run(f"GRANT USAGE ON SCHEMA {schema()} TO {APP_ROLE}")
    run(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema()} TO {APP_ROLE}")
    run(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema()} TO {APP_ROLE}")
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
