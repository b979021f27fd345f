"""``synap-verify preflight``: every legacy row the restructure would reject, quarantine or alter, before
anything runs."""

from __future__ import annotations

import argparse

from synap_verify.commands import add_checking_arguments, contract_and_groups, report_findings, target

add_arguments = add_checking_arguments


def run(args: argparse.Namespace) -> int:
    from synap_verify.integrity import preflight

    contract, groups = contract_and_groups(args)
    with target(args, groups, state="legacy") as db:
        findings = preflight.run(db.dsn, contract, groups)
    rows = sum(int(f.actual or 0) for f in findings)
    tables = len({f.table for f in findings})
    return report_findings(findings, args.format, f"{len(findings)} finding(s): {rows:,} rows in {tables} table(s) "
                           "would be rejected, quarantined or altered")
