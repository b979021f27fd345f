"""``synap-verify contract``: check one database against the contract; exit 0 clean, 1 findings, 2 errors."""

from __future__ import annotations

import argparse

import psycopg

from synap_verify import migrate
from synap_verify.catalog import read_catalog
from synap_verify.commands import add_checking_arguments, contract_and_groups, report_findings, target
from synap_verify.contract.check import check
from synap_verify.errors import SynapError
from synap_verify.groups import GROUPS
from synap_verify.resources import REFERENCE_MIGRATIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_checking_arguments(parser)
    parser.add_argument("--before-contract", action="store_true",
                        help="the database is expanded, its contract phase not run yet: old columns kept in sync by "
                             "their <table>_<column>_compat_sync trigger are not findings (implied for an embedded "
                             "copy of a subset of the groups)")


def run(args: argparse.Namespace) -> int:
    contract, groups = contract_and_groups(args)
    expanded = args.before_contract or not args.dsn and migrate.stops_before_head(REFERENCE_MIGRATIONS, groups,
                                                                                   groups == GROUPS)
    with target(args, groups) as db:
        try:
            with db.connect() as conn:
                catalog = read_catalog(conn, contract.schemas)
        except psycopg.Error as exc:
            raise SynapError(f"cannot read the catalog: {str(exc).strip().splitlines()[0]}") from None
    findings = check(catalog, contract, groups, expanded)
    summary = f"{len(findings)} finding(s) in {len(groups)} group(s)"
    return report_findings(findings, args.format, summary if args.format == "text" else None)
