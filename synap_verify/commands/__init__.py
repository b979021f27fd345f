"""The ``synap-verify`` commands, one module per subcommand (see synap_verify.cli), each thin over the
library functions the suites use; and what several of them share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from synap_verify.findings import RENDERERS, Finding
from synap_verify.settings import Settings

if TYPE_CHECKING:
    from synap_verify.contract import Contract
    from synap_verify.server.templates import Database


def add_contract_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contract", type=Path, default=Settings.contract,
                        help="contract file (default: the packaged fixtures/contract.yaml)")


def add_checking_arguments(parser: argparse.ArgumentParser) -> None:
    """A command that checks a target database against the contract: the target options and ``--contract``."""
    from synap_verify.cli import add_target_arguments

    add_target_arguments(parser)
    add_contract_argument(parser)


def contract_and_groups(args: argparse.Namespace) -> tuple[Contract, tuple[str, ...]]:
    """The contract first (a bad file fails before any server starts), then the selected groups."""
    from synap_verify.contract import load_contract
    from synap_verify.groups import resolve_groups

    contract = load_contract(args.contract)
    return contract, tuple(resolve_groups(args.group))


def add_tenant_column_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant-column", metavar="NAME",
                        help="the tenant column (default: the contract's G5.tenant_column)")


def with_tenant_column(contract: Contract, column: str | None) -> Contract:
    """The contract with another tenant column for G5/G7 (and the G4 defaults that say ``$tenant_column``)."""
    return contract if not column else replace(contract, rules=replace(contract.rules, tenant_column=column))


def report_findings(findings: list[Finding], fmt: str, summary: str | None) -> int:
    """Print the findings in ``fmt``, the one-line summary (if any) on stderr; exit 1 when there are findings."""
    output = RENDERERS[fmt](findings)
    if output:
        print(output)
    if summary is not None:
        print(f"synap-verify: {summary}", file=sys.stderr)
    return 1 if findings else 0


def target(args: argparse.Namespace, groups: Iterable[str], state: str = "migrated") -> AbstractContextManager[Database]:
    """The database a command checks, from the target arguments (``cli.add_target_arguments``)."""
    from synap_verify.pipeline import target_database

    return target_database(args.dsn, list(groups), args.scale, args.seed, state=state, cache=args.cache)
