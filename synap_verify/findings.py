"""Finding: the one currency of every check.

Checks are plain functions that return findings; pytest items, the CLI and the reports only render
them, so a message is written once, here, and nowhere else. A finding's rule must be registered in
:mod:`synap_verify.rules`, where its meaning, its fix and its doc entry live.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from synap_verify.rules import rule


@dataclass(frozen=True, order=True)
class Finding:
    """One violated expectation, with enough context to act on it."""

    rule: str
    group: str
    table: str
    message: str
    column: str | None = None
    constraint: str | None = None
    expected: str | None = None
    actual: str | None = None

    def __post_init__(self) -> None:
        rule(self.rule)  # an unregistered id fails where the finding is made, not in a report later

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def render_text(findings: Sequence[Finding]) -> str:
    """One line per finding, sorted by group, table and rule, for terminals and assertion messages."""
    return "\n".join(f"[{f.rule}] {f.group}/{f.table}: {f.message}" for f in sorted(findings, key=_key))


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.as_dict() for f in sorted(findings, key=_key)], indent=2)


def render_markdown(findings: Sequence[Finding]) -> str:
    rows = ["| rule | group | table | finding |", "|---|---|---|---|"]
    rows += [f"| {f.rule} | {f.group} | {f.table} | {f.message.replace('|', '/')} |" for f in sorted(findings, key=_key)]
    return "\n".join(rows)


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}


def count_by_rule(findings: Iterable[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.rule] = counts.get(f.rule, 0) + 1
    return dict(sorted(counts.items()))


def _key(f: Finding) -> tuple[str, str, str, str]:
    return (f.group, f.table, f.rule, f.column or f.constraint or "")
