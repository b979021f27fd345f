"""Production's own query mix, from ``pg_stat_statements``: statement texts and call counts, never a row of data.

``pg_stat_statements`` keeps each statement normalised (constants replaced by ``$n``) with how often it
ran. The statements on the schema's tables that cover a share of those calls (most called first) become
the SQL workload, each weighted by its calls. A statement runs only when every ``$n`` has a stated
source, found from the text and the catalog of the database under test: the user's tenant
(``tenant_id``), a value of the column it is compared with or written to, sampled from that database
among the tenant's rows, a fresh value for a unique column written, or a fixed ``LIMIT``/``OFFSET``.
Anything else is listed with its reason and skipped, never guessed. The workload file (YAML) keeps the
statements and those sources, so a mix can be reviewed and kept in the repository.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Container
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

from synap_verify.contract import Contract
from synap_verify.errors import SynapError, first_line
from synap_verify.groups import SCHEMA as S
from synap_verify.loadtest.legacymap import Forms, Mapper
from synap_verify.server import redact

LIMIT, OFFSET = 20, 0  # the values a LIMIT / OFFSET parameter runs with (stated in the file, not guessed)
SAMPLES = 20  # distinct values kept per column and tenant
DML = re.compile(r"^\s*(select|insert|update|delete|with)\b", re.I)
IDENT = r'"?\w+"?'
COLREF = rf"((?:{IDENT}\.){{0,2}}{IDENT})"
CAST = r"(?:\s*::\s*[\w ]+(?:\[\])?)?"
# a column compared with (or set to) a parameter: col = $1, t.col IN ($2), s.t.col = ANY ($3::uuid[]), col ILIKE $4
COMPARED = re.compile(rf"{COLREF}\s*(?:=|<>|!=|<=|>=|<|>|(?:not\s+)?i?like|(?:not\s+)?in\s*\(|=\s*any\s*\()\s*\$(\d+)", re.I)
PAGING = re.compile(r"\b(limit|offset)\s+\$(\d+)", re.I)
RELATION = re.compile(rf"\b(?:from|join|into|update)\s+((?:{IDENT}\.)?{IDENT})(?:\s+(?:as\s+)?(\w+))?", re.I)
INSERT = re.compile(r"\binsert\s+into\s+\S+\s*\(([^)]*)\)\s*values\s*(.*)", re.I | re.S)
SET_TARGET = re.compile(r"\bset\s+(.*?)(?:\bwhere\b|\breturning\b|$)", re.I | re.S)
NOT_ALIAS = {"where", "on", "using", "set", "values", "order", "group", "limit", "offset", "join", "left", "right",
             "inner", "outer", "cross", "full", "natural", "returning", "for", "having", "union", "select", "default",
             "lateral", "window", "fetch", "except", "intersect", "and", "or"}
FRESH_TYPES = ("uuid", "text", "character varying")
SAMPLED = ("column", "written")
# json texts jsonb refuses (NUL, unpaired surrogate escapes): legacy dirt, not sampled, since a value runs in the
# statement's legacy and new form alike and the new schema's column is jsonb (a statement's own ::jsonb cast too)
JSONB_REFUSES = r"'\\u0000|\\u[dD][89a-fA-F]'"

STATS_SQL = """
SELECT s.queryid::text, s.query, s.calls, s.mean_exec_time
FROM {schema}.pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.toplevel
ORDER BY s.calls DESC, s.queryid
"""
EXTENSION_SQL = ("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                 "WHERE e.extname = 'pg_stat_statements'")
CATALOG_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indnatts = 1
               AND i.indkey[0] = a.attnum),
       (SELECT array[f.confrelid::regclass::text, pa.attname::text] FROM pg_constraint f
        JOIN pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = f.confkey[1]
        WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.conkey = array[a.attnum] ORDER BY f.conname LIMIT 1)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v')
ORDER BY c.relname, a.attnum
"""


@dataclass(frozen=True)
class Param:
    """Where one ``$n`` takes its value from.

    ``tenant``: the user's tenant (a ``tenant_id``, or ``tenants.id``); ``column``: a value the column holds
    among the tenant's rows (compared with it, so never NULL); ``written``: the same for a column an INSERT
    or UPDATE writes, NULL included; ``fresh``: a new value for a unique column written; ``limit``, ``offset``.
    """

    n: int
    source: str
    table: str = ""
    column: str = ""
    type: str = ""

    @property
    def key(self) -> str:
        return f"{self.table}.{self.column}" + (" (NULL too)" if self.source == "written" else "")


