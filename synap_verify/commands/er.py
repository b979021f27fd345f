"""``synap-verify er``: regenerate (or check) the ER diagrams of the legacy and migrated schema."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synap_verify.report.er import OUT, pages, read_schemas, render_svg, stale, write
from synap_verify.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the pages (default: docs/er)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the folder is stale")
    parser.add_argument("--svg", action="store_true", help="also render SVGs (needs mermaid-cli and chromium)")
    parser.add_argument("--contract", type=Path, default=Settings.contract)
    parser.add_argument("--alembic", type=Path, default=Settings.alembic, help="migrations (default: synapscale/)")


def run(args: argparse.Namespace) -> int:
    files = pages(read_schemas(args.contract, args.alembic))
    if args.check:
        different = stale(files, args.out)
        for name in different:
            print(f"synap-verify: {args.out / name} is stale: run synap-verify er --out {args.out}", file=sys.stderr)
        return 1 if different else 0
    written = write(files, args.out)
    svgs = render_svg(files, args.out) if args.svg else []
    print(f"synap-verify: {len(written)} pages{f' and {len(svgs)} SVGs' if svgs else ''} in {args.out}", file=sys.stderr)
    return 0
