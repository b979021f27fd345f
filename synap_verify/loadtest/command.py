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
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synap_verify import migrate
from synap_verify.contract import load_contract
from synap_verify.errors import SynapError
from synap_verify.findings import Finding, render_text
from synap_verify.loadtest import config, orchestrate, plot, timeline, verdict, workload
from synap_verify.loadtest.config import CONFIG_FILE, THRESHOLDS_FILE
from synap_verify.loadtest.orchestrate import LocustRun, MigrationPlan, MigrationRun
from synap_verify.resources import CONTRACT
from synap_verify.server import redact
from synap_verify.settings import Settings

MAX_USERS = 100  # a bound, not a target: this harness measures ratios on small machines
MAX_CONFIRMED_USERS = 10000  # a staging URL with --confirm-target
MAX_SECONDS = 1800
USER_CLASSES = {"api": "ApiTenantUser", "sql": "SqlTenantUser", "statements": "StatementUser",
                "legacy": "LegacyAppUser", "new": "NewAppUser"}
PHASED = "phased"  # --migrate of the whole reference: LegacyAppUser through the expand, NewAppUser from the switch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--migrate", action="store_true", help="run the migrations of a fresh legacy database under load")
    parser.add_argument("--unsafe", action="store_true",
                        help="with --migrate: run the seeded unsafe step (plain ALTER ... TYPE jsonb on analytics_events) "
                             "instead of the reference migration")
    parser.add_argument("--workload", choices=(*USER_CLASSES, PHASED), default=None,
                        help="load users: the reference API, SQL valid on both schemas, statements of --workload-from, "
                             "the old (legacy) or new application's SQL over the renamed tables and columns, or phased: "
                             "legacy through the expand and new from the switch (default: api; with --migrate phased, "
                             "sql with --group or --unsafe; statements with --workload-from, phased with --migrate of the whole "
                             "reference: the old application runs their legacy forms, the new one their new forms)")
    parser.add_argument("--phases", default=",".join(orchestrate.PHASES),
                        help="--migrate, phased: the phases run under load, expand,contract (default), expand or contract")
    parser.add_argument("--switch", type=float, default=5.0,
                        help="--migrate, phased: seconds the old and the new application run side by side at the switch")
    parser.add_argument("--seeded-defect", choices=tuple(orchestrate.SEEDED_DEFECTS),
                        help="--migrate, phased: a seeded defect the run must fail on (a compatibility view left out, "
                             "a renamed column not kept in sync, the old application left running at the contract)")
    parser.add_argument("--dsn", help="database the API serves (written to: must be disposable)")
    parser.add_argument("--disposable", action="store_true", help="--dsn may be written to")
    parser.add_argument("--url", help="a staging API to load instead of starting one (tenant ids from --dsn, read-only)")
    parser.add_argument("--scale", default="small", help="data profile of the embedded database (default: small)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--users", type=int,
                        help=f"concurrent users (default: config; at most {MAX_USERS}; more on a --url with --confirm-target)")
    parser.add_argument("--confirm-target", action="store_true",
                        help=f"--url: the staging API may take more than {MAX_USERS} users (an explicit --users)")
    parser.add_argument("--rate", type=float,
                        help="target requests/s over all users (Locust's constant_throughput) instead of the think time")
    parser.add_argument("--workers", type=int, default=None,
                        help="Locust worker processes under a master (default: the cores; 0: one process). "
                             "With --master: workers expected from other machines")
    parser.add_argument("--master", action="store_true",
                        help="run Locust's master only: --workers N workers connect from other machines (--worker)")
    parser.add_argument("--master-bind-host", default="127.0.0.1",
                        help="--master: address the master listens on (default 127.0.0.1; the machine's LAN address "
                             "for workers elsewhere)")
    parser.add_argument("--master-port", type=int, default=None, help="master's port (default: 5557 with --master/--worker)")
    parser.add_argument("--worker", action="store_true", help="run one Locust worker for the master at --master-host")
    parser.add_argument("--master-host", help="--worker: the master's address")
    parser.add_argument("--workload-from",
                        help="SQL workload from pg_stat_statements: a DSN to read them from (read-only), or a file "
                             "written by --save-workload; each statement mapped through the contract to the names of "
                             "the database it runs on")
    parser.add_argument("--workload-share", type=float, default=0.95,
                        help="--workload-from: share of the calls on the schema's tables to cover (default 0.95)")
    parser.add_argument("--save-workload", type=Path,
                        help="write the workload file: of --workload-from, or of this run's own statements "
                             "(pg_stat_statements of the database under test)")
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
    if args.worker:
        return _worker(args)
    limits = _limits(args)
    defaults = config.run_defaults(args.config)
    users = args.users or defaults.users
    cap = MAX_CONFIRMED_USERS if args.url and args.confirm_target and args.users else MAX_USERS
    if not 1 <= users <= cap:
        raise SynapError(f"--users must be between 1 and {MAX_USERS} (more only on a staging --url, "
                         f"with an explicit --users and --confirm-target, up to {MAX_CONFIRMED_USERS})")
    if args.rate is not None and args.rate <= 0:
        raise SynapError("--rate must be a number of requests per second > 0")
    if args.workers is not None and args.workers < 0 or args.master and not args.workers:
        raise SynapError("--workers must be >= 0 (and >= 1 with --master: the workers expected to connect)")
    if args.workload_from:  # the whole reference migrated: the statements as the old and the new application's
        args.workload = args.workload or (PHASED if args.migrate and not (args.group or args.unsafe) else "statements")
    if (args.workload == "statements") != bool(args.workload_from) and args.workload != PHASED:
        raise SynapError("--workload statements runs the statements of --workload-from DSN|FILE: give both or neither")
    mode = "unsafe" if args.unsafe else "migrate" if args.migrate else "baseline"
    out = args.out or Path("loadtests") / "results" / f"{mode}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    spawn = args.spawn_rate or defaults.spawn_rate
    if args.migrate:
        summary, findings = _migration(args, limits.migration, out, users, spawn, defaults)
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
def _embedded(state: str, scale: str, seed: int | None, preload: tuple[str, ...] = (),
              other: str | None = None) -> Iterator[tuple[str, str | None]]:
    """A fresh embedded database in ``state`` (and one in ``other``, to check statements on); the server
    (and the databases) go when the run ends, the states it built stored in the state cache first."""
    from synap_verify.pipeline import Pipeline

    # keep=False: SYNAP_KEEP is the plugin's (leave the server up and print how to connect); a load run's server goes
    pipeline = Pipeline.start(Settings.resolve({"scale": scale, "seed": seed, "server_preload": preload, "keep": False}),
                              say=_say)
    try:
        yield pipeline.clone(state).dsn, pipeline.clone(other).dsn if other else None
    finally:
        pipeline.stop()


