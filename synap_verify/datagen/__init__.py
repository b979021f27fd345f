"""Fill a schema with production-shaped data: every table of a catalog, parents first, with COPY.

The plan (``plan.py``) decides counts and how each column's values are made; this module streams each
table's rows to the server in chunks (memory does not grow with the row count), then applies the
spec's legacy scenarios (``scenarios.py``), resets sequences and runs VACUUM ANALYZE.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import psycopg
from psycopg import sql

from synap_verify.catalog import Catalog
from synap_verify.datagen import scenarios
from synap_verify.datagen.fallback import TableOutcome, fill_validated, remove_orphans
from synap_verify.datagen.plan import INT_CAPACITY, Chunk, Planner, TablePlan, TypeInfo, copy_text, read_type_info
from synap_verify.datagen.profiles import load_profile
from synap_verify.datagen.stats import Stats, build_shape

__all__ = ["LoadReport", "TableOutcome", "fill", "fk_violations"]

CHUNK_BYTES = 2_000_000  # one COPY write: big enough to amortise Python overhead, small enough for flat memory
QUEUE_CHUNKS = 8  # chunks built ahead of the server: bounds memory at about QUEUE_CHUNKS * CHUNK_BYTES

Progress = Callable[[str, int, int], None]
Item = tuple[TablePlan, int, bytes] | BaseException | None  # (table, rows done, COPY text) | error | end


@dataclass(frozen=True)
class LoadReport:
    """What a fill did: rows per table, time, bytes sent, and every compromise it had to make."""

    rows: dict[str, int]
    seconds: float
    bytes: int
    copy_seconds: float = 0.0  # planning + COPY of every table (without scenarios and VACUUM)
    plan_seconds: float = 0.0  # of which planning: value pools, counts, order (independent of row count)
    scenarios: dict[str, int] = field(default_factory=dict)  # scenario -> rows it touched
    notes: tuple[str, ...] = ()  # cycles broken, CHECKs not understood, rows dropped for uniqueness
    fallback: dict[str, TableOutcome] = field(default_factory=dict)  # tables the validated fallback filled/cleaned
    unfillable: dict[str, str] = field(default_factory=dict)  # table -> why no row can be stored in it

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def unmade(self) -> int:
        """Rows the generator wanted but could not make without violating a constraint."""
        return sum(o.unmade for o in self.fallback.values())

    def constraint_report(self) -> list[str]:
        """One line per table the fallback touched, and per table that cannot be filled."""
        return [o.describe() for _, o in sorted(self.fallback.items())] + \
            [f"{t}: not fillable: {why}" for t, why in sorted(self.unfillable.items())]


def fill(dsn: str, catalog: Catalog, scale: str, seed: int, progress: Progress | None = None,
         tenant_column: str = "tenant_id", stats: Stats | None = None, stats_scale: float = 1.0) -> LoadReport:
    """Fill every table of ``catalog`` in FK order with COPY, then VACUUM ANALYZE. Deterministic from seed.
    Rows carry the tenant (``tenant_column``) of the parents they reference. With ``stats``, row counts are
    production's times ``stats_scale`` and columns follow its statistics."""
    began = time.perf_counter()
    profile = load_profile(scale)
    with psycopg.connect(dsn, autocommit=True) as conn:
        types = read_type_info(conn, catalog.schemas)
        shape = None if stats is None else build_shape(conn, catalog, stats, stats_scale, types.domains)
        planner = Planner(catalog, profile, seed, types, tenant_column, shape)
        if shape is not None:
            planner.notes.extend(shape.notes)
        plans = planner.build()
        planned = time.perf_counter() - began
        replica = _skip_triggers(conn)
        outcomes: dict[str, TableOutcome] = {}
        sent = _copy_all(conn, plans, seed, progress, lambda tp, why: _fallback(conn, tp, catalog, types, seed, why,
                                                                                outcomes))
        shrunk = {name for name, o in outcomes.items() if o.made < o.wanted}
        if shrunk:
            remove_orphans(conn, plans, shrunk, outcomes)
        rows = {tp.name: tp.count - (outcomes[tp.name].unmade if tp.name in outcomes else 0) for tp in plans}
        copy_seconds = time.perf_counter() - began
        applied = scenarios.apply(conn, catalog, profile, seed)
        _reset_sequences(conn, plans)
        if replica:
            conn.execute("SET session_replication_role = DEFAULT")
        conn.execute("VACUUM ANALYZE")
    return LoadReport(rows, time.perf_counter() - began, sent, copy_seconds, planned, applied, tuple(planner.notes),
                      outcomes, dict(planner.unfillable))


