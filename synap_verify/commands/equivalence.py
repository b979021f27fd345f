"""``synap-verify equivalence``: compare a restored pre-migration snapshot with a migrated database, on one
server or two."""

from __future__ import annotations

import argparse

from synap_verify.commands import add_contract_argument, contract_and_groups, report_findings
from synap_verify.findings import RENDERERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--before", required=True, help="DSN of the legacy (pre-migration) database")
    parser.add_argument("--after", required=True, help="DSN of the migrated (or downgraded, with --rollback) database")
    parser.add_argument("--group", action="append", default=[], help="restructure group(s); repeatable or comma list")
    parser.add_argument("--rollback", action="store_true",
                        help="the after database was downgraded: compare under legacy names")
    parser.add_argument("--format", choices=tuple(RENDERERS), default="text")
    parser.add_argument("--jobs", type=int, default=None,
                        help="connections per database that scan in parallel (default: this machine's cores)")
    add_contract_argument(parser)


def run(args: argparse.Namespace) -> int:
    from synap_verify.integrity import equivalence

    contract, groups = contract_and_groups(args)
    report = equivalence.run(args.before, args.after, contract, groups, rollback=args.rollback, jobs=args.jobs)
    return report_findings(report.findings, args.format,
                           f"{len(report.findings)} finding(s); {len(report.outcomes)} relations, {report.rows:,} rows "
                           f"compared in {report.seconds:.1f}s ({report.rate:,.0f} rows/s, "
                           f"{report.jobs} connections per side; scan {report.scanned_in:.1f}s, "
                           f"narrowing {report.seconds - report.scanned_in:.1f}s)")
