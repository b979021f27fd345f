"""``synap-verify report``: run the verification suites with ``--synap-report``, or rebuild the HTML
page from a report's JSON twin (after a change to the page, or to read a report from CI).

Exit codes as for every command: 0 GO, 1 the suites failed (NO-GO), 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synap_verify.errors import SynapError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/report.html"),
                        help="HTML file to write; the JSON twin goes beside it (default: out/report.html)")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="rebuild the HTML from this report JSON instead of running the suites")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER,
                        help="arguments for pytest after '--', e.g. -- --synap-group=llm --synap-scale=tiny")


def run(args: argparse.Namespace) -> int:
    if args.from_json:
        from synap_verify.report.html import render

        try:
            doc = json.loads(args.from_json.read_text())
            page = render(doc)
        except (OSError, ValueError, KeyError) as exc:
            raise SynapError(f"{args.from_json} is not a synap-verify report JSON ({type(exc).__name__}: {exc})") from None
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(page)
        print(f"synap-verify: {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): {doc['verdict']['status']}",
              file=sys.stderr)
        return 0
    import pytest

    extra = [a for a in args.pytest_args if a != "--"]
    code = int(pytest.main([f"--synap-report={args.out}", *extra]))
    return code if code in (0, 1) else 2
