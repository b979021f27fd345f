"""Thresholds applied to a run: findings for a baseline, and the zero-downtime verdict of a migration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synap_verify.findings import Finding
from synap_verify.loadtest import config, timeline
from synap_verify.loadtest.blocking import StepWindow, Wait, step_of
from synap_verify.loadtest.timeline import Request, Stats


def baseline_findings(s: Stats, limits: config.Baseline) -> list[Finding]:
    checks = [
        ("LOAD-P95", s.p95_ms <= limits.p95_ms, f"p95 {s.p95_ms:.1f} ms", f"<= {limits.p95_ms:g} ms"),
        ("LOAD-P99", s.p99_ms <= limits.p99_ms, f"p99 {s.p99_ms:.1f} ms", f"<= {limits.p99_ms:g} ms"),
        ("LOAD-FAILURES", s.requests > 0 and s.failures / s.requests <= limits.max_failure_ratio,
         f"{s.failures}/{s.requests} failed", f"ratio <= {limits.max_failure_ratio:g}"),
        ("LOAD-THROUGHPUT", s.rps >= limits.min_rps, f"{s.rps:.1f} requests/s", f">= {limits.min_rps:g}/s"),
    ]
    return [Finding(rule, "load", "-", f"{actual}, threshold {expected}", expected=expected, actual=actual)
            for rule, ok, actual, expected in checks if not ok]


RATE_TOLERANCE = 0.05  # a --rate run holds its target when the rate after the ramp-up is within 5% of it


def rate_findings(rate: dict[str, float] | None) -> list[Finding]:
    """LOAD-RATE when the run did not reach (or overshot) its target rate: too few users, or the target saturated."""
    if not rate or abs(rate["achieved"] / rate["target"] - 1) <= RATE_TOLERANCE:
        return []
    return [Finding("LOAD-RATE", "load", "-",
                    f"{rate['achieved']:.1f} requests/s against a target of {rate['target']:g} (tolerance "
                    f"{RATE_TOLERANCE:.0%}): more --users, or the target is above what the system serves",
                    expected=f"{rate['target']:g}/s", actual=f"{rate['achieved']:.1f}/s")]


def fact_lines(facts: dict[str, Any]) -> list[str]:
    """The run's Locust facts for the text output: workers and their requests, CPU warnings, rate held."""
    lines = []
    if facts["workers"]:
        per = ", ".join(f"worker {w}: {n}" for w, n in facts["requests_by_worker"].items())
        lines.append(f"  Locust workers: {facts['workers']} ({per})")
    lines += [f"  Locust CPU warning: {w}" for w in facts["cpu_warnings"]]
    if rate := facts["rate"]:
        lines.append(f"  rate: {rate['achieved']:.1f} requests/s for a target of {rate['target']:g} over "
                     f"{rate['seconds']:.0f}s (10 s windows {rate['window_min']:.1f}-{rate['window_max']:.1f})")
    return lines


@dataclass(frozen=True)
class StepRow:
    """One line of the per-step blocking table."""

    step: StepWindow
    max_wait_s: float  # longest any load query waited on a lock while this step ran
    waits: int
    relation: str
    waiter: str
    blocker: str
    requests: int  # requests in flight during the step
    max_latency_ms: float
    failures: int


def step_rows(steps: Sequence[StepWindow], waits: Sequence[Wait], requests: Sequence[Request]) -> list[StepRow]:
    rows = []
    for step in steps:
        mine = [w for w in waits if w.load and w.blocked_by_migration and step_of(w, steps) is step]
        worst = max(mine, key=lambda w: w.seconds, default=None)
        during = timeline.overlapping(requests, step.start, step.end)
        rows.append(StepRow(step, worst.seconds if worst else 0.0, len(mine),
                            worst.relation if worst else "", worst.query if worst else "",
                            "; ".join(worst.blockers) if worst else "", len(during),
                            max((r.ms for r in during), default=0.0), sum(not r.ok for r in during)))
    return rows


@dataclass(frozen=True)
class Windows:
    before: Stats
    during: Stats
    after: Stats


def windows(requests: Sequence[Request], start: float, end: float, warmup: float) -> Windows:
    """Before (after a warm-up), during and after the migration, by request start time."""
    first = requests[0].start if requests else start
    last = max((r.end for r in requests), default=end)
    return Windows(timeline.stats(timeline.started(requests, first + warmup, start), start - first - warmup),
                   timeline.stats(timeline.overlapping(requests, start, end), end - start),
                   timeline.stats(timeline.started(requests, end, last + 1), last - end))


