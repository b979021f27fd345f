"""Preflight: before anything runs, every legacy row the restructure would reject, quarantine or alter.

Read-only, on the legacy database, driven by the contract: json text jsonb rejects (and documents
whose duplicate keys jsonb would collapse), NULLs in columns that become NOT NULL, NULL tenants,
tenant drift between a child and its parent (G7), permission keys with no permission row, and
denormalised counters out of sync with what they count (G8). One finding per (table, check), with
the row count, so operators see the size of each problem before choosing a maintenance window.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from synap_verify.catalog import Table, read_catalog
from synap_verify.contract import Contract, TableSpec
from synap_verify.findings import Finding
from synap_verify.integrity import counters, jsonsem
from synap_verify.integrity.equivalence import SCHEMA, connect

# a member name followed by a colon: counting these in the json text and in its jsonb text gives
# the number of members jsonb drops (duplicate keys); strings cannot end in an unescaped quote + colon
MEMBER = r'"(?:[^"\\]|\\.)*"\s*:'


def _q(name: str) -> str:
    return f"{SCHEMA}.{sql.Identifier(name).as_string(None)}"


def _count(conn: psycopg.Connection, query: str, params: dict[str, str] | None = None) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def check(conn: psycopg.Connection, contract: Contract, groups: Iterable[str] = ()) -> list[Finding]:
    """Every preflight finding over the selected groups (all groups when empty)."""
    catalog = read_catalog(conn)
    selected = set(groups) or set(contract.groups)
    findings: list[Finding] = []
    for spec in contract.tables_in(selected):
        table = catalog.table(spec.legacy_name or spec.name)
        if table is None:
            continue

        def add(rule: str, n: int, message: str, column: str | None = None, s: TableSpec = spec) -> None:
            if n:
                findings.append(Finding(rule, s.group, s.name, f"{n} rows: {message}", column=column, actual=str(n)))

        for doc in (c.name for c in table.columns if c.type in contract.rules.json_types):
            rejected, examples = _jsonb_rejects(conn, table, doc)
            add("PF-JSONB", rejected, f"{table.name}.{doc} holds json text jsonb rejects; the migration must "
                f"quarantine it (e.g. {', '.join(examples)})", doc)
            add("PF-DUPKEYS", _duplicate_keys(conn, table, doc),
                f"{table.name}.{doc} has objects with duplicate keys; jsonb keeps only the last value", doc)
        for name, want in spec.columns.items():
            col = table.column(want.legacy_name or name)
            if want.nullable is False and col is not None and col.nullable:
                add("PF-NULL", _count(conn, f"SELECT count(*) FROM {_q(table.name)} WHERE {col.name} IS NULL"),
                    f"{table.name}.{col.name} is NULL and becomes NOT NULL (re-homed or rejected)", col.name)
        tenant = contract.rules.tenant_column
        if spec.tenant == "required" and (col := table.column(tenant)) is not None and col.nullable:
            add("PF-TENANT", _count(conn, f"SELECT count(*) FROM {_q(table.name)} WHERE {tenant} IS NULL"),
                f"{table.name}.{tenant} is NULL: derived from a parent or left nullable", tenant)
        for fk_col in spec.tenant_parents:
            parent = _parent(table, fk_col)
            if parent and table.column(tenant) and (p := catalog.table(parent)) and p.column(tenant):
                add("PF-DRIFT", _count(conn, f"SELECT count(*) FROM {_q(table.name)} c JOIN {_q(parent)} p ON p.id = "
                                       f"c.{fk_col} WHERE c.{tenant} IS DISTINCT FROM p.{tenant}"),
                    f"{table.name}.{tenant} differs from its {parent}'s through {fk_col} (G7 drift)", fk_col)
        if table.name == "rbac_roles" and table.column("permissions") and catalog.table("rbac_permissions"):
            add("PF-PERMISSION", _count(conn, _UNKNOWN_PERMISSIONS),
                "rbac_roles.permissions keys with no rbac_permissions row (reported, not carried)", "permissions")
    resolved, _ = counters.plan(catalog, contract, selected, legacy=True)  # unresolved: the legacy schema lacks the FK
    for drift in (counters.measure(conn, c) for c in resolved):
        if drift.off:
            c = drift.counted
            findings.append(Finding("PF-COUNTER", c.group, c.table, f"{len(drift.off)} rows: {c.relation}.{c.column} "
                                    f"differs from {c.aggregate} over {c.source}", column=c.column,
                                    actual=str(len(drift.off))))
    return findings


_UNKNOWN_PERMISSIONS = (
    f"SELECT count(*) FROM {SCHEMA}.rbac_roles r CROSS JOIN LATERAL json_array_elements_text(CASE WHEN "
    "json_typeof(r.permissions) = 'array' THEN r.permissions ELSE '[]' END) e(key) "
    f"WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.rbac_permissions p WHERE p.key = e.key)")


def _jsonb_rejects(conn: psycopg.Connection, table: Table, column: str) -> tuple[int, list[str]]:
    """Suspect values (a regex) tried one by one with the server's own ``::jsonb``: exact, and cheap."""
    key = table.primary_key[0] if table.primary_key else "ctid"
    rows = conn.execute(f"SELECT {key}::text, {column}::text FROM {_q(table.name)} "
                        f"WHERE {column}::text ~ %s", (jsonsem.SUSPECT,)).fetchall()
    rejected = []
    for pk, text in rows:
        try:
            conn.execute("SELECT %s::jsonb", (text,))
        except psycopg.DataError:
            rejected.append(pk)
    return len(rejected), rejected[:3]


def _duplicate_keys(conn: psycopg.Connection, table: Table, column: str) -> int:
    members = "(SELECT count(*) FROM regexp_matches({}, %(m)s, 'g'))"
    return _count(conn, f"SELECT count(*) FROM {_q(table.name)} WHERE {column}::text LIKE '%%:%%:%%' "
                               f"AND {column}::text !~ %(s)s AND {members.format(column + '::text')} "
                               f"<> {members.format(column + '::jsonb::text')}", {"m": MEMBER, "s": jsonsem.SUSPECT})


def _parent(table: Table, column: str) -> str | None:
    return next((fk.target_table for fk in table.foreign_keys if fk.columns == (column,)), None)


def run(dsn: str, contract: Contract, groups: Iterable[str] = ()) -> list[Finding]:
    with connect(dsn) as conn:
        return check(conn, contract, groups)