def _worker(args: argparse.Namespace) -> int:
    """One Locust worker of this package's locustfile; the master sends it the pool and settings."""
    if not args.master_host:
        raise SynapError("--worker needs --master-host H: the machine running 'synap-verify load --master'")
    port = args.master_port or orchestrate.MASTER_PORT
    _say(f"synap-verify: Locust worker for the master at {args.master_host}:{port}")
    return subprocess.call(orchestrate.worker_argv(args.master_host, port),
                           env=os.environ | {"SYNAP_LOAD_CONFIG": str(args.config)})


def _locust(args: argparse.Namespace, out: Path, users: int, spawn: float, duration: str, host: str | None,
            env: dict[str, str], user_class: str | None = None) -> LocustRun:
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    return LocustRun(out, user_class or USER_CLASSES[args.workload], users, spawn, duration, host=host, env=env,
                     workers=workers,
                     remote=args.master, bind_host=args.master_bind_host if args.master else "127.0.0.1",
                     port=args.master_port or (orchestrate.MASTER_PORT if args.master else None), rate=args.rate)


def _prepare(args: argparse.Namespace, defaults: config.RunDefaults) -> int | None:
    return defaults.prepare_threshold if args.prepare_threshold is None else config.prepare_threshold(args.prepare_threshold)


