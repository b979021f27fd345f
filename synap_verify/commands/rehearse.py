"""``synap-verify rehearse``: the whole restructure of a schema on a throwaway copy, in one command.

Load the baseline (a schema file or a live database's schema) into an embedded server and fill it
with generated rows, plan it against the contract, apply the planned revisions, then judge the
migrated copy: contract, data equivalence with the loaded copy, RLS lints and probes. Exit 0 only
when the migrated copy is clean (no finding, nothing manual), 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from synap_verify import migrate
from synap_verify.commands import add_contract_argument, add_tenant_column_argument, report_findings, with_tenant_column
from synap_verify.contract import check, load_contract
from synap_verify.errors import SynapError, first_line
from synap_verify.findings import RENDERERS, Finding, count_by_rule
from synap_verify.groups import resolve_groups
from synap_verify.plan import build_plan
from synap_verify.plan.render import render_summary, write_revisions
from synap_verify.server import redact
from synap_verify.settings import Settings

if TYPE_CHECKING:
    from synap_verify.pipeline import Pipeline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", help="schema file (pg_dump --schema-only) or DSN to take the schema from "
                                           "(read only; default: the legacy fixture)")
    add_contract_argument(parser)
    add_tenant_column_argument(parser)
    parser.add_argument("--group", action="append", default=[], help="restructure group(s); repeatable or comma list")
    parser.add_argument("--scale", default="tiny", help="data profile of the generated rows (default: tiny)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--prelude", type=Path, help="SQL run before the baseline (objects the dump uses but does not define)")
    parser.add_argument("--skip-missing", action="store_true",
                        help="load what the server can and list what needs a missing object")
    parser.add_argument("--out", type=Path, help="keep the planned migrations folder here (default: a temporary one)")
    parser.add_argument("--format", choices=tuple(RENDERERS), default="text")
    parser.add_argument("--report", type=Path, metavar="FILE.html",
                        help="write the rehearsal as an HTML report, with its JSON twin beside it")


def say(line: str) -> None:
    print(line, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from synap_verify import rls
    from synap_verify.integrity import equivalence
    from synap_verify.pipeline import Pipeline

    contract = with_tenant_column(load_contract(args.contract), args.tenant_column)
    groups = resolve_groups(args.group)
    selected = groups if args.group else ()
    settings = Settings.resolve({"baseline": args.baseline, "baseline_prelude": args.prelude,
                                 "baseline_skip_missing": args.skip_missing, "scale": args.scale, "seed": args.seed,
                                 "groups": list(groups), "contract": args.contract,
                                 "tenant_column": contract.rules.tenant_column})
    timings: dict[str, float] = {}
    began, started = time.perf_counter(), time.time()
    pipeline = Pipeline.start(settings, say=say)
    try:
        before = pipeline.clone("legacy")
        work = pipeline.clone("legacy")
        timings["load"] = time.perf_counter() - began
        t = time.perf_counter()
        start = work.catalog(contract.schemas)
        findings_before = check(start, contract, selected)
        plan = build_plan(start, contract, selected)
        out = args.out or Path(tempfile.mkdtemp(prefix="synap-rehearse-"))
        write_revisions(plan, out, f"the rehearsal's copy of {source(settings)}")
        say(f"synap-verify: planned revisions in {out}")
        timings["plan"] = time.perf_counter() - t
        print(render_summary(plan), file=sys.stderr)
        t = time.perf_counter()
        steps = migrate.upgrade(work.dsn, out, ["heads"]) if not all(g.empty for g in plan.groups) else []
        timings["migrate"] = time.perf_counter() - t
        t = time.perf_counter()
        after = work.catalog(contract.schemas)
        findings_after = check(after, contract, selected)
        timings["contract"] = time.perf_counter() - t
        t = time.perf_counter()
        compared = equivalence.run(before.dsn, work.dsn, contract, selected)
        same = compared.findings
        timings["equivalence"] = time.perf_counter() - t
        say(f"synap-verify: equivalence {len(same)} finding(s) over {compared.rows:,} rows")
        t = time.perf_counter()
        probes = rls.from_contract(contract.covering(after))
        # the probes run on every tenant table; a rehearsal of some groups judges only theirs (as `rls --group`)
        guarded = [f for f in rls.check(work, probes.config, probes.groups).findings
                   if not selected or f.group in selected or f.table == "-"]
        timings["rls"] = time.perf_counter() - t
        say(f"synap-verify: RLS {len(guarded)} finding(s) in {', '.join(contract.schemas)} on "
            f"{contract.rules.tenant_column}")
    except psycopg.Error as exc:
        raise SynapError(f"rehearsal failed: {first_line(exc)}") from None
    finally:
        pipeline.stop()
    pipeline.steps, pipeline.timings = steps, timings
    sections = {"plan": plan.findings, "contract": findings_after, "nothing-lost": same, "rls": guarded}
    if args.report is not None:
        html, _, status = write_report(args.report, pipeline, sections, started, args, out, contract.schemas)
        say(f"synap-verify: report {html}: {status}")
    for s in steps:
        worst = s.longest_exclusive()
        lock = f", longest ACCESS EXCLUSIVE {worst.seconds:.2f}s on {worst.relation}" if worst else ""
        say(f"synap-verify:   {s.revision:<16} {s.seconds:7.2f}s{lock}")
    say("synap-verify: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    say(f"synap-verify: contract findings before {len(findings_before)} {count_by_rule(findings_before)} -> after "
        f"{len(findings_after)} {count_by_rule(findings_after)}; PLAN-MANUAL {len(plan.findings)}")
    found: list[Finding] = [*plan.findings, *findings_after, *same, *guarded]
    return report_findings(found, args.format, f"{len(found)} finding(s) on the migrated copy; revisions in {out}")


def source(settings: Settings) -> str:
    """The baseline as it may be printed: a DSN without its password."""
    baseline = settings.baseline
    return redact(baseline) if isinstance(baseline, str) else str(baseline or "the legacy fixture")


def write_report(path: Path, pipeline: Pipeline, sections: dict[str, list[Finding]], started: float,
                 args: argparse.Namespace, out: Path, schemas: tuple[str, ...]) -> tuple[Path, Path, str]:
    """The rehearsal in the pytest report's shape (groups, findings per section, migration steps, rows loaded):
    GO when no section has a finding, NO-GO with the count per section otherwise."""
    from synap_verify.report.collect import commit, load_section, migration_section, summarise_groups, write

    settings = pipeline.settings
    found = {name: [f.as_dict() for f in findings] for name, findings in sections.items()}
    doc: dict[str, Any] = {
        "meta": {"title": f"rehearsal of {source(settings)}", "database": ", ".join(schemas),
                 "server": {"backend": pipeline.server.backend, "where": pipeline.server.describe(), "version": None},
                 "scale": settings.scale, "seed": settings.seed, "groups": list(settings.groups),
                 "contract": str(args.contract), "migrations": str(out), "commit": commit(),
                 "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
                 "seconds": round(time.time() - started, 1),
                 "exitstatus": 1 if any(sections.values()) else 0, "python": platform.python_version(),
                 "pytest": "-", "command": " ".join(["synap-verify", *sys.argv[1:]])},
        "sections_run": list(found), "tests": [], "findings": found, "rls": {}, "benchmark": [],
        "migration": migration_section(pipeline), "load": load_section(pipeline), "skipped_states": {},
    }
    doc["groups"] = summarise_groups(doc, settings.groups)
    reasons = [f"{name}: {len(f)} finding(s)" for name, f in found.items() if f]
    doc["verdict"] = {"status": "NO-GO" if reasons else "GO", "reasons": reasons, "counts": {}}
    return write(doc, path)
