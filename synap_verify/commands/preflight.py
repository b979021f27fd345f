"""``synap-verify preflight``: every legacy row the restructure would reject, quarantine or alter, before
anything runs."""

from __future__ import annotations

import argparse

from synap_verify.commands import add_contract_argument, report_findings
from synap_verify.contract import load_contract
from synap_verify.groups import resolve_groups


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from synap_verify.cli import add_target_arguments

    add_target_arguments(parser)
    add_contract_argument(parser)


def run(args: argparse.Namespace) -> int:
    from synap_verify.integrity import preflight
    from synap_verify.pipeline import target_database

    contract = load_contract(args.contract)
    groups = resolve_groups(args.group)
    with target_database(args.dsn, list(groups), args.scale, args.seed, state="legacy", cache=args.cache) as db:
        findings = preflight.run(db.dsn, contract, groups)
    rows = sum(int(f.actual or 0) for f in findings)
    tables = len({f.table for f in findings})
    return report_findings(findings, args.format, f"{len(findings)} finding(s): {rows:,} rows in {tables} table(s) "
                           "would be rejected, quarantined or altered")