@dataclass
class Statement:
    """A statement as ``pg_stat_statements`` has it (``query``), and its legacy and new forms through the contract."""

    queryid: str
    query: str
    calls: int
    mean_ms: float
    params: list[Param] = field(default_factory=list)
    legacy: str = ""
    new: str = ""
    mapped: list[str] = field(default_factory=list)  # each name the new form renames: "llms_messages -> messages"

    @property
    def written_in(self) -> str:
        """Whose names the statement was taken in: the new or the legacy application's (mixed: some of each)."""
        return "new" if self.query == self.new else "legacy" if self.query == self.legacy else "mixed"

    def text(self, form: str) -> str:
        """The text one application runs: ``legacy``, ``new``, or the statement as written (no mapping)."""
        return {"legacy": self.legacy, "new": self.new}.get(form) or self.query

    @property
    def name(self) -> str:
        """A short Locust name: verb and first table (the statement's own text is in the workload file)."""
        verb = self.query.split(None, 1)[0].upper()
        tables = [m[0].split(".")[-1].strip('"') for m in RELATION.findall(self.query)]
        return f"{verb} {tables[0] if tables else '?'} #{self.queryid[-6:]}"


@dataclass
class Skipped:
    query: str
    calls: int
    reason: str


@dataclass
class Workload:
    source: str
    share: float  # the share of the calls on the schema's tables the statements were chosen to cover
    total_calls: int  # every top-level statement of the database
    schema_calls: int  # statements on the schema's tables
    statements: list[Statement]
    skipped: list[Skipped]
    taken_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    form: str = ""  # the form bound to the database under test: legacy, new, or "" (as written, no contract)

    @property
    def run_calls(self) -> int:
        return sum(s.calls for s in self.statements)

    def line(self) -> str:
        covered = self.run_calls / self.schema_calls if self.schema_calls else 0.0
        return (f"{len(self.statements)} statement(s) covering {covered:.1%} of the {self.schema_calls:,} calls on the "
                f"schema's tables ({self.run_calls / self.total_calls if self.total_calls else 0:.1%} of all "
                f"{self.total_calls:,}); {len(self.skipped)} skipped")

    def save(self, path: Path) -> Path:
        data = {"source": self.source, "taken_at": self.taken_at, "share": self.share, "total_calls": self.total_calls,
                "schema_calls": self.schema_calls, "summary": self.line(),
                "statements": [asdict(s) for s in self.statements], "skipped": [asdict(s) for s in self.skipped]}
        path.write_text(yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True))
        return path

    @classmethod
    def load(cls, path: Path) -> Workload:
        try:
            data = yaml.safe_load(path.read_text())
            statements = [Statement(s["queryid"], s["query"], int(s["calls"]), float(s["mean_ms"]),
                                    [Param(**p) for p in s.get("params") or []], s.get("legacy") or "",
                                    s.get("new") or "", list(s.get("mapped") or [])) for s in data["statements"]]
            return cls(data["source"], float(data["share"]), int(data["total_calls"]), int(data["schema_calls"]),
                       statements, [Skipped(**s) for s in data.get("skipped") or []], data.get("taken_at", ""))
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise SynapError(f"{path} is not a workload file written by --save-workload: {exc}") from None


@dataclass(frozen=True)
class Column:
    type: str
    unique: bool
    parent: tuple[str, str] | None = None  # (table, column) a single-column foreign key references


Schema = dict[str, dict[str, Column]]  # table -> column -> its type and whether it is unique on its own


def read_schema(conn: psycopg.Connection) -> Schema:
    schema: Schema = {}
    for table, column, kind, unique, parent in conn.execute(CATALOG_SQL, (S,)).fetchall():
        ref = (parent[0].split(".")[-1].strip('"'), parent[1]) if parent else None
        schema.setdefault(table, {})[column] = Column(kind, unique, ref)
    return schema


