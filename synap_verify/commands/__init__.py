"""The ``synap-verify`` commands, one module per subcommand (see synap_verify.cli), each thin over the
library functions the suites use; and what several of them share.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from synap_verify.contract.model import Contract
from synap_verify.findings import RENDERERS, Finding
from synap_verify.settings import Settings


def add_contract_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contract", type=Path, default=Settings.contract,
                        help="contract file whose mapping is applied (default: fixtures/contract.yaml)")


def add_tenant_column_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant-column", metavar="NAME",
                        help="the tenant column (default: the contract's G5.tenant_column)")


def with_tenant_column(contract: Contract, column: str | None) -> Contract:
    """The contract with another tenant column for G5/G7 (and the G4 defaults that say ``$tenant_column``)."""
    return contract if not column else replace(contract, rules=replace(contract.rules, tenant_column=column))


def report_findings(findings: list[Finding], fmt: str, summary: str) -> int:
    """Print the findings in ``fmt``, the one-line summary on stderr; exit 1 when there are findings."""
    output = RENDERERS[fmt](findings)
    if output:
        print(output)
    print(f"synap-verify: {summary}", file=sys.stderr)
    return 1 if findings else 0