def migration_findings(w: Windows, rows: Sequence[StepRow], requests: Sequence[Request],
                       limits: config.Migration, sampler_error: str | None = None) -> list[Finding]:
    """The zero-downtime verdict; a failed lock sampler is a finding too, since blocking went unmeasured."""
    found: list[Finding] = []
    if sampler_error:
        found.append(Finding("LOAD-SAMPLER", "load", "-", f"the lock-wait sampler failed: {sampler_error}"))
    failed = [r for r in requests if not r.ok]
    if len(failed) > limits.max_failures:
        kinds = sorted({f"{r.name}: {r.error}" for r in failed})[:3]
        found.append(Finding("LOAD-FAILED-REQUESTS", "load", "-",
                             f"{len(failed)} request(s) failed, e.g. {' | '.join(kinds)}",
                             expected=f"<= {limits.max_failures}", actual=str(len(failed))))
    if w.during.requests == 0:
        found.append(Finding("LOAD-NO-TRAFFIC", "load", "-", "no request ran during the migration: nothing was measured"))
    bound = max(w.before.p99_ms * limits.p99_factor, limits.p99_floor_ms)
    if w.during.p99_ms > bound:
        found.append(Finding("LOAD-P99-DURING", "load", "-",
                             f"p99 during the migration {w.during.p99_ms:.1f} ms > {bound:.1f} ms "
                             f"({limits.p99_factor:g} x p99 before {w.before.p99_ms:.1f} ms, floor {limits.p99_floor_ms:g} ms)",
                             expected=f"<= {bound:.1f} ms", actual=f"{w.during.p99_ms:.1f} ms"))
    for row in rows:
        if row.step.error:
            found.append(Finding("LOAD-STEP-FAILED", row.step.name, "-", f"the step failed under load: {row.step.error[:300]}"))
        if row.max_wait_s > limits.max_blocking_s:
            found.append(Finding("LOAD-STEP-BLOCKING", row.step.name, row.relation,
                                 f"a load query waited {row.max_wait_s:.2f} s for a lock on {row.relation} "
                                 f"(bound {limits.max_blocking_s:g} s): {row.waiter[:120]}",
                                 expected=f"<= {limits.max_blocking_s:g} s", actual=f"{row.max_wait_s:.2f} s"))
    return found


def blocking_table(rows: Sequence[StepRow]) -> str:
    """The per-step blocking table, as Markdown."""
    out = ["| step | seconds | longest lock wait (s) | waits | on | ACCESS EXCLUSIVE seen (first to last sample) "
           "| requests in flight | max latency (ms) | failed |",
           "|---|---:|---:|---:|---|---|---:|---:|---:|"]
    for r in rows:
        name = r.step.name + (" (FAILED)" if r.step.error else "")
        out.append(f"| {name} | {r.step.seconds:.2f} | {r.max_wait_s:.3f} | {r.waits} | {r.relation or '-'} | "
                   f"{r.step.exclusive or '-'} | {r.requests} | {r.max_latency_ms:.1f} | {r.failures} |")
    return "\n".join(out)


@dataclass(frozen=True)
class PhaseRow:
    """One phase of a phased run, with the old and the new application's requests that started in it."""

    phase: str
    seconds: float
    old: Stats
    new: Stats
    failed_statements: dict[str, int]  # "app: request name" -> failed requests

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "seconds": self.seconds, "old": self.old.as_dict(), "new": self.new.as_dict(),
                "failed_statements": self.failed_statements}


def phase_rows(phases: Sequence[Any], by_app: Mapping[str, Sequence[Request]]) -> list[PhaseRow]:
    """Per phase (by request start; a request started before the first phase counts in the first), each
    application's numbers and its failed requests by statement."""
    rows = []
    for i, p in enumerate(phases):
        lo = float("-inf") if i == 0 else p.start
        hi = float("inf") if i == len(phases) - 1 else phases[i + 1].start
        mine = {app: timeline.started(reqs, lo, hi) for app, reqs in by_app.items()}
        failed: dict[str, int] = {}
        for app, reqs in mine.items():
            for r in reqs:
                if not r.ok:
                    failed[f"{app}: {r.name}"] = failed.get(f"{app}: {r.name}", 0) + 1
        rows.append(PhaseRow(p.name, p.end - p.start, timeline.stats(mine.get("old", []), p.end - p.start),
                             timeline.stats(mine.get("new", []), p.end - p.start), dict(sorted(failed.items()))))
    return rows


def phase_table(rows: Sequence[PhaseRow]) -> str:
    """Failed requests and p99 per phase and application, as Markdown; then the failed statements."""
    out = ["| phase | seconds | old app: requests / failed / p99 ms | new app: requests / failed / p99 ms |",
           "|---|---:|---|---|"]
    for r in rows:
        cells = [f"{s.requests} / {s.failures} / {s.p99_ms:.1f}" if s.requests else "-" for s in (r.old, r.new)]
        out.append(f"| {r.phase} | {r.seconds:.1f} | {cells[0]} | {cells[1]} |")
    out += [f"- {r.phase}: {name} failed {n}x" for r in rows for name, n in r.failed_statements.items()]
    return "\n".join(out)
