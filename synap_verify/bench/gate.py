"""The regression gate: one verdict per query from timing statistics, buffers and plan shape.

Timing (noisy): a query regresses when the after side is significantly slower (one-sided Mann-Whitney
U, p < alpha) *and* the confidence interval of the median ratio reaches above the threshold (1.05), in
the first run and again in a confirmation rerun. Requiring only the interval to reach 1.05 (rather than
the point estimate to exceed it) is what gives power at exactly +5%; p < alpha twice keeps A/A false
alarms far below 1%.

Buffers and plan (deterministic): shared blocks hit+read of execution more than 5% above the legacy
side, a B-tree/GIN access that became a sequential scan, or a filtered jsonb column with no GIN index,
fail the query whatever the clock says.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import psycopg

from synap_verify.bench import stats
from synap_verify.bench.ab import Plan, Samples, explain, interleave
from synap_verify.bench.workload import Params, Query, Session, check_same_rows
from synap_verify.findings import Finding


@dataclass(frozen=True)
class Limits:
    """The thresholds of the gate (G6: no query more than 5% slower)."""

    ratio: float = 1.05
    alpha: float = 0.01
    buffers: float = 1.05
    rounds: int = 30
    per_round: int = 6


G6 = Limits()


@dataclass(frozen=True)
class Timing:
    before_ms: float
    after_ms: float
    ratio: float
    ci: tuple[float, float]
    p: float
    n: int

    def slower(self, limits: Limits) -> bool:
        return self.p < limits.alpha and self.ci[1] > limits.ratio


def timing(samples: Samples) -> Timing:
    """Raw medians for the table; ratio, interval and p from the per-parameter normalised samples."""
    before, after = samples.normalised()
    return Timing(statistics.median(samples.before) * 1000, statistics.median(samples.after) * 1000,
                  stats.median_ratio(before, after), stats.bootstrap_ratio_ci(before, after),
                  stats.mann_whitney_greater(before, after), len(before))


@dataclass
class Comparison:
    """Everything measured about one query, and the findings it produced."""

    query: Query
    timing: Timing
    before_plan: Plan
    after_plan: Plan
    confirmed: Timing | None = None  # the rerun, when the first run looked slower
    findings: list[Finding] = field(default_factory=list)
    samples: Samples = field(default_factory=Samples)

    @property
    def buffers_ratio(self) -> float:
        return self.after_plan.buffers / max(self.before_plan.buffers, 1)

    @property
    def plan_change(self) -> str:
        a, b = self.before_plan.describe(), self.after_plan.describe()
        return "=" if a == b else f"{a} -> {b}"

    @property
    def verdict(self) -> str:
        rules = sorted({f.rule.removeprefix("BENCH-") for f in self.findings})
        return "FAIL " + "+".join(rules) if rules else "pass"


def gin_index_exists(session: Session, table: str, column: str) -> bool:
    row = session.conn.execute(
        """SELECT 1 FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
             JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (i.indkey)
            WHERE n.nspname = %s AND t.relname = %s AND a.attname = %s AND am.amname = 'gin'""",
        (session.side.schema, table, column)).fetchone()
    return row is not None


def compare(before: Session, after: Session, query: Query, params: list[Params], limits: Limits = G6,
            inject: float = 0.0) -> Comparison:
    """Check rows, read both plans, time interleaved (and once more if slower), and judge."""
    findings = check_same_rows(before, after, query, params)
    plans = [(explain(before, query, p), explain(after, query, p)) for p in params]
    before_plan = Plan(sum(a.buffers for a, _ in plans), plans[0][0].nodes)
    after_plan = Plan(sum(b.buffers for _, b in plans), plans[0][1].nodes)
    samples = interleave(before, after, query, params, limits.rounds, limits.per_round, inject=inject)
    result = Comparison(query, timing(samples), before_plan, after_plan, findings=findings, samples=samples)
    table = query.table or query.name
    if result.timing.slower(limits):
        result.confirmed = timing(interleave(before, after, query, params, limits.rounds, limits.per_round,
                                             warmup=0, inject=inject))
        if result.confirmed.slower(limits):
            t = result.confirmed
            findings.append(Finding("BENCH-TIME", query.group, table,
                                    f"{query.name}: median {t.ratio:.3f}x the legacy time (95% CI {t.ci[0]:.3f}-"
                                    f"{t.ci[1]:.3f}, p={t.p:.1e}), confirmed by a rerun",
                                    expected=f"<= {limits.ratio:.2f}x", actual=f"{t.ratio:.3f}x"))
    if result.buffers_ratio > limits.buffers:
        findings.append(Finding("BENCH-BUFFERS", query.group, table,
                                f"{query.name}: reads {result.buffers_ratio:.2f}x the shared buffers of the legacy query",
                                expected=f"<= {limits.buffers:.2f}x",
                                actual=f"{before_plan.buffers} -> {after_plan.buffers} blocks"))
    lost = before_plan.index_scans and not after_plan.index_scans and after_plan.seq_scans
    if lost:
        findings.append(Finding("BENCH-PLAN", query.group, table,
                                f"{query.name}: index access lost ({', '.join(sorted(before_plan.index_scans))} "
                                f"-> Seq Scan on {', '.join(sorted(after_plan.seq_scans))})"))
    if query.gin and after.side.version == "migrated" and not gin_index_exists(after, *query.gin):
        findings.append(Finding("BENCH-PLAN", query.group, query.gin[0],
                                f"{query.name}: filters on jsonb/array column {'.'.join(query.gin)} "
                                "but it has no GIN index", column=query.gin[1], expected="a GIN index"))
    return result


def render_table(results: list[Comparison]) -> str:
    """The per-query table the gate prints: before, after, ratio, CI, p, buffers ratio, plan change, verdict."""
    head = ("query", "before ms", "after ms", "ratio", "95% CI", "p", "buffers", "plan", "verdict")
    rows = [head]
    for r in results:
        t = r.confirmed or r.timing
        rows.append((r.query.name, f"{t.before_ms:.3f}", f"{t.after_ms:.3f}", f"{t.ratio:.3f}",
                     f"{t.ci[0]:.3f}-{t.ci[1]:.3f}", f"{t.p:.1e}",
                     f"{r.buffers_ratio:.2f} ({r.before_plan.buffers}->{r.after_plan.buffers})",
                     r.plan_change, r.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def findings(results: list[Comparison]) -> list[Finding]:
    return [f for r in results for f in r.findings]


def app_role(dsn: str, role: str = "synapscale_app") -> str | None:
    """The application role when the database has it (the migrated state), so RLS applies to the after side."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return role if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() else None
