"""``synap-verify load``: a Locust load run on the reference API, or the migration run under load.

Exit 0 when every threshold holds, 1 when one fails (findings), 2 on usage or connection errors.
Without ``--migrate``: the API is started with uvicorn on 127.0.0.1 over a migrated database (a fresh
embedded one, or ``--dsn`` when disposable), or ``--url`` names a staging API. With ``--migrate``: a
fresh embedded legacy database, load from the start, the migration after ``--before`` seconds.
Outputs (``--out``): Locust's CSV/HTML/JSON, ``timeline.csv``, ``waits.csv``, ``summary.json``,
``timeline.svg`` and, under ``--migrate``, ``blocking.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synap_verify.errors import SynapError
from synap_verify.findings import Finding, render_text
from synap_verify.load import config, orchestrate, plot, timeline, verdict
from synap_verify.load.config import CONFIG_FILE, THRESHOLDS_FILE
from synap_verify.load.orchestrate import LocustRun, MigrationPlan, MigrationRun
from synap_verify.settings import Settings

MAX_USERS = 100  # a bound, not a target: this harness measures ratios on small machines
MAX_SECONDS = 1800


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--migrate", action="store_true", help="run the migrations of a fresh legacy database under load")
    parser.add_argument("--unsafe", action="store_true",
                        help="with --migrate: run the seeded unsafe step (plain ALTER ... TYPE jsonb on analytics_events) "
                             "instead of the reference migration")
    parser.add_argument("--workload", choices=("api", "sql"), default=None,
                        help="load users: the reference API, or SQL valid on both schemas (default: api, sql with --migrate)")
    parser.add_argument("--dsn", help="database the API serves (written to: must be disposable)")
    parser.add_argument("--disposable", action="store_true", help="--dsn may be written to")
    parser.add_argument("--url", help="a staging API to load instead of starting one (tenant ids from --dsn, read-only)")
    parser.add_argument("--scale", default="small", help="data profile of the embedded database (default: small)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--users", type=int, help=f"concurrent users (default: config; at most {MAX_USERS})")
    parser.add_argument("--spawn-rate", type=float, help="users started per second (default: config)")
    parser.add_argument("--duration", help="load duration without --migrate, e.g. 30s, 2m (default: config)")
    parser.add_argument("--before", type=float, default=15.0, help="--migrate: seconds of load before the migration")
    parser.add_argument("--after", type=float, default=10.0, help="--migrate: seconds of load after it")
    parser.add_argument("--max-migration", type=float, default=900.0,
                        help="--migrate: seconds the migration may take before the load stops regardless")
    parser.add_argument("--group", help="--migrate: only this group's revision (and foundation), e.g. analytics")
    parser.add_argument("--expand-contract-rows", type=int,
                        help="--migrate: SYNAPSCALE_EXPAND_CONTRACT_ROWS for the reference migration")
    parser.add_argument("--extra-events", type=int, default=0,
                        help="--migrate: copy existing analytics_events rows until this many more exist")
    parser.add_argument("--prepare-threshold",
                        help='SQL users\' server-side prepared statements: "off" (never, as a zero-downtime application '
                             'must) or prepare after N runs, e.g. 5 as psycopg by default (default: config)')
    parser.add_argument("--max-blocking", type=float, help="override: longest lock wait a step may cause (s)")
    parser.add_argument("--p99-factor", type=float, help="override: p99 during / p99 before bound")
    parser.add_argument("--p99-ms", type=float, help="override: baseline p99 threshold (ms)")
    parser.add_argument("--config", type=Path, default=CONFIG_FILE, help="load mix (default: the packaged loadtests/config.toml)")
    parser.add_argument("--thresholds", type=Path, default=THRESHOLDS_FILE,
                        help="thresholds (default: the packaged loadtests/thresholds.toml)")
    parser.add_argument("--out", type=Path, help="output folder (default: loadtests/results/<mode>-<time>)")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    limits = _limits(args)
    defaults = config.run_defaults(args.config)
    users = args.users or defaults.users
    if not 1 <= users <= MAX_USERS:
        raise SynapError(f"--users must be between 1 and {MAX_USERS}")
    mode = "unsafe" if args.unsafe else "migrate" if args.migrate else "baseline"
    out = args.out or Path("loadtests") / "results" / f"{mode}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    spawn = args.spawn_rate or defaults.spawn_rate
    if args.migrate:
        prepare = defaults.prepare_threshold if args.prepare_threshold is None \
            else config.prepare_threshold(args.prepare_threshold)
        summary, findings = _migration(args, limits.migration, out, users, spawn, defaults.tenants, prepare)
    else:
        summary, findings = _baseline(args, limits.baseline, out, users, spawn, defaults)
    summary["findings"] = [f.as_dict() for f in findings]
    orchestrate.write_json(out / "summary.json", summary)
    if args.format == "json":
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(summary["text"])
        if findings:
            print(render_text(findings))
    print(f"synap-verify: {len(findings)} load finding(s); outputs in {out}", file=sys.stderr)
    return 1 if findings else 0


def _limits(args: argparse.Namespace) -> config.Thresholds:
    t = config.thresholds(args.thresholds)
    m, b = t.migration, t.baseline
    if args.max_blocking is not None:
        m = config.Migration(m.max_failures, m.p99_factor, m.p99_floor_ms, args.max_blocking)
    if args.p99_factor is not None:
        m = config.Migration(m.max_failures, args.p99_factor, m.p99_floor_ms, m.max_blocking_s)
    if args.p99_ms is not None:
        b = config.Baseline(b.p95_ms, args.p99_ms, b.max_failure_ratio, b.min_rps)
    return config.Thresholds(b, m)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextmanager
def _embedded(state: str, scale: str, seed: int | None) -> Iterator[str]:
    """A fresh embedded database in ``state``; the server (and the database) go when the run ends."""
    from synap_verify.pipeline import Pipeline

    pipeline = Pipeline.start(Settings.resolve({"scale": scale, "seed": seed}), say=_say)
    try:
        yield pipeline.clone(state).dsn
    finally:
        pipeline.server.stop()


def _baseline(args: argparse.Namespace, limits: config.Baseline, out: Path, users: int, spawn: float,
              defaults: config.RunDefaults) -> tuple[dict[str, Any], list[Finding]]:
    duration = args.duration or defaults.duration
    if config.seconds(duration) > MAX_SECONDS:
        raise SynapError(f"--duration is bounded to {MAX_SECONDS}s")
    if (args.workload or "api") != "api":
        raise SynapError("without --migrate the load is the API's (--workload api)")
    with ExitStack() as stack:
        if args.url:
            if not args.dsn:
                raise SynapError("--url needs --dsn to read the tenant ids the users act for (read-only)")
            dsn, host = args.dsn, args.url.rstrip("/")
        elif args.dsn:
            from synap_verify.server.dsn import attach

            if not attach(args.dsn, args.disposable, Settings.disposable_pattern).disposable:
                raise SynapError("the load writes rows: pass --disposable (or a database named *_test, *_ci, ...)")
            dsn = args.dsn
            host = stack.enter_context(orchestrate.serve_api(dsn, out / "api.log"))
        else:
            dsn = stack.enter_context(_embedded("migrated", args.scale, args.seed))
            host = stack.enter_context(orchestrate.serve_api(dsn, out / "api.log"))
        pool = orchestrate.tenant_pool(dsn, defaults.tenants)
        orchestrate.write_json(out / "pool.json", pool)
        env = {"SYNAP_LOAD_POOL": str(out / "pool.json")} | ({"SYNAP_LOAD_ALLOWED_URL": host} if args.url else {})
        locust = LocustRun(out, "ApiTenantUser", users, spawn, duration, host=host, env=env)
        _say(f"synap-verify: {users} users on {host} for {duration}")
        locust.start(args.config)
        code = locust.wait(config.seconds(duration) + 60)
    requests = timeline.read(locust.timeline)
    s = timeline.stats(requests)
    plot.write(out / "timeline.svg", requests, [], f"baseline: {users} users, {s.rps:.1f} requests/s")
    findings = verdict.baseline_findings(s, limits)
    text = f"baseline ({users} users, {duration}): {s.line()}"
    return {"mode": "baseline", "users": users, "duration": duration, "locust_exit": code, "stats": s.as_dict(),
            "by_name": _by_name(requests), "text": text}, findings


def _migration(args: argparse.Namespace, limits: config.Migration, out: Path, users: int, spawn: float,
               tenants: int, prepare: int | None) -> tuple[dict[str, Any], list[Finding]]:
    if args.dsn or args.url:
        raise SynapError("--migrate runs on a fresh embedded legacy database only (it migrates it)")
    workload = args.workload or "sql"
    bound = args.before + args.after + args.max_migration
    if bound > MAX_SECONDS:
        raise SynapError(f"--before + --after + --max-migration is bounded to {MAX_SECONDS}s")
    plan = MigrationPlan(Settings.resolve({}).alembic, args.unsafe, args.expand_contract_rows, args.group)
    with ExitStack() as stack:
        dsn = stack.enter_context(_embedded("legacy", args.scale, args.seed))
        if args.extra_events:
            _say(f"synap-verify: {orchestrate.grow_events(dsn, args.extra_events):,} analytics_events rows added")
        pool = orchestrate.tenant_pool(dsn, tenants)
        orchestrate.write_json(out / "pool.json", pool)
        env = {"SYNAP_LOAD_POOL": str(out / "pool.json")}
        host = None
        if workload == "sql":
            env |= {"SYNAP_LOAD_DSN": dsn, "SYNAP_LOAD_PREPARE_THRESHOLD": "off" if prepare is None else str(prepare)}
        else:
            host = stack.enter_context(orchestrate.serve_api(dsn, out / "api.log"))
        user_class = "SqlTenantUser" if workload == "sql" else "ApiTenantUser"
        locust = LocustRun(out, user_class, users, spawn, f"{int(bound)}s", host=host, env=env)
        result = orchestrate.under_load(dsn, plan, locust, args.config, args.before, args.after, _say)
    prepared = ("off" if prepare is None else prepare) if workload == "sql" else "off (the reference API's engine)"
    return _judge(result, timeline.read(locust.timeline), limits, out, args, workload, users, prepared)


def _judge(result: MigrationRun, requests: list[timeline.Request], limits: config.Migration, out: Path,
           args: argparse.Namespace, workload: str, users: int, prepared: int | str) -> tuple[dict[str, Any], list[Finding]]:
    steps = result.steps
    if not steps:
        raise SynapError("no migration step ran")
    start, end = steps[0].start, steps[-1].end
    warmup = min(3.0, args.before / 3)
    w = verdict.windows(requests, start, end, warmup)
    rows = verdict.step_rows(steps, result.waits, requests)
    findings = verdict.migration_findings(w, rows, requests, limits, result.sampler_error)
    table = verdict.blocking_table(rows)
    (out / "blocking.md").write_text(table + "\n")
    _write_waits(out / "waits.csv", result.waits)
    what = "seeded unsafe step" if args.unsafe else "reference migration"
    plot.write(out / "timeline.svg", requests, steps,
               f"{what} under load: {users} {workload} users, scale {args.scale}", limits.max_blocking_s)
    worst = max(rows, key=lambda r: r.max_wait_s)
    errors = Counter(r.error or "(no message)" for r in requests if not r.ok)
    text = "\n".join([
        f"{what} under load ({users} {workload} users, scale {args.scale}), {len(steps)} step(s) in {end - start:.1f}s",
        f"  before: {w.before.line()}", f"  during: {w.during.line()}", f"  after:  {w.after.line()}",
        f"  longest lock wait: {worst.max_wait_s:.3f}s in {worst.step.name}"
        + (f" on {worst.relation}" if worst.relation else ""),
        f"  lock-wait samples: {result.samples}, waits blocked by the migration: "
        f"{sum(w.load and w.blocked_by_migration for w in result.waits)}",
        f"  prepared statements of the load: {prepared}",
        *(f"  failed: {n} x {error}" for error, n in errors.most_common(5)),
        "", table])
    return {"mode": "unsafe" if args.unsafe else "migrate", "workload": workload, "users": users, "scale": args.scale,
            "locust_exit": result.locust_exit, "migration_seconds": end - start,
            "windows": {"before": w.before.as_dict(), "during": w.during.as_dict(), "after": w.after.as_dict()},
            "steps": [{"step": r.step.name, "seconds": r.step.seconds, "error": r.step.error, "max_wait_s": r.max_wait_s,
                       "waits": r.waits, "relation": r.relation, "exclusive": r.step.exclusive, "requests": r.requests,
                       "max_latency_ms": r.max_latency_ms, "failures": r.failures} for r in rows],
            "overall": timeline.stats(requests).as_dict(), "by_name": _by_name(requests),
            "prepare_threshold": prepared, "failures_by_error": dict(errors.most_common()), "text": text}, findings


def _by_name(requests: list[timeline.Request]) -> dict[str, dict[str, float]]:
    names = sorted({r.name for r in requests})
    return {n: timeline.stats([r for r in requests if r.name == n]).as_dict() for n in names}


def _write_waits(path: Path, waits: list[Any]) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["since", "seconds", "application", "relation", "mode", "query", "blockers"])
        for w in waits:
            out.writerow([f"{w.since:.3f}", f"{w.seconds:.3f}", w.application, w.relation, w.mode, w.query,
                          " | ".join(w.blockers)])
