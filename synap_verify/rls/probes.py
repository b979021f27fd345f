"""Live cross-tenant leak probes: act as the application role and try to reach another tenant's rows.

Every probe runs as a non-owner role (the configured application role, or a throw-away ``synap_probe``
role on a disposable server) with the tenant context set the way the application sets it. Anything that
writes (probe rows, UPDATE/DELETE/INSERT attempts) happens inside a transaction that is rolled back, and
only on a disposable server; elsewhere only the read probes run. True counts are measured as the
connecting superuser (or BYPASSRLS role), which RLS does not filter.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from synap_verify.catalog import Catalog, ForeignKey, Table
from synap_verify.errors import SynapError
from synap_verify.findings import Finding
from synap_verify.rls.context import RlsConfig
from synap_verify.rls.lints import ROLE_GROUP, tenant_tables, view_sources

PASS, LEAK, NOT_COVERED, ERROR, NA = "pass", "LEAK", "not covered", "error", "n/a"
_SEVERITY = {NA: 0, PASS: 1, NOT_COVERED: 2, ERROR: 3, LEAK: 4}
TABLE_PROBES = ("SELECT", "UPDATE", "DELETE", "INSERT", "MOVE", "NOCTX", "LOCAL", "DRIFT")
BAD_CONTEXTS = ("", "not-a-uuid")
_SAVEPOINT = sql.SQL("SAVEPOINT synap_probe")
_ROLLBACK_SAVEPOINT = sql.SQL("ROLLBACK TO SAVEPOINT synap_probe")


@dataclass
class ProbeReport:
    """Findings plus the matrix (object × probe → pass / LEAK / not covered / error / n/a)."""

    role: str
    writes: bool
    findings: list[Finding] = field(default_factory=list)
    matrix: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    scope: str = ""  # set when only some tenant tables were probed: "6 of 101 tenant tables"

    def status(self, table: str, probe: str) -> str:
        return self.matrix.get(table, {}).get(probe, NA)

    def findings_for(self, table: str, probe: str) -> list[Finding]:
        return [f for f in self.findings if f.table == table and f.rule == f"PROBE-{probe}"]


@dataclass
class _Target:
    """One tenant table and the two tenants probed on it: ``a`` acts, ``b`` is the victim."""

    table: Table
    ident: sql.Identifier
    counts: dict[str, int]
    shared: int  # rows with a NULL tenant: visible to every tenant on a global table (rbac_roles), else to none
    is_global: bool
    unset_seen: int = 0  # rows visible with no context at all (NOCTX): LOCAL counts only what exceeds it
    a: str = ""
    b: str = ""

    def pick(self) -> bool:
        ranked = sorted(self.counts, key=lambda t: (-self.counts[t], t))
        if len(ranked) < 2:
            return False
        self.a, self.b = ranked[0], ranked[1]
        return True


def run_probes(dsn: str, catalog: Catalog, config: RlsConfig, *, writes: bool,
               groups: Mapping[str, str] | None = None, only: Collection[str] | None = None) -> ProbeReport:
    """Probe every tenant table (or those named in ``only``), reachable view and SECURITY DEFINER function;
    ``writes`` only if disposable."""
    began = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        prober = _Prober(conn, catalog, config, writes, groups or {}, only)
        try:
            prober.run()
        finally:
            prober.cleanup()
    prober.report.seconds = time.perf_counter() - began
    return prober.report


class _Prober:
    def __init__(self, conn: psycopg.Connection, catalog: Catalog, config: RlsConfig, writes: bool,
                 groups: Mapping[str, str], only: Collection[str] | None) -> None:
        self.conn, self.catalog, self.config, self.groups = conn, catalog, config, groups
        self.created_role = False
        self.report = ProbeReport(role=config.app_role, writes=writes)
        self.column = sql.Identifier(config.tenant_column)
        self.every_table = tenant_tables(catalog, config)  # views are judged against all of them
        self.tables = self.every_table if only is None else [t for t in self.every_table if t.name in only]
        if len(self.tables) < len(self.every_table):
            self.report.scope = f"{len(self.tables)} of {len(self.every_table)} tenant tables"

    # -- plumbing -------------------------------------------------------------------------------
    def run(self) -> None:
        self._prepare_role()
        counts = self._true_counts()
        targets = [_Target(t, sql.Identifier(t.schema, t.name),
                           {k: v for k, v in counts.get(t.name, {}).items() if k is not None},
                           counts.get(t.name, {}).get(None, 0), t.name in self.config.global_tables)
                   for t in self.tables]
        for target in targets:
            self.report.matrix[target.table.name] = {}
        self._probe_no_context(targets)
        for target in targets:
            self._probe_local(target)
        for target in targets:
            self._probe_table(target)
        self._probe_views_and_functions(counts)

    def _as_role(self, tenant: str | None, query: sql.Composed, params: Mapping[str, Any] | None = None,
                 ) -> tuple[list[tuple[Any, ...]] | None, psycopg.Error | None]:
        """Run ``query`` as the probe role with ``tenant`` as context (None: leave it unset), then undo it all."""
        cur = self.conn.cursor()
        # savepoint, role and context in one round trip (a probe run makes thousands of these); the savepoint
        # comes first, so whatever of the rest fails, the rollback to it below undoes it
        setup = [_SAVEPOINT, sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.report.role))]
        if tenant is not None:
            setup.append(self.config.context.set_local(tenant))
        try:
            cur.execute(sql.SQL("; ").join(setup))
            return cur.execute(query, params).fetchall(), None
        except psycopg.Error as exc:
            return None, exc
        finally:
            cur.execute(_ROLLBACK_SAVEPOINT)

    def _record(self, name: str, probe: str, status: str, message: str = "", group: str | None = None) -> None:
        row = self.report.matrix.setdefault(name, {})
        if _SEVERITY[status] >= _SEVERITY[row.get(probe, NA)]:
            row[probe] = status
        if status in (LEAK, NOT_COVERED, ERROR):
            self.report.findings.append(Finding(f"PROBE-{probe}", group or self.groups.get(name, "other"), name,
                                                f"{status}: {message}", actual=status))

    def _hidden_count(self, target: _Target) -> sql.Composed:
        """Counts the rows no one without a tenant context may see (all of them, but a global table's shared rows)."""
        where = sql.SQL("{} IS NOT NULL").format(self.column) if target.is_global else sql.SQL("true")
        return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(target.ident, where)

    @staticmethod
    def _count(rows: list[tuple[Any, ...]] | None) -> int:
        return int(rows[0][0]) if rows else 0

    # -- setup ----------------------------------------------------------------------------------
    def _prepare_role(self) -> None:
        """Probe as the application role; where it is missing (or has no access here), as a probe role."""
        usable = self.conn.execute(
            "SELECT bool_and(has_schema_privilege(r.oid, n.oid, 'USAGE')) FROM pg_roles r, pg_namespace n "
            "WHERE r.rolname = %s AND n.nspname = ANY(%s)", (self.config.app_role, list(self.config.schemas))).fetchone()
        if not (usable and usable[0]):
            if not self.report.writes:
                raise SynapError(f"application role {self.config.app_role} does not exist or cannot use "
                                 f"{', '.join(self.config.schemas)}, and the database is not disposable: "
                                 "pass --app-role, or --disposable to let the probes create a probe role")
            self.report.role = self.config.probe_role
            self._create_probe_role()
        role = self.report.role
        try:
            with self.conn.transaction():
                self.conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        except psycopg.Error as exc:
            raise SynapError(f"cannot SET ROLE {role} ({exc.diag.message_primary}): connect as a superuser "
                             "or a member of the application role") from None

    def _create_probe_role(self) -> None:
        """A NOLOGIN, non-BYPASSRLS role with the application's grants, for databases without an app role."""
        role = sql.Identifier(self.config.probe_role)
        self.conn.execute(sql.SQL(
            "DO $$BEGIN CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$").format(role))
        self.created_role = True
        for schema in self.config.schemas:
            s = sql.Identifier(schema)
            for grant in ("GRANT USAGE ON SCHEMA {s} TO {r}",
                          "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
                          "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
                          "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {r}"):
                self.conn.execute(sql.SQL(grant).format(s=s, r=role))
        self.report.notes.append(f"probed as {self.config.probe_role}: application role {self.config.app_role} "
                                 "does not exist or has no access")

    def cleanup(self) -> None:
        """Drop the probe role's grants here, and the role itself when no other database still uses it."""
        if not self.created_role or self.conn.closed:
            return
        role = sql.Identifier(self.config.probe_role)
        self.conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
        # another database (a parallel worker's clone) may still grant it something: that run drops it
        with contextlib.suppress(psycopg.Error):
            self.conn.execute(sql.SQL("DROP ROLE {}").format(role))

    def _true_counts(self) -> dict[str, dict[str | None, int]]:
        """Rows per tenant of every tenant table, in one query, as a role that RLS does not filter."""
        if not self.tables:
            return {}
        parts = [sql.SQL("SELECT {n}, {c}::text, count(*) FROM {t} GROUP BY 2").format(
            n=sql.Literal(t.name), c=self.column, t=sql.Identifier(t.schema, t.name)) for t in self.tables]
        counts: dict[str, dict[str | None, int]] = {}
        try:
            with self.conn.transaction(force_rollback=True):
                self.conn.execute("SET LOCAL row_security = off")
                for name, tenant, n in self.conn.execute(sql.SQL(" UNION ALL ").join(parts)):
                    counts.setdefault(name, {})[tenant] = n
        except psycopg.Error as exc:
            raise SynapError(f"cannot measure true row counts ({exc.diag.message_primary}): the probes need a "
                             "connection as a superuser or a BYPASSRLS role") from None
        return counts

    # -- probes ---------------------------------------------------------------------------------
    def _probe_no_context(self, targets: Sequence[_Target]) -> None:
        """No context at all (nothing set yet on this connection): an error or no row, never rows."""
        with self.conn.transaction(force_rollback=True):
            for target in targets:
                if not target.counts:
                    continue
                rows, _ = self._as_role(None, self._hidden_count(target))
                seen = target.unset_seen = self._count(rows)
                self._record(target.table.name, "NOCTX", LEAK if seen else PASS,
                             f"without a tenant context the role sees {seen} rows")

    def _probe_local(self, target: _Target) -> None:
        """A context set for one transaction must be gone in the next one on the same connection.

        The first transaction is READ ONLY and committed: a rollback would undo even a session-wide
        ``set_config(..., false)``, which is exactly the leak this probe looks for.
        """
        if not target.counts:
            return
        tenant = max(target.counts, key=lambda t: target.counts[t])
        try:
            with self.conn.transaction():
                self.conn.execute("SET TRANSACTION READ ONLY")
                self.conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.report.role)))
                self.conn.execute(self.config.context.set_local(tenant))
        except psycopg.Error as exc:
            self._record(target.table.name, "LOCAL", ERROR, f"cannot set the tenant context: {_why(exc)}")
            return
        with self.conn.transaction(force_rollback=True):
            rows, _ = self._as_role(None, self._hidden_count(target))
        seen = self._count(rows)
        self._record(target.table.name, "LOCAL", LEAK if seen > target.unset_seen else PASS,
                     f"the tenant context of the previous transaction still shows {seen} rows "
                     f"({target.unset_seen} with no context ever set)")

    def _probe_table(self, target: _Target) -> None:
        name = target.table.name
        with self.conn.transaction(force_rollback=True):
            if not target.pick():
                if not self.report.writes:
                    self.report.notes.append(f"{name}: rows of fewer than 2 tenants and the database is not disposable")
                    return
                try:
                    self._seed(target)
                except psycopg.Error as exc:
                    self.report.notes.append(f"{name}: could not insert probe rows ({exc.diag.message_primary})")
                    return
            self._probe_select(target)
            self._probe_bad_contexts(target)
            if self.report.writes:
                self._probe_writes(target)
            self._probe_drift(target)

    def _probe_select(self, target: _Target) -> None:
        name = target.table.name
        own = target.counts[target.a] + (target.shared if target.is_global else 0)
        foreign = sql.SQL("{c} IS NOT NULL AND {c}::text <> %(a)s" if target.is_global else "{c}::text IS DISTINCT FROM %(a)s")
        rows, err = self._as_role(target.a, sql.SQL("SELECT count(*), count(*) FILTER (WHERE {f}) FROM {t}").format(
            f=foreign.format(c=self.column), t=target.ident), {"a": target.a})
        if err is not None or rows is None:
            self._record(name, "SELECT", NOT_COVERED, f"tenant {target.a} cannot read its rows: {_why(err)}")
            return
        seen, others = rows[0]
        if others:
            self._record(name, "SELECT", LEAK, f"tenant {target.a} sees {others} rows of other tenants "
                                               f"({seen} visible, {own} its own)")
        elif seen != own:
            self._record(name, "SELECT", NOT_COVERED, f"tenant {target.a} sees {seen} of its {own} rows")
        else:
            self._record(name, "SELECT", PASS)

    def _probe_bad_contexts(self, target: _Target) -> None:
        for bad in BAD_CONTEXTS:
            rows, _ = self._as_role(bad, self._hidden_count(target))
            seen = self._count(rows)
            self._record(target.table.name, "NOCTX", LEAK if seen else PASS,
                         f"with tenant context {bad!r} the role sees {seen} rows")

    def _probe_writes(self, target: _Target) -> None:
        """UPDATE/DELETE aimed at b's rows, INSERT of b's row, moving a's row to b; and a's own writes."""
        name, t, c = target.table.name, target.ident, self.column
        cur = self.conn.cursor()
        # a's own sample row is one attached to parents of its own tenant: a drifted legacy row would be refused
        # by a G7 guard and say nothing about what RLS lets a do
        a_rows = [r[0] for r in cur.execute(sql.SQL("SELECT ctid::text FROM {} x WHERE x.{}::text = %s AND {} LIMIT 1")
                                            .format(t, c, self._undrifted(target.table)), (target.a,))]
        b_rows = [r[0] for r in cur.execute(sql.SQL("SELECT ctid::text FROM {} WHERE {}::text = %s LIMIT 5").format(t, c),
                                            (target.b,))]
        cur.execute(sql.SQL("CREATE TEMP TABLE synap_probe_rows ON COMMIT DROP AS SELECT * FROM {} WHERE ctid = ANY(%s::tid[])")
                    .format(t), (a_rows[:1] + b_rows[:1],))
        cur.execute(sql.SQL("GRANT SELECT ON synap_probe_rows TO {}").format(sql.Identifier(self.report.role)))
        by_ctid = sql.SQL("ctid = ANY(%(rows)s::tid[])")
        statements = {
            "UPDATE": sql.SQL("WITH w AS (UPDATE {t} SET {c} = {c} WHERE {w} RETURNING 1) SELECT count(*) FROM w"),
            "DELETE": sql.SQL("WITH w AS (DELETE FROM {t} WHERE {w} RETURNING 1) SELECT count(*) FROM w"),
            "INSERT": sql.SQL("WITH w AS (INSERT INTO {t} SELECT * FROM synap_probe_rows WHERE {c}::text = %(tenant)s "
                              "RETURNING 1) SELECT count(*) FROM w"),
        }
        for probe, statement in statements.items():
            query = statement.format(t=t, c=c, w=by_ctid)
            foreign, ferr = self._as_role(target.a, query, {"rows": b_rows, "tenant": target.b})
            own, oerr = self._as_role(target.a, query, {"rows": a_rows, "tenant": target.a})
            reached = self._count(foreign) or (ferr is not None and _passed_rls(ferr))
            if reached:
                what = f"{self._count(foreign)} rows" if ferr is None else f"the rows (stopped only by: {_why(ferr)})"
                self._record(name, probe, LEAK, f"tenant {target.a}'s {probe} reached {what} of tenant {target.b}")
            elif not (self._count(own) or (oerr is not None and _passed_rls(oerr))):
                self._record(name, probe, NOT_COVERED, f"tenant {target.a} cannot {probe} its own row: {_why(oerr)}")
            else:
                self._record(name, probe, PASS)
        moved, merr = self._as_role(target.a, sql.SQL(
            "WITH w AS (UPDATE {t} SET {c} = %(b)s WHERE ctid = ANY(%(rows)s::tid[]) RETURNING 1) SELECT count(*) FROM w")
            .format(t=t, c=c), {"b": _typed(target.b), "rows": a_rows})
        if self._count(moved) or (merr is not None and _passed_rls(merr)):
            self._record(name, "MOVE", LEAK, f"tenant {target.a} moved its row to tenant {target.b}")
        else:
            self._record(name, "MOVE", PASS)

    def _undrifted(self, table: Table) -> sql.Composable:
        """A condition on alias ``x``: every parent that carries the tenant column has x's tenant."""
        conditions: list[sql.Composable] = [sql.SQL("true")]
        for fk in table.foreign_keys:
            parent = self.catalog.tables.get(fk.target_table)
            if parent is None or parent.column(self.config.tenant_column) is None or self.config.tenant_column in fk.columns:
                continue
            on = sql.SQL(" AND ").join(sql.SQL("p.{} = x.{}").format(sql.Identifier(pc), sql.Identifier(cc))
                                       for cc, pc in zip(fk.columns, fk.target_columns, strict=True))
            conditions.append(sql.SQL("NOT EXISTS (SELECT 1 FROM {p} p WHERE {on} AND p.{col} IS DISTINCT FROM x.{col})")
                              .format(p=sql.Identifier(parent.schema, parent.name), on=on, col=self.column))
        return sql.SQL(" AND ").join(conditions)

    def _probe_drift(self, target: _Target) -> None:
        """G7: a child row whose tenant differs from its parent's must be visible to neither tenant."""
        child = target.table
        for fk in child.foreign_keys:
            parent = self.catalog.tables.get(fk.target_table)
            if parent is None or parent.column(self.config.tenant_column) is None or self.config.tenant_column in fk.columns:
                continue
            drift = self._drift_rows(child, parent, fk)
            if not drift:
                self._record(child.name, "DRIFT", PASS)
                continue
            (child_tenant, parent_tenant), ctids = max(drift.items(), key=lambda kv: len(kv[1]))
            query = sql.SQL("SELECT count(*) FROM {} WHERE ctid = ANY(%(rows)s::tid[])").format(target.ident)
            viewers = (parent_tenant,) if self.config.drift_visible_to_child else (child_tenant, parent_tenant)
            for tenant in viewers:
                rows, _ = self._as_role(tenant, query, {"rows": ctids})
                seen = self._count(rows)
                self._record(child.name, "DRIFT", LEAK if seen else PASS,
                             f"tenant {tenant} sees {seen} {child.name} rows of tenant {child_tenant} attached to a "
                             f"{parent.name} row of tenant {parent_tenant} ({fk.name})")

    def _drift_rows(self, child: Table, parent: Table, fk: ForeignKey) -> dict[tuple[str, str], list[str]]:
        on = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(pc), sql.Identifier(cc))
                                   for cc, pc in zip(fk.columns, fk.target_columns, strict=True))
        query = sql.SQL("SELECT c.{col}::text, p.{col}::text, (array_agg(c.ctid::text))[1:20] FROM {c} c JOIN {p} p ON {on} "
                        "WHERE c.{col} IS DISTINCT FROM p.{col} AND c.{col} IS NOT NULL AND p.{col} IS NOT NULL "
                        "GROUP BY 1, 2").format(col=self.column, c=sql.Identifier(child.schema, child.name),
                                                p=sql.Identifier(parent.schema, parent.name), on=on)
        return {(ct, pt): ctids for ct, pt, ctids in self.conn.execute(query)}

    def _seed(self, target: _Target) -> None:
        """Insert one probe row for each of two tenants (FK triggers off), inside the rolled-back transaction."""
        tenants = [str(uuid.uuid4()), str(uuid.uuid4())]
        registry = self.catalog.tables.get("tenants")
        if registry is not None and registry.column("id") is not None:
            found = self.conn.execute(sql.SQL("SELECT id::text FROM {} ORDER BY id LIMIT 2").format(
                sql.Identifier(registry.schema, registry.name))).fetchall()
            tenants = [r[0] for r in found] + tenants[len(found):]
        columns = [col for col in target.table.columns
                   if col.name == self.config.tenant_column or (not col.nullable and col.default is None)]
        names = sql.SQL(", ").join(sql.Identifier(col.name) for col in columns)
        self.conn.execute("SET LOCAL session_replication_role = replica")
        for tenant in tenants:
            values = sql.SQL(", ").join(sql.Literal(tenant) if col.name == self.config.tenant_column
                                        else sql.SQL(_filler(col.type)) for col in columns)
            self.conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(target.ident, names, values))
        self.conn.execute("SET LOCAL session_replication_role = origin")
        self.report.notes.append(f"{target.table.name}: probed on two inserted probe rows (rolled back)")
        for tenant in tenants:
            target.counts[tenant] = target.counts.get(tenant, 0) + 1
        target.a, target.b = tenants

    def _probe_views_and_functions(self, counts: Mapping[str, Mapping[str | None, int]]) -> None:
        """Views over tenant tables and callable SECURITY DEFINER functions must show one tenant's rows only."""
        totals: dict[str, int] = {}
        for per_tenant in counts.values():
            for tenant, n in per_tenant.items():
                if tenant is not None:
                    totals[tenant] = totals.get(tenant, 0) + n
        tenant = max(totals, key=lambda t: totals[t]) if totals else str(uuid.uuid4())
        tenant_names = {t.name for t in self.every_table}
        objects: list[tuple[str, str, str, sql.Composed]] = []
        for view in self.catalog.views:
            sources = sorted(tenant_names & view_sources(view))
            if sources:
                objects.append(("VIEW", view.name, self.groups.get(sources[0], "other"),
                                sql.SQL("{}").format(sql.Identifier(view.schema, view.name))))
        if self.report.writes:  # calling a function may write: only inside the rolled-back transaction
            for fn in self.catalog.functions:
                if (fn.security_definer and not fn.signature and not fn.trigger
                        and fn.name not in self.config.context.functions):
                    objects.append(("FUNC", f"{fn.name}()", ROLE_GROUP,
                                    sql.SQL("{}()").format(sql.Identifier(fn.schema, fn.name))))
        column = self.config.tenant_column
        with self.conn.transaction(force_rollback=True):
            for probe, name, group, source in objects:
                query = sql.SQL("SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT FROM json_object_keys("
                                "row_to_json(r)) k WHERE k = %(col)s) AND row_to_json(r) ->> %(col)s IS DISTINCT FROM "
                                "%(t)s) FROM {} r").format(source)
                leaks = []
                for ctx in (tenant, ""):
                    rows, err = self._as_role(ctx, query, {"col": column, "t": ctx})
                    if err is not None or rows is None:
                        continue
                    total, foreign = rows[0]
                    if foreign or (ctx == "" and probe == "VIEW" and total):
                        leaks.append(f"with context {ctx!r}: {foreign or total} rows of other tenants")
                self._record(name, probe, LEAK if leaks else PASS, "; ".join(leaks), group=group)


