"""The server-validated fallback: when the fast COPY of a table is refused, let PostgreSQL judge the rows.

Candidates are staged in a temporary table without constraints, PostgreSQL evaluates every CHECK
(domain checks and the partition bounds included) on them, the rows that pass go in (``ON CONFLICT DO
NOTHING`` settles unique and exclusion constraints) and the rows that fail are drawn again with a new
random stream (their keys stay: they are functions of the row's logical index). What still fails after
:data:`ATTEMPTS` draws is reported as rows that could not be made, never hidden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import psycopg
from psycopg import sql

from synap_verify.catalog import Catalog, Table
from synap_verify.datagen.plan import Chunk, TablePlan, TypeInfo, copy_text

ATTEMPTS = 24  # draws per row before it counts as not made (a redraw costs one round of five statements)
STAGE = "synap_stage"


@dataclass
class TableOutcome:
    """How the fallback filled one table: rows made, candidates each constraint refused, rows not made."""

    table: str
    wanted: int
    made: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # constraint -> candidate rows it refused
    conflicts: int = 0  # rows lost to unique or exclusion constraints (without a primary key to redraw them by)
    orphans: int = 0  # rows removed afterwards because a parent row could not be made
    error: str | None = None  # the server refused even the validated rows: this is why
    validated: bool = True  # False: made by the fast path, only touched by the orphan clean-up

    @property
    def unmade(self) -> int:
        return self.wanted - self.made + self.orphans

    def describe(self) -> str:
        met = ", ".join(f"{name} (refused {n:,} candidates)" for name, n in self.refused.items()) or "none refused"
        how = "by the validated fallback; " + met if self.validated else "by the generator"
        text = f"{self.table}: {self.made - self.orphans:,}/{self.wanted:,} rows {how}"
        if self.conflicts:
            text += f"; {self.conflicts:,} lost to unique/exclusion constraints"
        if self.orphans:
            text += f"; {self.orphans:,} removed as their parent row could not be made"
        return text + (f"; error: {self.error}" if self.error else "")


def conditions(table: Table, catalog: Catalog, types: TypeInfo, columns: list[str]) -> list[tuple[str, str]]:
    """(name, SQL that is true for an acceptable row) for every constraint a staged row can be judged by."""
    out = [(name, f"({_check_body(definition)}) IS NOT FALSE") for name, definition in table.checks]
    for col in table.columns:
        if col.name not in columns:
            continue
        ident = sql.Identifier(col.name).as_string(None)
        if not col.nullable:
            out.append((f"{col.name} NOT NULL", f"{ident} IS NOT NULL"))
        for name, definition in types.domain_checks.get(col.type, ()):
            body = re.sub(r"\bVALUE\b", ident, _check_body(definition))
            out.append((f"{col.type}.{name}", f"({body}) IS NOT FALSE"))
    bounds = [b for t in catalog.tables.values() if _leaf_of(t, table.name, catalog) and (b := t.partition_bound)]
    if table.kind == "partitioned":
        out.append(("partition bounds", " OR ".join(f"({b})" for b in bounds) if bounds else "false"))
    return out


def _check_body(definition: str) -> str:
    body = re.sub(r"\s+NOT VALID$|\s+NO INHERIT$", "", definition.strip())
    return body[len("CHECK "):] if body.startswith("CHECK ") else body


def _leaf_of(t: Table, root: str, catalog: Catalog) -> bool:
    """Is ``t`` a leaf partition somewhere under ``root``?"""
    if t.kind != "table" or t.partition_of is None:
        return False
    parent: str | None = t.partition_of
    while parent is not None:
        if parent == root:
            return True
        up = catalog.tables.get(parent)
        parent = up.partition_of if up is not None else None
    return False


def fill_validated(conn: psycopg.Connection, tp: TablePlan, catalog: Catalog, types: TypeInfo,
                   seed: int, why: str) -> TableOutcome:
    """Fill ``tp`` row by validated row (see the module docstring); ``why`` is the fast path's refusal."""
    outcome = TableOutcome(tp.name, tp.count)
    cols = tp.copy_columns
    checks = conditions(tp.table, catalog, types, cols)
    target = sql.Identifier(tp.table.schema, tp.name)
    col_list = sql.SQL(", ").join(map(sql.Identifier, cols))
    typed = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_stage_type(tp.table, c, types))) for c in cols)
    ok = sql.SQL(" AND ".join(f"({c})" for _, c in checks) or "true")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{s}").format(s=sql.Identifier(STAGE)))
    conn.execute(sql.SQL("CREATE TEMP TABLE {s} (synap_j bigint, {cols})").format(s=sql.Identifier(STAGE), cols=typed))
    stage = sql.Identifier(STAGE)
    pk = tp.table.primary_key
    key = sql.SQL(" AND ").join(sql.SQL("s.{c} = t.{c}").format(c=sql.Identifier(c)) for c in pk) \
        if pk and set(pk) <= set(tp.det) else None
    pending = np.arange(tp.count, dtype=np.int64)
    try:
        for attempt in range(ATTEMPTS):
            if not len(pending):
                break
            for lo in range(0, len(pending), 20_000):
                chunk = Chunk(pending[lo:lo + 20_000], np.random.default_rng([seed, tp.tid, 1_000_000 + attempt, lo]),
                              redraw=attempt > 0)
                with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} (synap_j, {}) FROM STDIN").format(stage, col_list)) as cp:
                    cp.write(copy_text(tp, chunk, with_index=True))
            if attempt == 0:
                _count_refusals(conn, stage, checks, outcome)
            inserted = conn.execute(sql.SQL("INSERT INTO {t} ({c}) OVERRIDING SYSTEM VALUE SELECT {c} FROM {s} "
                                            "WHERE {ok} ON CONFLICT DO NOTHING").format(
                t=target, c=col_list, s=stage, ok=ok)).rowcount
            outcome.made += inserted
            if key:  # the rows that went in are known by their key: a row lost to a conflict is drawn again
                conn.execute(sql.SQL("DELETE FROM {s} s USING {t} t WHERE {m}").format(s=stage, t=target, m=key))
            else:
                passed = conn.execute(sql.SQL("DELETE FROM {s} WHERE {ok}").format(s=stage, ok=ok)).rowcount
                outcome.conflicts += passed - inserted
            pending = np.array([r[0] for r in conn.execute(
                sql.SQL("DELETE FROM {s} RETURNING synap_j").format(s=stage))], dtype=np.int64)
    except psycopg.Error as exc:
        outcome.error = " ".join(str(exc).split())
    finally:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{s}").format(s=stage))
    if outcome.made == 0 and outcome.error is None and not outcome.refused:
        outcome.error = why
    return outcome