def read_statements(dsn: str) -> list[Statement]:
    """Every top-level statement of the database ``dsn`` points at, most called first (read-only)."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="synap-workload") as conn:
            row = conn.execute(EXTENSION_SQL).fetchone()  # type: ignore[arg-type]
            if row is None:
                raise SynapError(f"pg_stat_statements is not installed in {redact(dsn)}: CREATE EXTENSION "
                                 "pg_stat_statements there (with shared_preload_libraries = 'pg_stat_statements')")
            rows = conn.execute(STATS_SQL.format(schema=sql.Identifier(row[0]).as_string(conn))).fetchall()  # type: ignore[arg-type]
    except psycopg.errors.ObjectNotInPrerequisiteState:
        raise SynapError(f"pg_stat_statements is installed in {redact(dsn)} but not loaded: add it to "
                         "shared_preload_libraries and restart the server") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SynapError(f"pg_stat_statements of {redact(dsn)} is not readable ({first_line(exc, 200)}): "
                         "GRANT pg_read_all_stats TO the user of --workload-from") from None
    except psycopg.OperationalError as exc:
        raise SynapError(f"cannot connect to --workload-from {redact(dsn)}: {first_line(exc, 200)}") from None
    statements = [Statement(q, _tidy(text), int(calls), float(ms)) for q, text, calls, ms in rows if text is not None]
    hidden = [s for s in statements if s.query == "<insufficient privilege>"]
    if hidden:  # other users' statements: the mix would be this user's own only
        raise SynapError(f"pg_stat_statements of {redact(dsn)} hides {len(hidden)} statement(s) of other users: "
                         "GRANT pg_read_all_stats TO the user of --workload-from")
    return statements


def _tidy(query: str) -> str:
    """Trailing blanks of each line removed (ORMs leave them), so the workload file shows statements as blocks."""
    return re.sub(r"[ \t]+(?=\n)", "", query).strip()


def _block(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


class _Dumper(yaml.SafeDumper):
    """Multi-line statements as YAML blocks, readable in a review."""


_Dumper.add_representer(str, _block)


def build(statements: list[Statement], dsn_under_test: str, share: float, source: str,
          contract: Contract | None = None, other_dsn: str | None = None) -> Workload:
    """Keep the most called statements on the schema's tables up to ``share`` of their calls; bind their parameters.

    With ``contract`` each statement is mapped to its legacy and its new form (``legacymap``), whichever
    names it was written in, and the form of the database under test's shape is the one bound there;
    ``other_dsn``, a database of the other shape, must prepare the other form. Each kept statement is
    prepared on the database under test (``dsn_under_test``): one that does not prepare there, cannot be
    mapped without guessing, or has a parameter without a source, is skipped with the reason.
    """
    if not 0 < share <= 1:
        raise SynapError("--workload-share must be in (0, 1], e.g. 0.95")
    with psycopg.connect(dsn_under_test, autocommit=True) as conn, \
            (psycopg.connect(other_dsn, autocommit=True) if other_dsn else nullcontext()) as other:
        schema = read_schema(conn)
        if not schema:
            raise SynapError(f"the database under test has no schema {S}: nothing to bind the statements to")
        mapper = Mapper(contract, schema) if contract else None
        form = mapper.shape(schema) if mapper else ""
        names = mapper.names() if mapper else set(schema)
        on_schema = [s for s in statements if DML.match(s.query) and _tables(s.query, names)]
        schema_calls = sum(s.calls for s in on_schema)
        chosen: list[Statement] = []
        covered = 0
        for s in on_schema:
            if covered >= share * schema_calls:
                break
            chosen.append(s)
            covered += s.calls
        kept, skipped = [], []
        for s in chosen:
            forms = mapper.forms(s.query) if mapper else Forms()
            text = (forms.new if form == "new" else forms.legacy) if mapper else s.query
            reason = forms.reason or _prepare_error(conn, text)
            if not reason and other is not None:
                other_form = "legacy" if form == "new" else "new"
                reason = _prepare_error(other, forms.new if other_form == "new" else forms.legacy,
                                        f"the {other_form} form: not valid on the {other_form} database")
            params, unbound = ([], [reason]) if reason else bind(text, schema)
            if unbound:
                skipped.append(Skipped(s.query, s.calls, "; ".join(unbound)))
            else:
                kept.append(Statement(s.queryid, s.query, s.calls, s.mean_ms, params, forms.legacy, forms.new,
                                      list(forms.mapped)))
    return Workload(source, share, sum(s.calls for s in statements), schema_calls, kept, skipped, form=form)


def _tables(query: str, schema: Container[str]) -> dict[str, str]:
    """alias (or table name) -> table of the schema (``schema``: its table names), for each relation the statement names."""
    found: dict[str, str] = {}
    for ref, alias in RELATION.findall(query):
        parts = [p.strip('"') for p in ref.split(".")]
        if (len(parts) == 2 and parts[0] != S) or parts[-1] not in schema:
            continue
        found[parts[-1]] = parts[-1]
        if alias and alias.lower() not in NOT_ALIAS:
            found[alias] = parts[-1]
    return found


def bind(query: str, schema: Schema) -> tuple[list[Param], list[str]]:
    """The source of every ``$n`` of ``query``, and a reason for each one without a source."""
    tables = _tables(query, schema)
    wanted = sorted({int(n) for n in re.findall(r"\$(\d+)", query)})
    sources: dict[int, Param] = {}
    for word, n in PAGING.findall(query):
        sources[int(n)] = Param(int(n), word.lower())
    written = _written(query)
    for ref, n in COMPARED.findall(query):
        if int(n) not in sources:
            param = _column_param(int(n), ref, tables, schema, written)
            if param is not None:
                sources[int(n)] = param
    for column, n in _inserted(query):
        if n not in sources:
            param = _column_param(n, column, tables, schema, written | {column})
            if param is not None:
                sources[n] = param
    missing = [f"${n}: no column, LIMIT or OFFSET of a table of {S} it is compared with or written to"
               for n in wanted if n not in sources]
    return [sources[n] for n in wanted if n in sources], missing


def _column_param(n: int, ref: str, tables: dict[str, str], schema: Schema, written: set[str]) -> Param | None:
    parts = [p.strip('"') for p in ref.split(".")]
    column = parts[-1]
    if len(parts) > 1:
        owner = tables.get(parts[-2])
        candidates = [owner] if owner else []
    else:
        candidates = [t for t in dict.fromkeys(tables.values()) if column in schema[t]]
    table = next((t for t in candidates if column in schema.get(t, {})), None)
    if table is None:
        return None
    col = schema[table][column]
    if column == "tenant_id" or (table, column) == ("tenants", "id"):
        return Param(n, "tenant", table, column, col.type)
    if column in written and col.unique:
        return Param(n, "fresh", table, column, col.type) if col.type in FRESH_TYPES else None
    return Param(n, "written" if column in written else "column", table, column, col.type)


def _written(query: str) -> set[str]:
    """Columns an UPDATE sets (a unique one needs a fresh value, not a copy of an existing one)."""
    m = SET_TARGET.search(query) if re.match(r"\s*update\b", query, re.I) else None
    return {c.split(".")[-1].strip('"') for c in re.findall(rf"({IDENT})\s*=", m[1])} if m else set()


def _inserted(query: str) -> list[tuple[str, int]]:
    """(column, n) for each ``$n`` an INSERT ... (columns) VALUES (...) writes, over every row of the VALUES list."""
    m = INSERT.search(query)
    if not m:
        return []
    columns = [c.strip().strip('"') for c in m[1].split(",")]
    pairs = []
    for row in re.findall(r"\(([^()]*(?:\([^()]*\)[^()]*)*)\)", m[2]):
        values = [v.strip() for v in row.split(",")]
        for column, value in zip(columns, values, strict=False):
            if p := re.fullmatch(rf"\$(\d+){CAST}", value, re.I):
                pairs.append((column, int(p[1])))
    return pairs


def _prepare_error(conn: psycopg.Connection, query: str, what: str = "not valid on the database under test") -> str | None:
    """Why ``query`` does not prepare on the database of ``conn`` (None when it does)."""
    try:
        with conn.transaction():
            conn.execute(f"PREPARE synap_workload_check AS {query}")  # type: ignore[arg-type]
            conn.execute("DEALLOCATE synap_workload_check")
    except psycopg.Error as exc:
        return f"{what}: {first_line(exc, 200)}"
    return None


def rebind(saved: Workload, dsn_under_test: str, contract: Contract | None = None,
           other_dsn: str | None = None) -> Workload:
    """A workload file checked against the database under test: each statement mapped (with ``contract``),
    prepared and its parameters bound again."""
    fresh = build(saved.statements, dsn_under_test, 1.0, saved.source, contract, other_dsn)
    return Workload(saved.source, saved.share, saved.total_calls, saved.schema_calls, fresh.statements,
                    saved.skipped + fresh.skipped, saved.taken_at, fresh.form)


def reset_statements(dsn: str) -> None:
    """Start counting afresh (the database under test only: a disposable one), so a snapshot holds one run's statements."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
    except psycopg.errors.ObjectNotInPrerequisiteState:
        raise SynapError(f"pg_stat_statements is not loaded on {redact(dsn)}: add it to shared_preload_libraries "
                         "and restart the server (a cluster the harness starts gets it with --save-workload)") from None


