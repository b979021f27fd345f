"""``synap-verify contract``: check one database against the contract; exit 0 clean, 1 findings, 2 errors."""

from __future__ import annotations

import argparse

import psycopg

from synap_verify.catalog import read_catalog
from synap_verify.commands import add_checking_arguments, contract_and_groups, report_findings, target
from synap_verify.contract.check import check
from synap_verify.errors import SynapError

add_arguments = add_checking_arguments


def run(args: argparse.Namespace) -> int:
    contract, groups = contract_and_groups(args)
    with target(args, groups) as db:
        try:
            with db.connect() as conn:
                catalog = read_catalog(conn, contract.schemas)
        except psycopg.Error as exc:
            raise SynapError(f"cannot read the catalog: {str(exc).strip().splitlines()[0]}") from None
    findings = check(catalog, contract, groups)
    summary = f"{len(findings)} finding(s) in {len(groups)} group(s)"
    return report_findings(findings, args.format, summary if args.format == "text" else None)
