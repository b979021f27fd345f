"""``synap-verify plan``: the restructure of one database, computed from the contract and its live catalog.

Read-only on the target (catalog and ``reltuples`` only). Exit 0 when everything that needs doing is
planned, 1 when some of it is ``PLAN-MANUAL``, 2 on a usage or connection error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from synap_verify.catalog import read_catalog
from synap_verify.commands import add_contract_argument, add_tenant_column_argument, report_findings, with_tenant_column
from synap_verify.contract.load import load_contract
from synap_verify.errors import SynapError, first_line
from synap_verify.groups import resolve_groups
from synap_verify.plan import build_plan
from synap_verify.plan.render import render_dry_run, render_summary, row_estimates, write_revisions
from synap_verify.server import redact


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help="database to plan for, read only (default: the legacy fixture's schema on an "
                                      "embedded server)")
    add_contract_argument(parser)
    add_tenant_column_argument(parser)
    parser.add_argument("--group", action="append", default=[], help="restructure group(s); repeatable or comma list")
    parser.add_argument("--out", type=Path, help="write a runnable migrations folder here (one revision per group)")
    parser.add_argument("--dry-run", action="store_true", help="print each step's SQL, lock and rows (reltuples)")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                        help="format of the PLAN-MANUAL findings")


def run(args: argparse.Namespace) -> int:
    """Contract first (a bad file fails before any server starts), then catalog, plan, output."""
    contract = with_tenant_column(load_contract(args.contract), args.tenant_column)
    groups = resolve_groups(args.group)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise SynapError(f"--out {args.out} is a file: give a folder for the migrations")
    from synap_verify.pipeline import target_database

    with target_database(args.dsn, list(groups), state="schema") as db:
        try:
            with db.connect() as conn:
                catalog = read_catalog(conn, contract.schemas)
                rows = row_estimates(conn, contract.schemas)
        except psycopg.Error as exc:
            raise SynapError(f"cannot read the catalog: {first_line(exc)}") from None
    plan = build_plan(catalog, contract, groups if args.group else ())
    origin = redact(args.dsn) if args.dsn else "the legacy fixture"
    out = sys.stdout if args.format == "text" else sys.stderr  # machine formats keep stdout for the findings
    print(render_dry_run(plan, rows) if args.dry_run else render_summary(plan), file=out)
    if args.out is not None:
        written = write_revisions(plan, args.out, f"{origin} against {Path(args.contract).name}")
        print(f"synap-verify: wrote {len(written)} file(s) to {args.out}", file=sys.stderr)
    steps = sum(not g.empty for g in plan.groups)
    return report_findings(plan.findings, args.format,
                           f"{steps} group(s) to migrate, {len(plan.findings)} PLAN-MANUAL finding(s)")
