"""Dropped columns checked at their destination: every legacy value must be found where the contract says it went.

The contract names the destination in words (``moved_to``); the SQL that reads each destination is
here, keyed by (legacy table, column). Every check also accepts the value quarantined under the
same table and column with its original text, which is how a move reports a value it could not
carry (an unknown permission key, a provider that disagrees). A dropped column with no check here
is itself a finding: its values would otherwise go unverified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from synap_verify.catalog import Catalog
from synap_verify.contract import Contract
from synap_verify.contract.model import Mapping
from synap_verify.findings import Finding
from synap_verify.groups import SCHEMA

S = SCHEMA
Names = Callable[[str], str]  # legacy table name -> its name in the migrated database


@dataclass(frozen=True)
class Move:
    """How to read one dropped column's values before, and where they must be after (``k`` rows, as text)."""

    label: str
    before: str
    after: str
    quarantine: tuple[str, str]  # (target table, column) whose quarantined originals also count


def _pair(a: str, b: str) -> str:
    return f"row({a}::text, {b}::text)::text"


MOVES: dict[tuple[str, str], Callable[[Names], Move]] = {
    ("rbac_roles", "permissions"): lambda n: Move(
        "rbac_role_permissions (role, permission key)",
        f"SELECT DISTINCT {_pair('r.id', 'e.key')} AS k FROM {S}.rbac_roles r CROSS JOIN LATERAL "
        f"json_array_elements_text(CASE WHEN json_typeof(r.permissions) = 'array' THEN r.permissions ELSE '[]' END) e(key) "
        f"UNION SELECT {_pair('r.id', 'r.permissions')} FROM {S}.rbac_roles r "
        "WHERE r.permissions IS NOT NULL AND json_typeof(r.permissions) NOT IN ('array', 'null')",
        f"SELECT {_pair('rp.role_id', 'p.key')} AS k FROM {S}.{n('rbac_role_permissions')} rp "
        f"JOIN {S}.{n('rbac_permissions')} p ON p.id = rp.permission_id",
        (n("rbac_roles"), "permissions")),
    ("users", "tenant_id"): lambda n: Move(
        "user_tenant_roles (user, tenant)",
        f"SELECT {_pair('id', 'tenant_id')} AS k FROM {S}.users WHERE tenant_id IS NOT NULL",
        f"SELECT {_pair('user_id', 'tenant_id')} AS k FROM {S}.{n('user_tenant_roles')}",
        (n("users"), "tenant_id")),
    ("llms_messages", "rating"): lambda n: Move(
        "message_feedbacks (message, rating, feedback_text)",
        f"SELECT row(id::text, rating::text, feedback)::text AS k FROM {S}.llms_messages "
        "WHERE rating IS NOT NULL OR feedback IS NOT NULL",
        f"SELECT row(message_id::text, rating::text, feedback_text)::text AS k FROM {S}.{n('llms_message_feedbacks')}",
        (n("llms_messages"), "rating")),
    ("agents", "model_provider"): lambda n: Move(
        "agents.provider",
        f"SELECT {_pair('id', 'model_provider')} AS k FROM {S}.agents WHERE model_provider IS NOT NULL",
        f"SELECT {_pair('id', 'provider')} AS k FROM {S}.{n('agents')}",
        (n("agents"), "model_provider")),
    ("marketplace_components", "author_name"): lambda n: Move(
        "the author's users.full_name or marketplace_components.metadata",
        f"SELECT {_pair('id', 'author_name')} AS k FROM {S}.marketplace_components WHERE author_name IS NOT NULL",
        f"SELECT {_pair('m.id', 'u.full_name')} AS k FROM {S}.{n('marketplace_components')} m "
        f"JOIN {S}.{n('users')} u ON u.id = m.author_id UNION ALL SELECT {_pair('m.id', 'e.value')} "
        f"FROM {S}.{n('marketplace_components')} m CROSS JOIN LATERAL jsonb_each_text(m.metadata) e",
        (n("marketplace_components"), "author_name")),
}
# columns whose values travel with another dropped column's move
COMPANIONS = {("llms_messages", "feedback"): ("llms_messages", "rating")}


Destination = tuple[str, str, str, str, str, str]  # group, target table, before SQL, after SQL, source, destination


def destinations(before: Catalog, after: Catalog, contract: Contract, groups: set[str]) -> tuple[list[Destination],
                                                                                              list[Finding]]:
    """One subset check per dropped column of the selected groups, and a finding for a column with none."""
    mapping = contract.mapping()
    names = _namer(mapping)
    checks: list[Destination] = []
    findings: list[Finding] = []
    for dropped in mapping.dropped:
        spec = contract.tables[dropped.table]
        at = (dropped.legacy_table, dropped.column)
        old = before.table(dropped.legacy_table)
        if spec.group not in groups or old is None or old.column(dropped.column) is None or at in COMPANIONS:
            continue
        make = MOVES.get(at)
        if make is None:
            findings.append(Finding("EQ-MOVED", spec.group, spec.name, f"{dropped.legacy_table}.{dropped.column} is "
                                    f"dropped (moved to {dropped.moved_to}) and no destination check knows how to read it"))
            continue
        move = make(names)
        table, column = move.quarantine
        quarantined = (f" UNION ALL SELECT row(primary_key, original_text)::text FROM {S}.migration_quarantine "
                       f"WHERE table_name = '{table}' AND column_name = '{column}'"
                       if after.table("migration_quarantine") else "")
        checks.append((spec.group, spec.name, move.before, f"SELECT k FROM ({move.after}) d{quarantined}",
                       f"{dropped.legacy_table}.{dropped.column} values", move.label))
    return checks, findings


def _namer(mapping: Mapping) -> Names:
    return lambda legacy: mapping.new_table(legacy) or legacy