def _count_refusals(conn: psycopg.Connection, stage: sql.Identifier, checks: list[tuple[str, str]],
                    outcome: TableOutcome) -> None:
    """How many first-draw candidates each constraint refused: which constraints the fallback met."""
    if not checks:
        return
    counts = sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE NOT ({}))").format(sql.SQL(c)) for _, c in checks)
    row = conn.execute(sql.SQL("SELECT {} FROM {}").format(counts, stage)).fetchone() or ()
    outcome.refused = {name: int(n) for (name, _), n in zip(checks, row, strict=True) if n}


def _stage_type(table: Table, column: str, types: TypeInfo) -> str:
    """The column's type without its domain (a domain's CHECK would refuse the row before we can judge it)."""
    col = table.column(column)
    assert col is not None
    return types.domains.get(col.type, col.type)


def remove_orphans(conn: psycopg.Connection, plans: list[TablePlan], shrunk: set[str],
                   outcomes: dict[str, TableOutcome]) -> None:
    """Rows whose parent row could not be made go too (parents first, so the loss propagates)."""
    for tp in plans:
        for f in tp.fks:
            parent = tp if f.mode == "self" else f.parent
            if parent is None or parent.name not in shrunk or f.mode == "null":
                continue
            fk = f.fk
            child, target = sql.Identifier(tp.table.schema, tp.name), sql.Identifier(fk.target_schema, fk.target_table)
            match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
                                          for c, p in zip(fk.columns, fk.target_columns, strict=True))
            given = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns)
            gone = conn.execute(sql.SQL("DELETE FROM {c} c WHERE {given} AND NOT EXISTS (SELECT 1 FROM {p} p "
                                        "WHERE {match})").format(c=child, p=target, given=given, match=match)).rowcount
            if gone:
                shrunk.add(tp.name)
                outcome = outcomes.setdefault(tp.name, TableOutcome(tp.name, tp.count, made=tp.count,
                                                                            validated=False))
                outcome.orphans += gone
