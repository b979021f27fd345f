"""How close a statistics-shaped copy is to its source: per column statistics and the workload's plan shapes.

Both sides are compared through what the planner sees (``pg_stats`` after ANALYZE, and generic plans of
the benchmark workload's queries), never through rows, so the source may be production itself.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from synap_verify.bench.workload import Query
from synap_verify.datagen.stats import ColumnStats, Stats, laid_out
from synap_verify.errors import first_line

GOALS = {"null_frac": 0.02, "n_distinct": 2.0, "mcv": 0.8, "plans": 0.9,  # the bars
         "correlation": 0.2}  # ours: an ordered column stays ordered (index range scans are costed by it)


@dataclass(frozen=True)
class ColumnLikeness:
    table: str
    column: str
    null_diff: float  # |null_frac copy - null_frac source|
    distinct_ratio: float  # max/min of the two distinct counts (1 = equal)
    mcv_overlap: float | None  # share of the source's MCV frequency mass whose values are MCVs of the copy too
    ids: bool = False  # key/FK column: its values are made afresh, so the overlap is of the MCV frequencies
    correlation_diff: float | None = None  # |copy - source| of pg_stats.correlation, for columns laid out in order


def compare_columns(source: Stats, copy: Stats, ids: set[tuple[str, str]] = frozenset()) -> list[ColumnLikeness]:  # type: ignore[assignment]
    """Every column with statistics on both sides; ``ids`` are compared by their MCV frequencies (fan-out)."""
    out = []
    for name, st in sorted(source.tables.items()):
        ct = copy.tables.get(name)
        if ct is None:
            continue
        for col, s in sorted(st.columns.items()):
            c = ct.columns.get(col)
            if c is not None:
                key = (name, col) in ids
                out.append(ColumnLikeness(name, col, abs(c.null_frac - s.null_frac),
                                          _ratio(s.distinct(st.reltuples), c.distinct(ct.reltuples)),
                                          _frequencies(s, c) if key else _overlap(s, c), key, _order(s, c, st.reltuples)))
    return out


def _ratio(a: float, b: float) -> float:
    a, b = max(a, 1.0), max(b, 1.0)  # a column of NULLs states 0 distinct values
    return max(a, b) / min(a, b)


def _overlap(s: ColumnStats, c: ColumnStats) -> float | None:
    if not s.mcv or not sum(s.mcf):
        return None
    theirs = set(c.mcv)
    return sum(f for v, f in zip(s.mcv, s.mcf, strict=False) if v in theirs) / sum(s.mcf)


def _order(s: ColumnStats, c: ColumnStats, rows: float) -> float | None:
    """For columns laid out in order in the source (beyond ties; tables of 100 rows or more, below which a
    correlation is noise): how far the copy's correlation is from it."""
    shares = np.array(s.mcf, dtype=np.float64)
    if rows < 100 or not laid_out(s.correlation, shares / max(1 - s.null_frac, 1e-9)):
        return None
    return abs((c.correlation or 0.0) - (s.correlation or 0.0))


def _frequencies(s: ColumnStats, c: ColumnStats) -> float | None:
    """How much of the source's MCV frequency mass the copy's MCVs repeat, value for value by rank."""
    if not s.mcv or not sum(s.mcf):
        return None
    return sum(min(a, b) for a, b in zip(sorted(s.mcf, reverse=True), sorted(c.mcf, reverse=True), strict=False)) \
        / sum(s.mcf)


@dataclass(frozen=True)
class PlanLikeness:
    query: str
    source: tuple[str, ...] | str  # node types in plan order, or why the plan could not be made
    copy: tuple[str, ...] | str

    @property
    def same(self) -> bool:
        return isinstance(self.source, tuple) and self.source == self.copy


def plan_shape(conn: psycopg.Connection, text: str) -> tuple[str, ...] | str:
    """The node types of the generic plan of ``text`` (``%(name)s`` parameters become ``$n``): EXPLAIN only."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    generic = re.sub(r"%\((\w+)\)s", number, text).replace("%%", "%")
    try:
        with conn.transaction(force_rollback=True):
            plan = conn.execute("EXPLAIN (GENERIC_PLAN, FORMAT JSON) " + generic).fetchone()[0]  # type: ignore[index]
    except psycopg.Error as exc:
        return f"no plan: {first_line(exc, 120)}"
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node["Node Type"] + (f" {node['Join Type']}" if "Join Type" in node else ""))
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    return tuple(nodes)


def compare_plans(source: psycopg.Connection, copy: psycopg.Connection, queries: Iterable[Query],
                  version: str = "legacy") -> list[PlanLikeness]:
    return [PlanLikeness(q.name, plan_shape(source, q.sql(version)), plan_shape(copy, q.sql(version)))
            for q in queries if not q.write]


def summary(columns: list[ColumnLikeness], plans: list[PlanLikeness]) -> dict[str, float]:
    """Medians, worst cases and the share of columns/queries within the issue's bars."""
    out: dict[str, float] = {"columns": len(columns)}
    nulls = [c.null_diff for c in columns]
    ratios = [c.distinct_ratio for c in columns]
    overlaps = [c.mcv_overlap for c in columns if c.mcv_overlap is not None and not c.ids]
    fanout = [c.mcv_overlap for c in columns if c.mcv_overlap is not None and c.ids]
    for key, values, worst in (("null_frac_diff", nulls, max), ("n_distinct_ratio", ratios, max),
                               ("mcv_overlap", overlaps, min)):
        if values:
            out[f"{key}_median"], out[f"{key}_worst"] = statistics.median(values), worst(values)
    out["null_frac_within"] = _share(nulls, lambda x: x <= GOALS["null_frac"])
    out["n_distinct_within"] = _share(ratios, lambda x: x <= GOALS["n_distinct"])
    out["mcv_columns"] = len(overlaps)
    out["mcv_within"] = _share(overlaps, lambda x: x >= GOALS["mcv"])
    out["id_columns"] = len(fanout)
    if fanout:
        out["id_frequencies_median"], out["id_frequencies_worst"] = statistics.median(fanout), min(fanout)
    ordered = [c.correlation_diff for c in columns if c.correlation_diff is not None and not c.ids]
    out["ordered_columns"] = len(ordered)
    out["correlation_within"] = _share(ordered, lambda x: x <= GOALS["correlation"])
    if ordered:
        out["correlation_diff_median"], out["correlation_diff_worst"] = statistics.median(ordered), max(ordered)
    comparable = [p for p in plans if isinstance(p.source, tuple)]
    out["plans"], out["plans_comparable"] = len(plans), len(comparable)
    out["plans_same"] = _share([p.same for p in comparable], bool)
    return out


def _share(values: list[Any], ok: Any) -> float:
    return sum(1 for v in values if ok(v)) / len(values) if values else 1.0