def _sql_env(args: argparse.Namespace, dsn: str, pool: list[dict[str, Any]], out: Path, prepare: int | None,
             other_dsn: str | None = None) -> tuple[dict[str, str], workload.Workload | None, dict[str, str]]:
    """What the SQL users need; with --workload-from, the statement workload built against ``dsn``, each
    statement mapped through the contract to the names of that database. With ``other_dsn``, a database
    of the other shape, each statement's other form must prepare there, and the third value is the
    environment of the users running the other form (the phased run's new application)."""
    env = {"SYNAP_LOAD_DSN": dsn, "SYNAP_LOAD_PREPARE_THRESHOLD": "off" if prepare is None else str(prepare)}
    if not args.workload_from:
        return env, None, env
    source, contract = args.workload_from, load_contract(CONTRACT)
    if Path(source).is_file():
        wl = workload.rebind(workload.Workload.load(Path(source)), dsn, contract, other_dsn)
    else:
        wl = workload.build(workload.read_statements(source), dsn, args.workload_share, redact(source), contract,
                            other_dsn)
        if args.save_workload:
            _say(f"synap-verify: workload written to {wl.save(args.save_workload)}")
    spec = workload.prepare_run(wl, dsn, [t["tenant"] for t in pool])
    _say(f"synap-verify: workload: {wl.line()}")
    for s in wl.statements:
        if s.mapped:
            _say(f"synap-verify: mapped ({s.calls:,} calls, {s.name}, taken in the {s.written_in} names): "
                 + ", ".join(s.mapped))
    for skipped in wl.skipped:
        _say(f"synap-verify: skipped ({skipped.calls:,} calls): {' '.join(skipped.query.split())[:100]} -- {skipped.reason}")
    if not wl.statements:
        raise SynapError("no statement of the workload can run on the database under test (the skipped ones are listed)")
    env["SYNAP_LOAD_STATEMENTS"] = str(orchestrate.write_json(out / f"statements-{wl.form or 'as-written'}.json", spec))
    if other_dsn is None:
        return env, wl, env
    other = "legacy" if wl.form == "new" else "new"
    other_spec = workload.run_spec(wl, spec["samples"], other)
    return env, wl, env | {"SYNAP_LOAD_STATEMENTS": str(orchestrate.write_json(out / f"statements-{other}.json", other_spec))}


def _workload_summary(wl: workload.Workload | None) -> dict[str, Any] | None:
    if wl is None:
        return None
    return {"line": wl.line(), "statements": len(wl.statements), "run_calls": wl.run_calls,
            "schema_calls": wl.schema_calls, "total_calls": wl.total_calls, "bound_form": wl.form,
            "mapped": [{"name": s.name, "calls": s.calls, "written_in": s.written_in, "mapped": s.mapped}
                       for s in wl.statements if s.mapped],
            "skipped": [{"calls": s.calls, "query": s.query, "reason": s.reason} for s in wl.skipped]}


def _run_facts(args: argparse.Namespace, locust: LocustRun, requests: list[timeline.Request]) -> dict[str, Any]:
    """Workers, the per-worker request counts, Locust's CPU warnings and the rate held, for summary.json."""
    by_worker = Counter(r.worker for r in requests)
    return {"workers": locust.workers, "requests_by_worker": dict(sorted(by_worker.items())),
            "cpu_warnings": locust.cpu_warnings(),
            "rate": timeline.rate_held(requests, args.rate, locust.users / locust.spawn_rate) if args.rate else None}


