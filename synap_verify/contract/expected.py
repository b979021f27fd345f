"""Compare findings with an expected-findings file (per rule: an exact count and keys that must appear).

Shared by the suite (on the pipeline's legacy clone) and the harness's own tests (on a bare legacy
load), so both hold the checker to the same list derived from the specification.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from synap_verify.errors import SynapError
from synap_verify.findings import Finding, count_by_rule


def finding_key(f: Finding) -> str:
    """``table.column`` for column findings, else ``table`` (the table's target name)."""
    return f"{f.table}.{f.column}" if f.column else f.table


def load_expected(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SynapError(f"cannot read expected findings {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SynapError(f"{path}: expected a mapping of rule id -> {{count, include}}")
    return data


def differences(findings: Iterable[Finding], expected: dict[str, dict[str, Any]]) -> list[str]:
    """One line per disagreement: a count that differs, a key that is missing, a key that is extra."""
    findings = list(findings)
    counts = count_by_rule(findings)
    lines: list[str] = []
    for rule in sorted(set(counts) | set(expected)):
        want = expected.get(rule, {"count": 0})
        count = int(want.get("count", 0))
        got = counts.get(rule, 0)
        if got != count:
            lines.append(f"{rule}: {got} finding(s), expected {count}")
        include = Counter(str(k) for k in want.get("include") or [])
        actual = Counter(finding_key(f) for f in findings if f.rule == rule)
        lines += [f"{rule}: missing {key}" for key in sorted(include - actual)]
        if sum(include.values()) == count:
            lines += [f"{rule}: unexpected {key}" for key in sorted(actual - include)]
    return lines
