"""An immutable snapshot of a database's schema, read from ``pg_catalog`` in a handful of queries.

Every check that looks at structure reads a :class:`Catalog`; none queries ``information_schema`` on
its own. The queries are set-based (one per object kind, never one per table) and use only catalog
columns that exist on PostgreSQL 13 through 18.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from synap_verify.groups import SCHEMA

FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def ident(name: str) -> str:
    """A name quoted for SQL text as PostgreSQL would (``"Mixed"``, ``users``)."""
    return sql.Identifier(name).as_string(None)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): 'jsonb', 'timestamp without time zone', 'text[]', ...
    nullable: bool
    default: str | None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    target_schema: str
    target_table: str
    target_columns: tuple[str, ...]
    on_delete: str
    on_update: str


@dataclass(frozen=True)
class Index:
    name: str
    method: str  # btree, gin, ...
    columns: tuple[str, ...]  # expressions appear as their text
    unique: bool
    primary: bool
    predicate: str | None
    valid: bool
    descending: tuple[bool, ...] = ()  # per key column (T-INDEX compares the direction)
    include: tuple[str, ...] = ()  # INCLUDE columns: stored, not searched (index-only scans)


@dataclass(frozen=True)
class Policy:
    name: str
    command: str  # SELECT / INSERT / UPDATE / DELETE / ALL
    roles: tuple[str, ...]
    permissive: bool
    using: str | None
    with_check: str | None


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    kind: str  # 'table' or 'partitioned'
    owner: str
    rls_enabled: bool
    rls_forced: bool
    partition_of: str | None
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    uniques: tuple[tuple[str, ...], ...]
    checks: tuple[tuple[str, str], ...]  # (name, definition)
    foreign_keys: tuple[ForeignKey, ...]
    indexes: tuple[Index, ...]
    policies: tuple[Policy, ...]
    triggers: tuple[str, ...]
    partition_bound: str | None = None  # a partition's own constraint (ancestors' included), as SQL

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class View:
    schema: str
    name: str
    owner: str
    security_invoker: bool
    definition: str
    materialized: bool = False  # holds its rows: no security_invoker can scope them


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    signature: str
    security_definer: bool
    owner: str
    trigger: bool = False  # returns trigger: only a trigger can call it


@dataclass(frozen=True)
class Role:
    name: str
    superuser: bool
    bypassrls: bool
    can_login: bool


@dataclass(frozen=True)
class Catalog:
    """The schema of one database, restricted to the schemas asked for."""

    schemas: tuple[str, ...]
    server_version: int
    tables: dict[str, Table] = field(default_factory=dict)  # keyed by table name (first schema wins)
    views: tuple[View, ...] = ()
    functions: tuple[Function, ...] = ()
    roles: dict[str, Role] = field(default_factory=dict)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def columns_of_type(self, type_name: str) -> list[tuple[Table, Column]]:
        return [(t, c) for t in self.tables.values() for c in t.columns if c.type == type_name]


_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relrowsecurity,
       c.relforcerowsecurity, (SELECT pc.relname FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                                WHERE i.inhrelid = c.oid AND c.relispartition LIMIT 1),
       CASE WHEN c.relispartition THEN pg_get_partition_constraintdef(c.oid) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p') AND NOT EXISTS (
      SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY array_position(%(schemas)s, n.nspname::text), c.relname
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
_CONSTRAINTS = """
SELECT con.conrelid, con.conname, con.contype,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       fn.nspname, fc.relname,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o),
       con.confdeltype, con.confupdtype, pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class fc ON fc.oid = con.confrelid LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND con.contype IN ('p', 'u', 'f', 'c') AND con.conparentid = 0
ORDER BY con.conrelid, con.conname
"""
_INDEXES = """
SELECT i.indrelid, ic.relname, am.amname,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k),
       i.indisunique, i.indisprimary, pg_get_expr(i.indpred, i.indrelid, true), i.indisvalid,
       ARRAY(SELECT i.indoption[k - 1] & 1 = 1 FROM generate_series(1, i.indnkeyatts) k),
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(i.indnkeyatts + 1, i.indnatts) k)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s)
ORDER BY i.indrelid, ic.relname
"""
_POLICIES = """
SELECT p.polrelid, p.polname, p.polcmd,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) r),
       p.polpermissive, pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s)
ORDER BY p.polrelid, p.polname
"""
_TRIGGERS = """
SELECT t.tgrelid, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND NOT t.tgisinternal ORDER BY t.tgrelid, t.tgname
"""
_VIEWS = """
SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner),
       coalesce(c.reloptions @> ARRAY['security_invoker=true'] OR c.reloptions @> ARRAY['security_invoker=on']
                OR c.reloptions @> ARRAY['security_invoker=1'], false),
       pg_get_viewdef(c.oid, true), c.relkind = 'm'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('v', 'm') ORDER BY n.nspname, c.relname
