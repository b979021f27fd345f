"""The restructure groups (values of ``--synap-group``), in the order the specification lists them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from synap_verify.errors import SynapError

GROUPS: tuple[str, ...] = (
    "backup", "rbac", "workflows", "llm", "marketplace", "analytics", "billing", "users",
    "workspaces", "nodes", "metrics", "templates", "other", "core", "contacts",
)


def resolve_groups(names: Iterable[str], known: tuple[str, ...] = GROUPS) -> tuple[str, ...]:
    """Split comma lists, validate every name and keep the specification's order.

    An empty selection means every group. An unknown name fails with a suggestion, because a typo that
    silently selects nothing would pass every check.
    """
    wanted = {n.strip() for name in names for n in name.split(",") if n.strip()}
    for name in sorted(wanted):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise SynapError(f"unknown group '{name}'{hint} (groups: {', '.join(known)})")
    return tuple(g for g in known if g in wanted) if wanted else known