def prepare_run(workload: Workload, dsn: str, tenants: list[str]) -> dict[str, Any]:
    """Sample the values, move the statements no tenant can run to ``skipped``, and return the users' spec."""
    samples = sample(dsn, workload, tenants)
    for s in [s for s in workload.statements if not any(runnable(s, samples[t]) for t in tenants)]:
        workload.statements.remove(s)
        keys = ", ".join(sorted({p.key for p in s.params if p.source in SAMPLED}))
        workload.skipped.append(Skipped(s.query, s.calls, f"no tenant of the pool has a row to take {keys} from"))
    return run_spec(workload, samples)


def sample(dsn: str, workload: Workload, tenants: list[str]) -> dict[str, dict[str, list[str | None]]]:
    """Values of each sampled column among each tenant's rows (any row when the table has no tenant_id)."""
    wanted = {p.key: p for s in workload.statements for p in s.params if p.source in SAMPLED}
    samples: dict[str, dict[str, list[str | None]]] = {t: {} for t in tenants}
    with psycopg.connect(dsn, autocommit=True) as conn:
        schema = read_schema(conn)
        for key, p in sorted(wanted.items()):
            table, column = p.table, p.column
            parent = schema.get(table, {}).get(column)
            if parent and parent.parent and "tenant_id" in schema.get(parent.parent[0], {}):
                # a reference to a tenant's row: the tenant's parent rows, not the children's copies (legacy drift)
                table, column = parent.parent
            values = f'SELECT DISTINCT "{column}"::text FROM {S}."{table}" WHERE ' + \
                (f'"{column}" IS NOT NULL' if p.source == "column" or (table, column) != (p.table, p.column) else "true")
            if getattr(schema.get(table, {}).get(column), "type", "") == "json":
                values += f' AND ("{column}" IS NULL OR "{column}"::text !~ {JSONB_REFUSES})'
            if tenant := schema.get(table, {}).get("tenant_id"):  # one query for all tenants, a row each
                per_tenant = conn.execute(f"SELECT u.i, ARRAY({values} AND tenant_id = u.t LIMIT {SAMPLES}) "  # type: ignore[arg-type]
                                          f"FROM unnest(%s::{tenant.type}[]) WITH ORDINALITY u(t, i)", (tenants,))
                for i, found in per_tenant:
                    samples[tenants[i - 1]][key] = list(found)
            else:
                rows = conn.execute(f"{values} LIMIT {SAMPLES}").fetchall()  # type: ignore[arg-type]
                for t in tenants:
                    samples[t][key] = [r[0] for r in rows]
    return samples


