"""Fill a schema with production-shaped data: every table of a catalog, parents first, with COPY.

The plan (``plan.py``) decides counts and how each column's values are made; this module streams each
table's rows to the server in chunks (memory does not grow with the row count), then applies the
spec's legacy scenarios (``scenarios.py``), resets sequences and runs VACUUM ANALYZE.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from synap_verify.catalog import Catalog
from synap_verify.datagen import scenarios
from synap_verify.datagen.plan import INT_CAPACITY, Chunk, Planner, TablePlan, read_type_info
from synap_verify.datagen.profiles import load_profile
from synap_verify.errors import SynapError

__all__ = ["LoadReport", "fill"]

CHUNK_BYTES = 4_000_000  # one COPY write: big enough to amortise Python overhead, small enough for flat memory

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LoadReport:
    """What a fill did: rows per table, time, bytes sent, and every compromise it had to make."""

    rows: dict[str, int]
    seconds: float
    bytes: int
    copy_seconds: float = 0.0
    scenarios: dict[str, int] = field(default_factory=dict)  # scenario -> rows it touched
    notes: tuple[str, ...] = ()  # cycles broken, CHECKs not understood, rows dropped for uniqueness

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def fill(dsn: str, catalog: Catalog, scale: str, seed: int, progress: Progress | None = None) -> LoadReport:
    """Fill every table of ``catalog`` in FK order with COPY, then VACUUM ANALYZE. Deterministic from seed."""
    began = time.perf_counter()
    profile = load_profile(scale)
    with psycopg.connect(dsn, autocommit=True) as conn:
        planner = Planner(catalog, profile, seed, read_type_info(conn, catalog.schemas))
        plans = planner.build()
        replica = _skip_triggers(conn)
        rows: dict[str, int] = {}
        sent = 0
        for tp in plans:
            sent += _copy_table(conn, tp, seed, progress)
            rows[tp.name] = tp.count
        copy_seconds = time.perf_counter() - began
        applied = scenarios.apply(conn, catalog, profile, seed)
        _reset_sequences(conn, plans)
        if replica:
            conn.execute("SET session_replication_role = DEFAULT")
        conn.execute("VACUUM ANALYZE")
    return LoadReport(rows, time.perf_counter() - began, sent, copy_seconds, applied, tuple(planner.notes))


def _skip_triggers(conn: psycopg.Connection) -> bool:
    """Skip FK checks and user triggers during the load when allowed (superuser): every FK is satisfied by
    construction and checked by the tests, and legacy triggers must not rewrite the generated data."""
    try:
        conn.execute("SET session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def _copy_table(conn: psycopg.Connection, tp: TablePlan, seed: int, progress: Progress | None) -> int:
    """Stream one table in chunks; a worker thread sends while the next chunk is being built."""
    if progress:
        progress(tp.name, 0, tp.count)
    if not tp.count or not tp.copy_columns:
        return 0
    step = max(500, min(50_000, CHUNK_BYTES // tp.est_bytes))
    stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(tp.table.schema), sql.Identifier(tp.name), sql.SQL(", ").join(map(sql.Identifier, tp.copy_columns)))
    makers = [(tp.det.get(c), tp.rand.get(c)) for c in tp.copy_columns]
    sent = 0
    try:
        with conn.cursor() as cur, cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as copy:
            for number, lo in enumerate(range(0, tp.count, step)):
                hi = min(lo + step, tp.count)
                chunk = Chunk(tp.physical(lo, hi), np.random.default_rng([seed, tp.tid, number]))
                columns = [det(chunk.j) if det else rand(chunk) for det, rand in makers]  # type: ignore[misc]
                data = ("\n".join(map("\t".join, zip(*columns, strict=True))) + "\n").encode()
                copy.write(data)
                sent += len(data)
                if progress:
                    progress(tp.name, hi, tp.count)
    except psycopg.Error as exc:
        raise SynapError(f"filling {tp.table.schema}.{tp.name} failed: {exc}") from exc
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