def _fallback(conn: psycopg.Connection, tp: TablePlan, catalog: Catalog, types: TypeInfo, seed: int, why: str,
              outcomes: dict[str, TableOutcome]) -> None:
    outcomes[tp.name] = fill_validated(conn, tp, catalog, types, seed, why)


def _skip_triggers(conn: psycopg.Connection) -> bool:
    """Skip FK checks and user triggers during the load when allowed (superuser): every FK is satisfied by
    construction and checked by the tests, and legacy triggers must not rewrite the generated data."""
    try:
        conn.execute("SET session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def _produce(plans: list[TablePlan], seed: int, out: queue.Queue[Item], stop: threading.Event) -> None:
    """Build every table's COPY text, chunk by chunk, into a bounded queue (so memory stays flat)."""
    try:
        for tp in plans:
            if not tp.count or not tp.copy_columns:
                continue
            step = max(500, min(50_000, CHUNK_BYTES // tp.est_bytes))
            for number, lo in enumerate(range(0, tp.count, step)):
                if stop.is_set():
                    return
                hi = min(lo + step, tp.count)
                chunk = Chunk(tp.physical(lo, hi), np.random.default_rng([seed, tp.tid, number]))
                out.put((tp, hi, copy_text(tp, chunk)))
        out.put(None)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


def _copy_all(conn: psycopg.Connection, plans: list[TablePlan], seed: int, progress: Progress | None,
              refused: Callable[[TablePlan, str], None]) -> int:
    """COPY every table in FK order. A producer thread builds the next chunks (and tables) while the server
    parses the current ones: Python and PostgreSQL work in parallel instead of taking turns. A table whose
    COPY the server refuses (a constraint the plan did not meet) goes to ``refused``, the validated path."""
    chunks: queue.Queue[Item] = queue.Queue(maxsize=QUEUE_CHUNKS)
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(plans, seed, chunks, stop), daemon=True)
    producer.start()
    sent = 0
    item = chunks.get()
    try:
        for tp in plans:
            if progress:
                progress(tp.name, 0, tp.count)
            if not isinstance(item, tuple) or item[0] is not tp:
                continue
            stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(tp.table.schema, tp.name), sql.SQL(", ").join(map(sql.Identifier, tp.copy_columns)))
            try:
                with conn.cursor() as cur, cur.copy(stmt) as copy:
                    while isinstance(item, tuple) and item[0] is tp:
                        copy.write(item[2])
                        sent += len(item[2])
                        if progress:
                            progress(tp.name, item[1], tp.count)
                        item = chunks.get()
            except psycopg.Error as exc:
                while isinstance(item, tuple) and item[0] is tp:  # the rest of this table's chunks
                    item = chunks.get()
                refused(tp, " ".join(str(exc).split()))
        if isinstance(item, BaseException):
            raise item
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                chunks.get_nowait()
            producer.join(0.01)
    return sent


def _reset_sequences(conn: psycopg.Connection, plans: list[TablePlan]) -> None:
    """Serial and identity sequences continue after the loaded ids, so later INSERTs do not collide."""
    for tp in plans:
        for name in tp.key_columns:
            col = tp.table.column(name)
            if col is None or col.type not in INT_CAPACITY or not tp.count:
                continue
            qualified = sql.Identifier(tp.table.schema, tp.name)
            conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence(%s, %s), max({c})) FROM {t}").format(
                c=sql.Identifier(name), t=qualified), [f'"{tp.table.schema}"."{tp.name}"', name])


def fk_violations(conn: psycopg.Connection, catalog: Catalog) -> list[str]:
    """Every FK of the catalog checked with an anti-join: the one kind of constraint the load does not have the
    server enforce (it runs with FK triggers off), so it is proven afterwards."""
    bad = []
    for t in catalog.tables.values():
        for fk in t.foreign_keys:
            if t.partition_of is not None:
                continue  # checked through the partitioned root
            child, parent = sql.Identifier(t.schema, t.name), sql.Identifier(fk.target_schema, fk.target_table)
            given = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns)
            match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
                                          for c, p in zip(fk.columns, fk.target_columns, strict=True))
            query = sql.SQL("SELECT count(*) FROM {c} c WHERE {given} AND NOT EXISTS (SELECT 1 FROM {p} p WHERE {m})")
            orphans = conn.execute(query.format(c=child, p=parent, given=given, m=match)).fetchone()[0]  # type: ignore[index]
            if orphans:
                bad.append(f"{t.schema}.{t.name}.{fk.name}: {orphans:,} rows reference no {fk.target_table} row")
    return bad
