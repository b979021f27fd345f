"""Static row-level-security rules (G5), read from a :class:`Catalog` plus one privilege query.

The lints say *why* a database could leak (or fail closed for the application); the live probes in
:mod:`synap_verify.rls.probes` show whether it does. Rule ids are documented in ``docs/rls.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import psycopg

from synap_verify import g5
from synap_verify.catalog import Catalog, Policy, Table, View
from synap_verify.findings import Finding
from synap_verify.rls.context import RlsConfig

ROLE_GROUP = "core"  # findings about the application role belong to no table: they go with tenancy, in core
_NO_MISSING_OK = re.compile(r"current_setting\(\s*'[^']*'(?:::text)?\s*\)", re.IGNORECASE)
_FROM_TABLE = re.compile(r"\b(?:from|join)\s+(?:\"?\w+\"?\.)?\"?(\w+)\"?", re.IGNORECASE)


@dataclass(frozen=True)
class RoleFacts:
    """What the application role can reach, from one set-based query (privileges are not in the Catalog)."""

    role_exists: bool
    executable_definers: frozenset[tuple[str, str, str]] = frozenset()  # (schema, name, identity args)
    selectable_views: frozenset[str] = frozenset()
    owned_tables: frozenset[str] = frozenset()  # tables whose owner's privileges the role has
    member_of: frozenset[str] = frozenset()  # roles whose policies apply to it (itself included)
    context_functions: Mapping[str, str] | None = None  # helper function name -> source, reading a tenant setting
    uses_schemas: bool = True  # has USAGE on every checked schema (a role left over from another database may not)


_FACTS = """
WITH r AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s),
     f AS (SELECT p.*, n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace),
     c AS (SELECT c.*, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = ANY(%(schemas)s))
SELECT
  ARRAY(SELECT ARRAY[f.nspname::text, f.proname::text, pg_get_function_identity_arguments(f.oid)] FROM f
        WHERE f.nspname = ANY(%(schemas)s) AND f.prosecdef AND f.prorettype <> 'trigger'::regtype
          AND has_function_privilege(r.oid, f.oid, 'EXECUTE')),
  ARRAY(SELECT c.relname::text FROM c WHERE c.relkind IN ('v', 'm') AND has_table_privilege(r.oid, c.oid, 'SELECT')),
  ARRAY(SELECT c.relname::text FROM c WHERE c.relkind IN ('r', 'p') AND pg_has_role(r.oid, c.relowner, 'USAGE')),
  ARRAY(SELECT m.rolname::text FROM pg_roles m WHERE pg_has_role(r.oid, m.oid, 'MEMBER')),
  ARRAY(SELECT ARRAY[f.proname::text, f.prosrc] FROM f
        WHERE f.nspname NOT IN ('pg_catalog', 'information_schema')
          AND EXISTS (SELECT 1 FROM unnest(%(settings)s::text[]) s WHERE strpos(lower(f.prosrc), lower(s)) > 0)),
  (SELECT bool_and(has_schema_privilege(r.oid, n.oid, 'USAGE')) FROM pg_namespace n WHERE n.nspname = ANY(%(schemas)s))
