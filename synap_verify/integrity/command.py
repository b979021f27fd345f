"""``synap-verify equivalence`` and ``synap-verify preflight``: the integrity checks from a shell.

Exit codes as every command: 0 clean, 1 findings, 2 usage or connection error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synap_verify.contract import load_contract
from synap_verify.findings import RENDERERS, Finding
from synap_verify.groups import resolve_groups
from synap_verify.settings import Settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contract", type=Path, default=Settings.contract,
                        help="contract file whose mapping is applied (default: fixtures/contract.yaml)")


def _report(findings: list[Finding], fmt: str, summary: str) -> int:
    output = RENDERERS[fmt](findings)
    if output:
        print(output)
    print(f"synap-verify: {summary}", file=sys.stderr)
    return 1 if findings else 0


class Equivalence:
    """Compare a restored pre-migration snapshot with a migrated database, on one server or two."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--before", required=True, help="DSN of the legacy (pre-migration) database")
        parser.add_argument("--after", required=True, help="DSN of the migrated (or downgraded, with --rollback) database")
        parser.add_argument("--group", action="append", default=[], help="restructure group(s); repeatable or comma list")
        parser.add_argument("--rollback", action="store_true",
                            help="the after database was downgraded: compare under legacy names")
        parser.add_argument("--format", choices=tuple(RENDERERS), default="text")
        parser.add_argument("--jobs", type=int, default=None,
                            help="connections per database that scan in parallel (default: this machine's cores)")
        _common(parser)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from synap_verify.integrity import equivalence

        contract = load_contract(args.contract)
        groups = resolve_groups(args.group)
        report = equivalence.run(args.before, args.after, contract, groups, rollback=args.rollback, jobs=args.jobs)
        return _report(report.findings, args.format,
                       f"{len(report.findings)} finding(s); {len(report.outcomes)} relations, {report.rows:,} rows "
                       f"compared in {report.seconds:.1f}s ({report.rate:,.0f} rows/s, {report.jobs} connections per side)")


class Preflight:
    """Every legacy row the restructure would reject, quarantine or alter, before anything runs."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        from synap_verify.cli import add_target_arguments

        add_target_arguments(parser)
        _common(parser)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from synap_verify.integrity import preflight
        from synap_verify.pipeline import target_database

        contract = load_contract(args.contract)
        groups = resolve_groups(args.group)
        with target_database(args.dsn, list(groups), args.scale, args.seed, state="legacy", cache=args.cache) as db:
            findings = preflight.run(db.dsn, contract, groups)
        rows = sum(int(f.actual or 0) for f in findings)
        tables = len({f.table for f in findings})
        return _report(findings, args.format, f"{len(findings)} finding(s): {rows:,} rows in {tables} table(s) "
                       "would be rejected, quarantined or altered")