def runnable(statement: Statement, values: dict[str, list[str | None]]) -> bool:
    return all(values.get(p.key) for p in statement.params if p.source in SAMPLED)


def run_spec(workload: Workload, samples: dict[str, dict[str, list[str | None]]], form: str | None = None) -> dict[str, Any]:
    """What the Locust users need (JSON): statements in psycopg's placeholder style (in ``form``, default: the
    form bound to the database under test), and the samples by tenant (the same for both forms: the
    parameters and the rows they are sampled from are the same)."""
    form = workload.form if form is None else form
    return {"statements": [{"name": s.name, "sql": to_psycopg(s.text(form)), "weight": s.calls,
                            "params": [asdict(p) | {"key": p.key} for p in s.params]} for s in workload.statements],
            "samples": samples, "limit": LIMIT, "offset": OFFSET}


def to_psycopg(query: str) -> str:
    """``$n`` -> ``%(pn)s`` (a ``%`` of the text doubled): the statement runs as written, with bound values."""
    return re.sub(r"\$(\d+)", lambda m: f"%(p{m[1]})s", query.replace("%", "%%"))


def value(param: dict[str, Any], tenant: str, values: dict[str, list[str | None]], spec: dict[str, Any], pick: Any) -> Any:
    """One value for a parameter of a statement run by a user acting for ``tenant`` (``pick`` chooses a sample)."""
    source = param["source"]
    if source == "tenant":
        return tenant
    if source in SAMPLED:
        return pick(values[param["key"]])
    if source == "fresh":
        return str(uuid.uuid4()) if param["type"] == "uuid" else f"load-{uuid.uuid4().hex}"
    return spec[source]  # limit, offset
