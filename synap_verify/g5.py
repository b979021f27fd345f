"""G5's judgement of row-level-security policies, written once.

``synap-verify contract`` (G5) and ``synap-verify rls`` (RLS004, RLS005, RLS006) both ask this module,
so the two commands cannot judge one policy differently. What a policy grants follows PostgreSQL: a
command's existing rows pass the USING expression (SELECT, UPDATE, DELETE), new rows (INSERT, UPDATE)
pass the WITH CHECK expression or, for a policy without one, the USING expression ("if no WITH CHECK
expression is defined, then the USING expression will be used both to determine which rows are visible
and which new rows will be allowed to be added"); a policy without the expression a command needs
grants nothing (an INSERT policy without WITH CHECK admits no row). The specification's "an ALL policy
counts only with a WITH CHECK" is kept as a flaw of its own, :attr:`Flaw.NO_WITH_CHECK`: the finding
then says what the database does and what the rule asks, instead of calling covered commands uncovered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum

from synap_verify.catalog import Policy

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
# the policies that need a WITH CHECK: ALL because the specification says so, INSERT because without one it
# admits no row. An UPDATE policy without one checks new rows with its USING, which G5 leaves as it is.
NEEDS_WITH_CHECK = ("ALL", "INSERT")


class Flaw(Enum):
    """What is wrong with one policy, whatever rule id a command reports it under."""

    NO_WITH_CHECK = "no WITH CHECK"
    ALWAYS_TRUE = "always true"
    NO_TENANT = "no tenant comparison"

    def wanted(self, column: str) -> str:
        """What a finding about this flaw names as expected, the same in every command."""
        if self is Flaw.NO_WITH_CHECK:
            return f"WITH CHECK ({column} = tenant context)"
        return f"{column} = tenant context" + (", not always true" if self is Flaw.ALWAYS_TRUE else "")


def grants(policy: Policy, command: str) -> bool:
    """Whether ``policy`` lets ``command`` touch any row, by PostgreSQL's rules (permissiveness aside)."""
    if policy.command not in (command, "ALL"):
        return False
    if command == "INSERT":
        return (policy.with_check or policy.using) is not None
    return policy.using is not None


def applies_to(policy: Policy, roles: Iterable[str]) -> bool:
    """Whether the policy binds a session running as any of ``roles`` (``TO public`` binds every role)."""
    return "public" in policy.roles or not set(roles).isdisjoint(policy.roles)


def uncovered(policies: Iterable[Policy]) -> list[str]:
    """The commands no permissive policy among ``policies`` grants: the application sees or admits nothing."""
    permissive = [p for p in policies if p.permissive]
    return [c for c in COMMANDS if not any(grants(p, c) for p in permissive)]


def reads_context(expression: str, settings: Iterable[str], functions: Iterable[str]) -> bool:
    """Whether an expression reads the tenant context: a setting named as a literal, or a helper call."""
    text = expression.lower()
    if any(f"'{name.lower()}'" in text for name in settings):
        return True
    return any(re.search(rf"\b{re.escape(fn.lower())}\s*\(", text) for fn in functions)


def compares_tenant(expression: str, column: str, settings: Iterable[str], functions: Iterable[str]) -> bool:
    return re.search(rf"\b{re.escape(column)}\b", expression) is not None and reads_context(expression, settings,
                                                                                              functions)


def always_true(expression: str) -> bool:
    """``true``, ``NOT false`` or ``x = x`` (``1 = 1``, ``'a' = 'a'``, ``tenant_id = tenant_id``), in any parentheses."""
    text = _unwrap(" ".join(expression.lower().split()))
    if text in ("true", "not false"):
        return True
    sides = text.split(" = ")
    return len(sides) == 2 and _unwrap(sides[0]) == _unwrap(sides[1])


def _unwrap(text: str) -> str:
    """``text`` without the parentheses that enclose all of it: ``((1 = 1))`` -> ``1 = 1``, not ``(a) or (b)``."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def flaws(policy: Policy, column: str, settings: Iterable[str], functions: Iterable[str]) -> list[Flaw]:
    """What G5 finds wrong with one policy.

    An ALL or INSERT policy without WITH CHECK, whatever its kind; a permissive policy (OR-ed with the others, so
    it can open the table) that is always true or does not compare ``column`` with the tenant context in
    every expression it has. A restrictive policy can only narrow what the permissive ones grant: an
    extra condition (``deleted_at IS NULL``) is not a flaw.
    """
    settings, functions = tuple(settings), tuple(functions)
    found = [Flaw.NO_WITH_CHECK] if policy.command in NEEDS_WITH_CHECK and policy.with_check is None else []
    if not policy.permissive:
        return found
    expressions = [e for e in (policy.using, policy.with_check) if e is not None]
    if any(always_true(e) for e in expressions):
        found.append(Flaw.ALWAYS_TRUE)
    elif not all(compares_tenant(e, column, settings, functions) for e in expressions):
        found.append(Flaw.NO_TENANT)
    return found
