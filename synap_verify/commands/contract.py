"""``synap-verify contract``: check one database against the contract; exit 0 clean, 1 findings, 2 errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from synap_verify.catalog import read_catalog
from synap_verify.contract.check import check
from synap_verify.contract.load import load_contract
from synap_verify.errors import SynapError
from synap_verify.findings import RENDERERS
from synap_verify.groups import resolve_groups
from synap_verify.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from synap_verify.cli import add_target_arguments

    add_target_arguments(parser)
    parser.add_argument("--contract", type=Path, default=Settings.contract,
                        help="contract file (default: fixtures/contract.yaml)")


def run(args: argparse.Namespace) -> int:
    """Load the contract first (a bad file fails before any server starts), then check the target."""
    contract = load_contract(args.contract)
    groups = resolve_groups(args.group)
    from synap_verify.pipeline import target_database

    with target_database(args.dsn, list(groups), args.scale, args.seed, cache=args.cache) as db:
        try:
            with db.connect() as conn:
                catalog = read_catalog(conn, contract.schemas)
        except psycopg.Error as exc:
            raise SynapError(f"cannot read the catalog: {str(exc).strip().splitlines()[0]}") from None
    findings = check(catalog, contract, groups)
    output = RENDERERS[args.format](findings)
    if output:
        print(output)
    if args.format == "text":
        print(f"synap-verify: {len(findings)} finding(s) in {len(groups)} group(s)", file=sys.stderr)
    return 1 if findings else 0