FROM r
"""


def read_facts(conn: psycopg.Connection, config: RlsConfig) -> RoleFacts:
    """One query: what the configured application role can execute, select and own."""
    row = conn.execute(_FACTS, {"role": config.app_role, "schemas": list(config.schemas),
                                "settings": list(config.context.setting_names)}).fetchone()
    if row is None:
        return RoleFacts(role_exists=False)
    definers, views, owned, member_of, helpers, uses = row
    return RoleFacts(True, frozenset(tuple(d) for d in definers), frozenset(views), frozenset(owned),
                     frozenset(member_of), {name: src for name, src in helpers}, bool(uses))


def tenant_tables(catalog: Catalog, config: RlsConfig) -> list[Table]:
    """Tables that hold a tenant column: every one of them is subject to G5 (unless the contract drops it)."""
    return [t for t in catalog.tables.values()
            if t.column(config.tenant_column) is not None and t.name not in config.tenant_dropped]


def applies_to_app(policy: Policy, config: RlsConfig, facts: RoleFacts | None) -> bool:
    return g5.applies_to(policy, facts.member_of if facts and facts.role_exists else (config.app_role,))


def lint(catalog: Catalog, config: RlsConfig, facts: RoleFacts | None = None,
         groups: Mapping[str, str] | None = None) -> list[Finding]:
    """Every RLS rule over the whole catalog. ``facts=None`` (no privilege query) assumes the worst."""
    groups = groups or {}
    findings = list(_role_findings(catalog, config, facts))
    for table in tenant_tables(catalog, config):
        findings += _table_findings(table, catalog, config, facts, groups.get(table.name, "other"))
    findings += _view_findings(catalog, config, facts, groups)
    findings += _function_findings(catalog, config, facts)
    return findings


def _role_findings(catalog: Catalog, config: RlsConfig, facts: RoleFacts | None) -> Iterator[Finding]:
    role = catalog.roles.get(config.app_role)
    if role is None:
        yield Finding("RLS013", ROLE_GROUP, "-", f"application role {config.app_role} does not exist: "
                      "nothing shows the application runs as a role subject to RLS", expected="role exists")
        return
    if facts is not None and not facts.uses_schemas:
        yield Finding("RLS013", ROLE_GROUP, "-", f"application role {config.app_role} has no USAGE on "
                      f"{', '.join(config.schemas)}: it is not the role the application uses here", expected="USAGE granted")
    for attribute, value in (("SUPERUSER", role.superuser), ("BYPASSRLS", role.bypassrls)):
        if value:
            yield Finding("RLS012", ROLE_GROUP, "-", f"application role {role.name} has {attribute}: every policy is ignored",
                          expected=f"NO{attribute}", actual=attribute)


def _table_findings(table: Table, catalog: Catalog, config: RlsConfig, facts: RoleFacts | None,
                    group: str) -> Iterator[Finding]:
    name, column = table.name, config.tenant_column
    tenant_col = table.column(column)
    if tenant_col is not None and tenant_col.nullable and name not in config.global_tables:
        yield Finding("RLS009", group, name, f"{column} is nullable: a row without a tenant is invisible to every tenant "
                      "(or visible to all under a lax policy)", column=column, expected="NOT NULL", actual="nullable")
    owned = name in facts.owned_tables if facts and facts.role_exists else table.owner == config.app_role
    if owned:
        yield Finding("RLS012", group, name, f"application role {config.app_role} owns {name} (owner {table.owner}): "
                      "an owner bypasses RLS unless it is forced, and can disable it", expected="not owner", actual=table.owner)
    if not table.rls_enabled:
        yield Finding("RLS001", group, name, "tenant table without row-level security: every tenant sees every row",
                      expected="ENABLE ROW LEVEL SECURITY", actual="disabled")
        return
    if not table.rls_forced:
        yield Finding("RLS002", group, name, "row-level security enabled but not forced: the table owner bypasses it",
                      expected="FORCE ROW LEVEL SECURITY", actual="not forced")
    if not table.policies:
        yield Finding("RLS003", group, name, "row-level security enabled with no policy: the application sees no row "
                      "and cannot write", expected="policies for SELECT, INSERT, UPDATE, DELETE", actual="none")
        return
    app_policies = [p for p in table.policies if p.permissive and applies_to_app(p, config, facts)]
    missing = g5.uncovered(app_policies)
    if missing:
        yield Finding("RLS004", group, name, f"no permissive policy for the application grants {', '.join(missing)}",
                      expected=", ".join(g5.COMMANDS), actual=", ".join(c for c in g5.COMMANDS if c not in missing) or "none")
    helpers = tuple(facts.context_functions or {}) if facts else ()
    for policy in table.policies:
        yield from _policy_findings(policy, table, config, helpers, group)
    for command in g5.COMMANDS:
        overlapping = sorted(p.name for p in app_policies if policy_applies(p, command))
        if len(overlapping) > 1:
            yield Finding("RLS007", group, name, f"permissive policies {', '.join(overlapping)} overlap for {command}: "
                          "they are OR-ed, so the widest one decides", constraint=overlapping[0], actual=command)


def policy_applies(policy: Policy, command: str) -> bool:
    return policy.command in (command, "ALL")


def _policy_findings(policy: Policy, table: Table, config: RlsConfig, helpers: tuple[str, ...],
                     group: str) -> Iterator[Finding]:
    name = table.name
    expressions = [e for e in (policy.using, policy.with_check) if e is not None]
    for expr in expressions:
        if _NO_MISSING_OK.search(expr):
            yield Finding("RLS008", group, name, f"policy {policy.name} calls current_setting() without missing_ok: "
                          "no tenant context raises an error instead of returning no row", constraint=policy.name,
                          actual=expr)
            break
    context = config.context
    for flaw in g5.flaws(policy, config.tenant_column, context.setting_names, (*context.functions, *helpers)):
        if flaw is g5.Flaw.NO_WITH_CHECK:
            effect = ("it admits no row, so the application cannot insert" if policy.command == "INSERT" else
                      "PostgreSQL checks new rows with its USING; G5 wants an explicit WITH CHECK")
            yield Finding("RLS005", group, name, f"{policy.command} policy {policy.name} has no WITH CHECK: {effect}",
                          constraint=policy.name, expected=flaw.wanted(config.tenant_column))
        elif flaw is g5.Flaw.ALWAYS_TRUE:
            yield Finding("RLS006", group, name, f"permissive policy {policy.name} is always true: every tenant's rows pass",
                          constraint=policy.name, expected=flaw.wanted(config.tenant_column), actual=" / ".join(expressions))
        else:
            yield Finding("RLS006", group, name, f"policy {policy.name} does not compare {config.tenant_column} with the "
                          f"tenant context ({', '.join(context.setting_names + context.functions)})",
                          constraint=policy.name, expected=flaw.wanted(config.tenant_column), actual=" / ".join(expressions))


def _view_findings(catalog: Catalog, config: RlsConfig, facts: RoleFacts | None,
                   groups: Mapping[str, str]) -> Iterator[Finding]:
    tenant = {t.name for t in tenant_tables(catalog, config)}
    for view in catalog.views:
        if view.security_invoker or (facts and facts.role_exists and view.name not in facts.selectable_views):
            continue
        sources = sorted(tenant & view_sources(view))
        if sources:
            yield Finding("RLS010", groups.get(sources[0], "other"), view.name,
                          f"view over tenant table(s) {', '.join(sources)} without security_invoker runs with its owner's "
                          "rights: RLS of the underlying tables does not apply to the application",
                          expected="security_invoker = true (PostgreSQL 15+) or no grant to the application role")


def view_sources(view: View) -> set[str]:
    """Names of the tables a view reads (after FROM / JOIN in its definition)."""
    return set(_FROM_TABLE.findall(view.definition))


def _function_findings(catalog: Catalog, config: RlsConfig, facts: RoleFacts | None) -> Iterator[Finding]:
    helper_names = set(config.context.functions)
    for fn in catalog.functions:
        if not fn.security_definer or fn.name in helper_names:
            continue
        if facts and facts.role_exists and (fn.schema, fn.name, fn.signature) not in facts.executable_definers:
            continue
        yield Finding("RLS011", ROLE_GROUP, f"{fn.name}({fn.signature})",
                      f"SECURITY DEFINER function executable by {config.app_role} runs as {fn.owner}, outside the "
                      "caller's RLS", expected="SECURITY INVOKER, or EXECUTE revoked from the application role")
    for name, source in (facts.context_functions or {}).items() if facts else ():
        if _NO_MISSING_OK.search(source):
            yield Finding("RLS008", ROLE_GROUP, f"{name}()", f"tenant-context function {name}() calls current_setting() "
                          "without missing_ok: no tenant context raises an error", actual=source.strip()[:200])
