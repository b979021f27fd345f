"""The restructure groups (values of ``--synap-group``), in the order the specification lists them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from synap_verify.errors import SynapError

# the restructured schema: the contract's default ``schemas`` and where the harness's own queries look
SCHEMA = "synapscale_db"

GROUPS: tuple[str, ...] = (
    "backup", "rbac", "workflows", "llm", "marketplace", "analytics", "billing", "users",
    "workspaces", "nodes", "metrics", "templates", "other", "core", "contacts",
)


def resolve_groups(names: Iterable[str], known: tuple[str, ...] = GROUPS) -> tuple[str, ...]:
    """Split comma lists, validate every name and keep the specification's order; none means every group."""
    return resolve_names(names, known, "group", "groups", empty=known)


def resolve_names(names: Iterable[str], known: tuple[str, ...], kind: str, label: str,
                  empty: tuple[str, ...]) -> tuple[str, ...]:
    """Validate a selection of names in ``known``'s order; an unknown name fails with a suggestion.

    A typo that silently selected nothing would pass every check, hence the error.
    """
    wanted = {n.strip() for name in names for n in name.split(",") if n.strip()}
    for name in sorted(wanted):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise SynapError(f"unknown {kind} '{name}'{hint} ({label}: {', '.join(known)})")
    return tuple(g for g in known if g in wanted) if wanted else empty