def _baseline(args: argparse.Namespace, limits: config.Baseline, out: Path, users: int, spawn: float,
              defaults: config.RunDefaults) -> tuple[dict[str, Any], list[Finding]]:
    duration = args.duration or defaults.duration
    if config.seconds(duration) > MAX_SECONDS:
        raise SynapError(f"--duration is bounded to {MAX_SECONDS}s")
    args.workload = args.workload or "api"
    if args.url and args.workload != "api":
        raise SynapError("--url loads a staging API: the load is the API's (--workload api)")
    snapshot = bool(args.save_workload) and not args.workload_from
    wl: workload.Workload | None = None
    with ExitStack() as stack:
        host = None
        if args.url:
            if not args.dsn:
                raise SynapError("--url needs --dsn to read the tenant ids the users act for (read-only)")
            if snapshot:
                raise SynapError("--save-workload snapshots the database under test: not a staging --url's")
            dsn, host = args.dsn, args.url.rstrip("/")
        elif args.dsn:
            from synap_verify.server.dsn import attach

            if not attach(args.dsn, args.disposable, Settings.disposable_pattern).disposable:
                raise SynapError("the load writes rows: pass --disposable (or a database named *_test, *_ci, ...)")
            dsn = args.dsn
        else:
            dsn, _ = stack.enter_context(_embedded("migrated", args.scale, args.seed,
                                                   ("pg_stat_statements",) if snapshot else ()))
        if args.workload == "api" and not args.url:
            host = stack.enter_context(orchestrate.serve_api(dsn, out / "api.log"))
        pool = orchestrate.tenant_pool(dsn, defaults.tenants)
        orchestrate.write_json(out / "pool.json", pool)
        env = {"SYNAP_LOAD_POOL": str(out / "pool.json")} | ({"SYNAP_LOAD_ALLOWED_URL": host} if args.url and host else {})
        if args.workload != "api":
            sql_env, wl, _ = _sql_env(args, dsn, pool, out, _prepare(args, defaults))
            env |= sql_env
        if snapshot:
            workload.reset_statements(dsn)
        locust = _locust(args, out, users, spawn, duration, host, env)
        _say(f"synap-verify: {users} {args.workload} users on {host or 'the database'} for {duration}"
             + (f", {locust.workers} Locust workers" if locust.workers else "")
             + (f", target {args.rate:g} requests/s" if args.rate else ""))
        locust.start(args.config)
        code = locust.wait(config.seconds(duration) + locust.connect_within + 60)
        if snapshot:
            wl = workload.build(workload.read_statements(dsn), dsn, args.workload_share,
                                f"{args.workload} load run of the reference, scale {args.scale}, {users} users, {duration}")
            _say(f"synap-verify: workload of this run ({wl.line()}) written to {wl.save(args.save_workload)}")
    requests = timeline.read(locust.timeline)
    s = timeline.stats(requests)
    facts = _run_facts(args, locust, requests)
    plot.write(out / "timeline.svg", requests, [], f"baseline: {users} users, {s.rps:.1f} requests/s")
    findings = verdict.baseline_findings(s, limits) + verdict.rate_findings(facts["rate"])
    text = "\n".join([f"baseline ({users} {args.workload} users, {duration}): {s.line()}",
                      *verdict.fact_lines(facts), *([f"  workload: {wl.line()}"] if wl else [])])
    return {"mode": "baseline", "workload": args.workload, "users": users, "duration": duration, "locust_exit": code,
            "stats": s.as_dict(), "by_name": _by_name(requests), **facts,
            "statement_workload": _workload_summary(wl), "text": text}, findings


def _migration(args: argparse.Namespace, limits: config.Migration, out: Path, users: int, spawn: float,
               defaults: config.RunDefaults) -> tuple[dict[str, Any], list[Finding]]:
    if args.dsn or args.url:
        raise SynapError("--migrate runs on a fresh embedded legacy database only (it migrates it)")
    if args.save_workload and not args.workload_from:
        raise SynapError("--save-workload of a run's own statements is for a load run without --migrate")
    args.workload = args.workload or ("sql" if args.group or args.unsafe else PHASED)
    prepare = _prepare(args, defaults)
    bound = args.before + args.after + args.max_migration + (args.switch if args.workload == PHASED else 0)
    if bound > MAX_SECONDS:
        raise SynapError(f"--before + --after + --max-migration is bounded to {MAX_SECONDS}s")
    plan = MigrationPlan(Settings.resolve({}).alembic, args.unsafe, args.expand_contract_rows, args.group)
    if args.workload == PHASED:
        return _phased(args, plan, limits, out, users, spawn, prepare, bound, defaults.tenants)
    if args.seeded_defect:
        raise SynapError("--seeded-defect seeds a phased run: --migrate of the whole reference, without --workload/--group")
    wl: workload.Workload | None = None
    with ExitStack() as stack:
        dsn, _ = stack.enter_context(_embedded("legacy", args.scale, args.seed))
        if args.extra_events:
            _say(f"synap-verify: {orchestrate.grow_events(dsn, args.extra_events):,} analytics_events rows added")
        pool = orchestrate.tenant_pool(dsn, defaults.tenants)
        orchestrate.write_json(out / "pool.json", pool)
        env = {"SYNAP_LOAD_POOL": str(out / "pool.json")}
        host = None
        if args.workload == "api":
            host = stack.enter_context(orchestrate.serve_api(dsn, out / "api.log"))
        else:
            sql_env, wl, _ = _sql_env(args, dsn, pool, out, prepare)
            env |= sql_env
        locust = _locust(args, out, users, spawn, f"{int(bound)}s", host, env)
        result = orchestrate.under_load(dsn, plan, locust, args.config, args.before, args.after, _say)
    prepared = ("off" if prepare is None else prepare) if args.workload != "api" else "off (the reference API's engine)"
    requests = timeline.read(locust.timeline)
    summary, findings = _judge(result, requests, limits, out, args, args.workload, users, prepared)
    facts = _run_facts(args, locust, requests)
    summary |= facts | {"statement_workload": _workload_summary(wl)}
    summary["text"] += "\n" + "\n".join([*verdict.fact_lines(facts), *([f"  workload: {wl.line()}"] if wl else [])])
    return summary, findings