def _why(err: psycopg.Error | None) -> str:
    if err is None:
        return "0 rows affected"
    return f"{err.sqlstate} {err.diag.message_primary}"


def _passed_rls(err: psycopg.Error) -> bool:
    """Whether an error shows the row got past RLS: the server's constraint checks (23xxx) run after the
    policy checks, but a BEFORE trigger (a G7 tenant guard raising 23514, say) runs before them."""
    raised_by_trigger = "PL/pgSQL" in (err.diag.context or "")
    return bool(err.sqlstate and err.sqlstate.startswith("23")) and not raised_by_trigger


def _typed(value: str) -> Any:
    """A tenant id as a uuid when it is one, so ``SET tenant_id = %s`` binds to a uuid column."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return value


_NUMERIC = ("smallint", "integer", "bigint", "numeric", "real", "double precision", "money", "decimal")


def _filler(type_name: str) -> str:
    """A value of ``type_name`` for a NOT NULL column without default (probe rows only; FKs are off)."""
    base = type_name.split("(")[0].strip()
    if type_name.endswith("[]"):
        return f"'{{}}'::{type_name}"
    fillers = {"uuid": "gen_random_uuid()", "boolean": "false", "json": "'{}'::json", "jsonb": "'{}'::jsonb",
               "interval": "interval '0'", "inet": "'127.0.0.1'::inet", "bytea": "''::bytea"}
    if base in fillers:
        return fillers[base]
    if base in ("text", "character varying", "character", "citext", "name"):
        return f"CAST(substr(md5(random()::text), 1, 8) AS {type_name})"
    if base in _NUMERIC:
        return f"CAST(1 AS {type_name})"
    if base.startswith(("timestamp", "date", "time")):
        return f"CAST(now() AS {type_name})"
    return (f"(SELECT enumlabel FROM pg_enum WHERE enumtypid = '{type_name}'::regtype "
            f"ORDER BY enumsortorder LIMIT 1)::{type_name}")