"""
_FUNCTIONS = """
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prosecdef, pg_get_userbyid(p.proowner),
       p.prorettype = 'trigger'::regtype
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = ANY(%(schemas)s) ORDER BY n.nspname, p.proname
"""
_USER_SCHEMAS = """
SELECT n.nspname FROM pg_namespace n
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND EXISTS (
      SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p') AND NOT EXISTS (
          SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'))
ORDER BY n.nspname = 'public', n.nspname
"""
_ROLES = "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname !~ '^pg_'"


def read_catalog(conn: psycopg.Connection, schemas: Iterable[str] = (SCHEMA,)) -> Catalog:
    """Read the whole schema in nine set-based queries (the cost does not grow with the table count)."""
    args = {"schemas": list(schemas)}
    cur = conn.cursor()
    version = int(cur.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
    rows_by_rel: dict[str, dict[int, list[tuple]]] = {}
    for kind, query in (("columns", _COLUMNS), ("constraints", _CONSTRAINTS), ("indexes", _INDEXES),
                        ("policies", _POLICIES), ("triggers", _TRIGGERS)):
        grouped: dict[int, list[tuple]] = {}
        for row in cur.execute(query, args):
            grouped.setdefault(row[0], []).append(row[1:])
        rows_by_rel[kind] = grouped
    tables: dict[str, Table] = {}
    for oid, schema, name, relkind, owner, rls, forced, parent, bound in cur.execute(_TABLES, args).fetchall():
        cons = rows_by_rel["constraints"].get(oid, [])
        table = Table(
            schema=schema, name=name, kind="partitioned" if relkind == "p" else "table", owner=owner,
            rls_enabled=rls, rls_forced=forced, partition_of=parent,
            columns=tuple(Column(*r) for r in rows_by_rel["columns"].get(oid, [])),
            primary_key=next((tuple(r[2]) for r in cons if r[1] == "p"), ()),
            uniques=tuple(tuple(r[2]) for r in cons if r[1] == "u"),
            checks=tuple((r[0], r[8]) for r in cons if r[1] == "c"),
            foreign_keys=tuple(
                ForeignKey(r[0], tuple(r[2]), r[3], r[4], tuple(r[5]), FK_ACTIONS[r[6]], FK_ACTIONS[r[7]])
                for r in cons if r[1] == "f"
            ),
            indexes=tuple(Index(r[0], r[1], tuple(r[2]), r[3], r[4], r[5], r[6], tuple(r[7]), tuple(r[8]))
                          for r in rows_by_rel["indexes"].get(oid, [])),
            policies=tuple(Policy(r[0], POLICY_COMMANDS[r[1]], tuple(r[2]), r[3], r[4], r[5])
                           for r in rows_by_rel["policies"].get(oid, [])),
            triggers=tuple(r[0] for r in rows_by_rel["triggers"].get(oid, [])),
            partition_bound=bound,
        )
        tables.setdefault(name, table)
    views = tuple(View(*r) for r in cur.execute(_VIEWS, args))
    functions = tuple(Function(*r) for r in cur.execute(_FUNCTIONS, args))
    roles = {r[0]: Role(*r) for r in cur.execute(_ROLES)}
    return Catalog(tuple(schemas), version, tables, views, functions, roles)


def user_schemas(conn: psycopg.Connection) -> tuple[str, ...]:
    """The schemas that hold a table a user made (not an extension's): what a foreign baseline defines."""
    return tuple(r[0] for r in conn.execute(_USER_SCHEMAS))


def diff_catalogs(expected: Catalog, actual: Catalog, ignore_tables: Iterable[str] = ("alembic_version",)) -> list[str]:
    """Human-readable differences in tables, columns (type, nullability), FK targets/actions and indexes.

    Used to prove a downgrade brings back the legacy schema; constraint and index *names* are ignored
    (a restored constraint may be named differently and still mean the same).
    """
    ignored = set(ignore_tables)
    out: list[str] = []
    exp = {n: t for n, t in expected.tables.items() if n not in ignored}
    act = {n: t for n, t in actual.tables.items() if n not in ignored}
    out += [f"table {n} is missing" for n in sorted(exp.keys() - act.keys())]
    out += [f"table {n} is extra" for n in sorted(act.keys() - exp.keys())]
    for name in sorted(exp.keys() & act.keys()):
        e, a = exp[name], act[name]
        ecols, acols = {c.name: c for c in e.columns}, {c.name: c for c in a.columns}
        out += [f"{name}.{c} is missing" for c in sorted(ecols.keys() - acols.keys())]
        out += [f"{name}.{c} is extra" for c in sorted(acols.keys() - ecols.keys())]
        for col in sorted(ecols.keys() & acols.keys()):
            ec, ac = ecols[col], acols[col]
            if ec.type != ac.type:
                out.append(f"{name}.{col} is {ac.type}, expected {ec.type}")
            if ec.nullable != ac.nullable:
                out.append(f"{name}.{col} is {'' if ac.nullable else 'NOT '}NULL, expected {'' if ec.nullable else 'NOT '}NULL")
        efks = {_fk_shape(fk) for fk in e.foreign_keys}
        afks = {_fk_shape(fk) for fk in a.foreign_keys}
        out += [f"{name}: FK {s} is missing" for s in sorted(efks - afks)]
        out += [f"{name}: FK {s} is extra" for s in sorted(afks - efks)]
        eidx = {_index_shape(ix) for ix in e.indexes}
        aidx = {_index_shape(ix) for ix in a.indexes}
        out += [f"{name}: index {s} is missing" for s in sorted(eidx - aidx)]
        out += [f"{name}: index {s} is extra" for s in sorted(aidx - eidx)]
        if (e.rls_enabled, e.rls_forced) != (a.rls_enabled, a.rls_forced):
            out.append(f"{name}: RLS enabled/forced is {a.rls_enabled}/{a.rls_forced}, expected {e.rls_enabled}/{e.rls_forced}")
    return out


def _fk_shape(fk: ForeignKey) -> str:
    return f"({', '.join(fk.columns)}) -> {fk.target_table}({', '.join(fk.target_columns)}) ON DELETE {fk.on_delete}"


def _index_shape(ix: Index) -> str:
    where = f" WHERE {ix.predicate}" if ix.predicate else ""
    return f"{'unique ' if ix.unique else ''}{ix.method}({', '.join(ix.columns)}){where}"