def _phases(text: str) -> tuple[str, ...]:
    wanted = tuple(p.strip() for p in text.split(",") if p.strip())
    if not wanted or any(p not in orchestrate.PHASES for p in wanted):
        raise SynapError(f"--phases {text!r}: a comma-separated choice of {', '.join(orchestrate.PHASES)}, e.g. expand,contract")
    return tuple(p for p in orchestrate.PHASES if p in wanted)


def _phased(args: argparse.Namespace, plan: MigrationPlan, limits: config.Migration, out: Path, users: int,
            spawn: float, prepare: int | None, bound: float, tenants: int) -> tuple[dict[str, Any], list[Finding]]:
    """The deployment under load: the old application through the expand, the new one from the switch on."""
    if args.group or args.unsafe:
        raise SynapError("--workload phased runs the whole reference migration: drop --group/--unsafe")
    plan.phases, plan.seeded = _phases(args.phases), args.seeded_defect
    if plan.seeded and ("contract" if plan.seeded == "old-app-at-contract" else "expand") not in plan.phases:
        raise SynapError(f"--seeded-defect {plan.seeded} needs its phase in --phases")
    scripts = migrate.script_directory(plan.location)
    if orchestrate.SWITCH_REVISION not in {r.revision for r in scripts.walk_revisions()}:
        raise SynapError(f"a phased run needs the expand point, a revision named {orchestrate.SWITCH_REVISION!r}, "
                         f"in {plan.location}: use --workload sql for a history without one")
    (out / "old-app").mkdir(parents=True, exist_ok=True)
    (out / "new-app").mkdir(parents=True, exist_ok=True)
    wl: workload.Workload | None = None
    with ExitStack() as stack:
        # with --workload-from the statements' new forms are checked on a migrated database before the run
        dsn, migrated = stack.enter_context(_embedded("legacy", args.scale, args.seed,
                                                      other="migrated" if args.workload_from else None))
        if args.extra_events:
            _say(f"synap-verify: {orchestrate.grow_events(dsn, args.extra_events):,} analytics_events rows added")
        pool = orchestrate.tenant_pool(dsn, tenants)
        orchestrate.write_json(out / "pool.json", pool)
        # with --workload-from: the old application runs the legacy forms, the new one the new forms
        sql_env, wl, new_env = _sql_env(args, dsn, pool, out, prepare, migrated)
        pool_env = {"SYNAP_LOAD_POOL": str(out / "pool.json")}
        classes = ("statements", "statements") if wl else ("legacy", "new")
        old = _locust(args, out / "old-app", users, spawn, f"{int(bound)}s", None, pool_env | sql_env, USER_CLASSES[classes[0]])
        new = _locust(args, out / "new-app", users, spawn, f"{int(bound)}s", None, pool_env | new_env,
                      USER_CLASSES[classes[1]])
        result = orchestrate.phased_under_load(dsn, plan, old, new, args.config, args.before, args.switch, args.after, _say)
    by_app = {"old": timeline.read(old.timeline), "new": timeline.read(new.timeline)}
    requests = sorted(by_app["old"] + by_app["new"], key=lambda r: r.start)
    timeline.write(out / "timeline.csv", requests)
    summary, findings = _judge(result, requests, limits, out, args, PHASED, users, "off" if prepare is None else prepare)
    rows = verdict.phase_rows(result.phases, by_app)
    summary |= {"phases": [r.as_dict() for r in rows], "seeded_defect": plan.seeded, "new_locust_exit": result.new_exit,
                "by_app_and_name": {app: _by_name(reqs) for app, reqs in by_app.items()},
                "statement_workload": _workload_summary(wl)}
    mapped = sum(bool(s.mapped) for s in wl.statements) if wl else 0
    summary["text"] += (f"\n  workload: {wl.line()}; {mapped} mapped through the contract (legacy forms by the old "
                        "application, new forms by the new one)" if wl else "") + "\n\n" + verdict.phase_table(rows)
    (out / "phases.md").write_text(verdict.phase_table(rows) + "\n")
    return summary, findings


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
    if getattr(args, "seeded_defect", None):
        what += f" with a seeded defect ({args.seeded_defect})"
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
