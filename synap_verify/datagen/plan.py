"""The fill plan: for every table of a catalog, how many rows, in which order, and how each column's
values are made.

Every key-like value (primary and unique keys, foreign keys, tenant columns) is a pure function of the
row's *logical index* ``j``, so a child can compute its parent's key for any parent row without the
parent's rows ever being kept in memory: memory stays flat whatever the row count. Rows of a tenant
are a contiguous range of logical indexes (its *block*); a child picks parents inside the block of its
own tenant. Physical order interleaves tenants through a bijection ``j = (a*i + b) mod n``. Other
columns are drawn from small precomputed pools with a numpy generator seeded per (table, chunk).
"""

from __future__ import annotations

import bisect
import math
import random
import re
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import psycopg

from synap_verify.catalog import Catalog, Column, ForeignKey, Table
from synap_verify.datagen import values as V
from synap_verify.datagen.profiles import Profile
from synap_verify.datagen.stats import OWN, ColumnShape, Shape

U64 = np.uint64
MASK48 = (1 << 48) - 1
TENANT_SKEW = 1.1  # Zipf exponent of tenant sizes: the biggest tenant holds ~25% of 50 tenants' rows
TS_SPREAD = 512  # updated_at & co. lie up to this many pool steps after created_at
INT_CAPACITY = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}
RANGE_BOUNDS = ("int4", "int8", "num", "ts", "tstz", "date")  # <kind>range types the generator makes
RARELY_SET = ("deleted_at", "archived_at", "left_at", "revoked_at", "resolved_at", "cancelled_at", "read_at",
              "acted_at", "responded_at", "error_message", "rating", "feedback", "parent_")


@dataclass
class Chunk:
    """One slice of a table being generated: logical row indexes and the chunk's random generator."""

    j: np.ndarray
    rng: np.random.Generator
    redraw: bool = False  # rows a constraint refused: NULL with even odds in nullable columns, no fixed edge cases
    _tidx: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.j)

    def time_index(self, pool_size: int) -> np.ndarray:
        """The row's base position in the timestamp pool, shared by its created_at-like columns."""
        if self._tidx is None:
            self._tidx = self.rng.integers(0, pool_size - TS_SPREAD, self.n)
        return self._tidx


ValueFn = Callable[[np.ndarray], list[str]]  # logical row indexes -> COPY texts (deterministic)
RandomFn = Callable[[Chunk], list[str]]
Rule = Callable[[Chunk, dict[str, list[str]]], None]  # rewrites a chunk's column values in place


def mix(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of ``x + salt``: a fast, vectorised, deterministic hash of row indexes."""
    with np.errstate(over="ignore"):
        z = x.astype(U64) + U64(salt & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
        return z ^ (z >> U64(31))


def scramble48(j: np.ndarray, salt: int) -> np.ndarray:
    """A bijection of 48-bit integers, so keys derived from distinct ``j`` stay distinct but look random."""
    with np.errstate(over="ignore"):
        m = U64(MASK48)
        h = ((j.astype(U64) + U64(salt & MASK48)) * U64(0x9E3779B97F4B)) & m
        h ^= h >> U64(24)
        return (h * U64(0xD6E8FEB86659)) & m


def stable_id(*parts: object) -> int:
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if c.isascii() and c.isalnum()).lower()


EMAIL_FIRST = [_ascii(n) for n in V.FIRST_NAMES]
EMAIL_LAST = [_ascii(n) for n in V.LAST_NAMES]


def _ints(a: np.ndarray) -> list[str]:
    return list(map(str, a.tolist()))


def _pick(pool: np.ndarray, chunk: Chunk, null_rate: float) -> list[str]:
    """Values drawn from ``pool`` (whose last slot is NULL) with a share of NULLs."""
    idx = chunk.rng.integers(0, len(pool) - 1, chunk.n)
    if null_rate:
        rate = 0.5 if chunk.redraw else null_rate
        idx[chunk.rng.random(chunk.n) < rate] = len(pool) - 1
    return pool[idx].tolist()


def _obj(pool: Sequence[str]) -> np.ndarray:
    arr = np.empty(len(pool) + 1, dtype=object)
    arr[:-1] = list(pool)
    arr[-1] = V.NULL
    return arr


# ---------------------------------------------------------------------------------------------- checks

_ID = r'\(*"?(\w+)"?\)*(?:::[\w ]+)?'
_IN_LIST = re.compile(r"\(*(\w+)\)*(?:::[\w ]+)? = ANY \(+ARRAY\[([^\]]*)\]\)*(?:::[\w \[\]]+)?\)*")
_COMPARE = re.compile(r"\(*(\w+)\)*(?:::[\w ]+)? (>=|<=|>|<) \(*'?(-?[\d.]+)'?(?:::[\w ]+)?\)*")
_LITERAL = re.compile(r"'((?:[^']|'')*)'")
_NONNULLS = re.compile(r"num_nonnulls\(([^()]*)\) (=|<=|>=|>|<) (\d+)")
_NULL_PAIR = re.compile(_ID + r" IS (NOT )?NULL\)* (<>|=) \(*" + _ID + r" IS (NOT )?NULL")
_BOTH_NULL_OR = re.compile(_ID + r" IS NOT NULL\)* OR \(*" + _ID + r" IS NOT NULL")
_ORDER = re.compile(_ID + r" (<=|<|>=|>) " + _ID + r"(?=\)|$| )")
_LENGTH = re.compile(r"(?:char_)?length\(" + _ID + r"\) (<=|<|>=|>|=) (\d+)")
_REGEX = re.compile(_ID + r" ~ '((?:[^']|'')*)'")
_JSON_TYPE = re.compile(r"jsonb?_typeof\(\(*\"?(\w+)\"?(?: -> '((?:[^']|'')*)'(?:::text)?)?\)*\) = '(\w+)'")
_HAS_KEY = re.compile(r"\(*\"?(\w+)\"? \? '((?:[^']|'')*)'")
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass
class Checks:
    """What the table's CHECK constraints allow, as far as the usual shapes tell (the server judges the rest)."""

    allowed: dict[str, list[str]] = field(default_factory=dict)
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    max_len: dict[str, int] = field(default_factory=dict)
    min_len: dict[str, int] = field(default_factory=dict)
    regex: dict[str, str] = field(default_factory=dict)
    groups: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (exactly_one|at_least_one|
    # at_most_one|together, columns)
    orders: list[tuple[str, str, str]] = field(default_factory=list)  # (a, op, b): a op b when both are set
    json_type: dict[str, str] = field(default_factory=dict)  # column -> jsonb_typeof it must have
    json_keys: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> key -> type ('' = any)
    unknown: dict[str, str] = field(default_factory=dict)  # column -> the check it appears in

    @property
    def forced(self) -> set[str]:
        """Columns the row rules decide NULL for: generated without NULLs of their own."""
        return {c for _, cols in self.groups for c in cols}


def parse_checks(table: Table, domain_checks: dict[str, list[tuple[str, str]]] | None = None) -> Checks:
    """Read the usual CHECK shapes, the table's and its columns' domains' (``VALUE`` read as the column);
    what remains of a check is 'unknown' (left to the validated fallback)."""
    out = Checks()
    names = set(table.column_names)
    domain = [(name, re.sub(r"\bVALUE\b", col.name, definition)) for col in table.columns
              for name, definition in (domain_checks or {}).get(col.type, ())]
    for name, definition in (*table.checks, *domain):
        rest = definition
        for m in _IN_LIST.finditer(definition):
            out.allowed[m.group(1)] = [v.replace("''", "'") for v in _LITERAL.findall(m.group(2))]
            rest = rest.replace(m.group(0), " ")
        for m in _NONNULLS.finditer(definition):
            cols = tuple(c.strip().strip('"') for c in m.group(1).split(","))
            kind = {("=", "1"): "exactly_one", (">=", "1"): "at_least_one", (">", "0"): "at_least_one",
                    ("<=", "1"): "at_most_one", ("<", "2"): "at_most_one"}.get((m.group(2), m.group(3)))
            if kind and set(cols) <= names:
                out.groups.append((kind, cols))
                rest = rest.replace(m.group(0), " ")
        for m in _NULL_PAIR.finditer(definition):
            a, a_not, op, b, b_not = m.groups()
            if {a, b} <= names:
                differ = (op == "<>") != (bool(a_not) != bool(b_not))
                out.groups.append(("exactly_one" if differ else "together", (a, b)))
                rest = rest.replace(m.group(0), " ")
        for m in _BOTH_NULL_OR.finditer(definition):
            if {m.group(1), m.group(2)} <= names and " AND " not in definition:
                out.groups.append(("at_least_one", (m.group(1), m.group(2))))
                rest = rest.replace(m.group(0), " ")
        for m in _LENGTH.finditer(definition):
            col, op, n = m.group(1), m.group(2), int(m.group(3))
            if op in ("<=", "<", "="):
                out.max_len[col] = min(out.max_len.get(col, 10**6), n - (op == "<"))
            if op in (">=", ">", "="):
                out.min_len[col] = max(out.min_len.get(col, 0), n + (op == ">"))
            rest = rest.replace(m.group(0), " ")
        for m in _REGEX.finditer(definition):
            out.regex[m.group(1)] = m.group(2).replace("''", "'")
            rest = rest.replace(m.group(0), " ")
        for m in _JSON_TYPE.finditer(definition):
            col, key, typ = m.group(1), m.group(2), m.group(3)
            if key is None:
                out.json_type[col] = typ
            else:
                out.json_keys.setdefault(col, {})[key.replace("''", "'")] = typ
            rest = rest.replace(m.group(0), " ")
        for m in _HAS_KEY.finditer(definition):
            out.json_keys.setdefault(m.group(1), {}).setdefault(m.group(2).replace("''", "'"), "")
            rest = rest.replace(m.group(0), " ")
        for m in _ORDER.finditer(definition):
            a, op, b = m.groups()
            if {a, b} <= names and a != b:
                out.orders.append((a, op, b) if op.startswith("<") else (b, _FLIP[op], a))
                rest = rest.replace(m.group(0), " ")
        for m in _COMPARE.finditer(definition):
            col, op, num = m.group(1), m.group(2), float(m.group(3))
            if op.startswith(">"):
                out.low[col] = max(out.low.get(col, -math.inf), num + (0 if op == ">=" else 1e-9))
            else:
                out.high[col] = min(out.high.get(col, math.inf), num - (0 if op == "<=" else 1e-9))
            rest = rest.replace(m.group(0), " ")
        if re.sub(r"CHECK|NOT VALID|AND|OR|IS NULL|::[\w ]+|[()\s]|" + "|".join(map(re.escape, names)), "", rest):
            for word in set(re.findall(r"\w+", definition)) & names:
                out.unknown[word] = name
    return out


# ----------------------------------------------------------------------------------------- type info

@dataclass(frozen=True)
class TypeInfo:
    """What the catalog snapshot does not say: enum labels, domain base types, generated columns."""

    enums: dict[str, list[str]]
    domains: dict[str, str]
    generated: frozenset[tuple[str, str, str]]
    domain_checks: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # domain -> (name, CHECK ...)


def read_type_info(conn: psycopg.Connection, schemas: Sequence[str]) -> TypeInfo:
    enums: dict[str, list[str]] = {}
    for typ, label in conn.execute(
        "SELECT e.enumtypid::regtype::text, e.enumlabel FROM pg_enum e ORDER BY e.enumtypid, e.enumsortorder"
    ):
        enums.setdefault(typ, []).append(label)
    domains: dict[str, str] = dict(conn.execute(  # type: ignore[arg-type]
        "SELECT t.oid::regtype::text, format_type(t.typbasetype, t.typtypmod) FROM pg_type t WHERE t.typtype = 'd'"
    ).fetchall())
    domain_checks: dict[str, list[tuple[str, str]]] = {}
    for typ, name, definition in conn.execute(
        "SELECT c.contypid::regtype::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "WHERE c.contypid <> 0 AND c.contype = 'c' ORDER BY 1, 2"
    ):
        domain_checks.setdefault(typ, []).append((name, definition))
    generated = frozenset(conn.execute(  # type: ignore[arg-type]
        "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attgenerated <> '' AND n.nspname = ANY(%s)",
        [list(schemas)],
    ).fetchall())
    return TypeInfo(enums, domains, generated, domain_checks)


# ------------------------------------------------------------------------------------------ the plan

@dataclass
class FkPlan:
    fk: ForeignKey
    parent: TablePlan | None  # None: the FK is left NULL (cycle broken, or target not filled)
    mode: str  # 'tenant' | 'self' | 'radix' | 'pick' | 'late' (a cycle's FK, parent planned later) | 'null'
    nullable: bool
    null_rate: float = 0.0
    digit: int = 0  # radix mode: position among the table's radix FKs
    spread: float = 1.0  # pick mode: the share of the parent rows children reference (from statistics)


@dataclass
class TablePlan:
    table: Table
    tid: int
    scoped: bool  # rows belong to tenants (blocks of logical indexes)
    count: int = 0
    starts: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    a: int = 1
    b: int = 0
    fks: list[FkPlan] = field(default_factory=list)
    radix: list[FkPlan] = field(default_factory=list)
    det: dict[str, ValueFn] = field(default_factory=dict)
    rand: dict[str, RandomFn] = field(default_factory=dict)
    copy_columns: list[str] = field(default_factory=list)
    key_columns: set[str] = field(default_factory=set)
    est_bytes: int = 64
    rules: list[Rule] = field(default_factory=list)  # row-level fixes for CHECKs that span columns

    @property
    def name(self) -> str:
        return self.table.name

    def block(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first logical index, row count) of tenant ``t``'s block (global tables: one block)."""
        t = t if self.scoped else np.zeros_like(t)
        return self.starts[t], self.starts[t + 1] - self.starts[t]

    def tenant_of(self, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tenant, index within the tenant's block) of logical rows ``j``."""
        t = np.searchsorted(self.starts, j, side="right") - 1
        return t, j - self.starts[t]

    def physical(self, lo: int, hi: int) -> np.ndarray:
        """Logical indexes of physical rows lo..hi: tenants interleave as they would in production."""
        return (np.arange(lo, hi, dtype=np.int64) * self.a + self.b) % self.count


def copy_text(tp: TablePlan, chunk: Chunk, with_index: bool = False) -> bytes:
    """The COPY text of ``chunk``'s rows of ``tp`` (led by the logical index when ``with_index``)."""
    columns = [det(chunk.j) if (det := tp.det.get(c)) else tp.rand[c](chunk) for c in tp.copy_columns]
    if tp.rules:
        by_name = dict(zip(tp.copy_columns, columns, strict=True))
        for rule in tp.rules:
            rule(chunk, by_name)
    if with_index:
        columns.insert(0, _ints(chunk.j))
    return ("\n".join(map("\t".join, zip(*columns, strict=True))) + "\n").encode()


def zipf_split(total: int, tenants: int) -> np.ndarray:
    """Split ``total`` rows over tenants with Zipf-like sizes; every tenant gets one when there is room."""
    w = 1.0 / np.arange(1, tenants + 1) ** TENANT_SKEW
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    for k in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[k] += 1
    if total >= 2 * tenants:
        for k in np.flatnonzero(counts == 0):
            counts[k] += 1
            counts[0] -= 1
    return counts


class Planner:
    """Builds the :class:`TablePlan` of every table, parents first."""

    def __init__(self, catalog: Catalog, profile: Profile, seed: int, types: TypeInfo,
                 tenant_column: str = "tenant_id", shape: Shape | None = None) -> None:
        self.catalog, self.profile, self.seed, self.types, self.shape = catalog, profile, seed, types, shape
        self.tenant_column = tenant_column  # every row's tenant, taken from its parents' so rows never drift
        self.notes: list[str] = []
        self.unfillable: dict[str, str] = {}
        self.plans: dict[str, TablePlan] = {}
        rnd = random.Random(seed)
        self.ts_naive = V.timestamp_pool(rnd)
        self.ts_pool = _obj(self.ts_naive)
        self.tstz_pool = _obj([t + "+00" for t in self.ts_naive])
        self.dst_slots = [bisect.bisect_left(self.ts_naive, v) for v in V.DST_TIMESTAMPS]  # in the sorted pool
        self.date_pool = _obj(sorted({t[:10] for t in self.ts_naive}))
        self.uuid_pool = _obj([str(_uuid4(rnd)) for _ in range(4096)])
        self.pools: dict[tuple[object, ...], np.ndarray] = {}
        self.tenant_table = self._find_tenant_table()
        owner = catalog.tables.get(self.tenant_table or "")
        stated = shape.rows(owner) if shape is not None and owner is not None else None
        self.tenants = max(1, profile.tenants if stated is None else stated)
        self.order, self.deferred = self._order()

    # -- ordering
    def _fillable(self, table: Table) -> bool:
        """Partitions are filled through their root; a partitioned table without a partition holds nothing."""
        if table.kind == "partitioned" and table.partition_of is None and not any(
                t.partition_of == table.name for t in self.catalog.tables.values()):
            self.unfillable[table.name] = "partitioned table without any partition (no row can be stored)"
            return False
        return table.partition_of is None and self.profile.rows(table.name) > 0

    def _target(self, fk: ForeignKey) -> Table | None:
        t = self.catalog.tables.get(fk.target_table)
        return t if t is not None and t.schema == fk.target_schema and self._fillable(t) else None

    def _find_tenant_table(self) -> str | None:
        if "tenants" in self.catalog.tables:
            return "tenants"
        targets = [fk.target_table for t in self.catalog.tables.values() for fk in t.foreign_keys
                   if fk.columns == (self.tenant_column,)]
        return max(set(targets), key=targets.count) if targets else None

    def _order(self) -> tuple[list[Table], set[tuple[str, str]]]:
        """Topological order of the FK graph; a cycle is broken at a nullable FK, left NULL."""
        tables = {n: t for n, t in sorted(self.catalog.tables.items()) if self._fillable(t)}
        deps = {n: {(fk.name, tgt.name) for fk in t.foreign_keys
                    if (tgt := self._target(fk)) is not None and tgt.name != n} for n, t in tables.items()}
        done: list[Table] = []
        deferred: set[tuple[str, str]] = set()
        while deps:
            ready = sorted(n for n, d in deps.items() if all(p not in deps for _, p in d))
            if not ready:
                candidates = sorted(
                    ((n, fk_name) for n, d in deps.items() for fk_name, p in d if p in deps),
                    key=lambda c: (not self._fk_nullable(tables[c[0]], c[1]), c),
                )
                n, fk_name = candidates[0]
                deferred.add((n, fk_name))
                deps[n] = {d for d in deps[n] if d[0] != fk_name}
                self.notes.append(f"FK cycle broken at {n}.{fk_name}: its values are taken from the target's plan "
                                  "once every plan is made (the FK is proven after the load)")
                continue
            for n in ready:
                done.append(tables[n])
                del deps[n]
        return done, deferred

    @staticmethod
    def _fk_nullable(table: Table, fk_name: str) -> bool:
        fk = next(f for f in table.foreign_keys if f.name == fk_name)
        return all(c.nullable for c in table.columns if c.name in fk.columns)

    # -- planning
    def build(self) -> list[TablePlan]:
        for table in self.order:
            self.plans[table.name] = self._plan(table)
        return [self.plans[t.name] for t in self.order]

    def _plan(self, table: Table) -> TablePlan:
        tp = TablePlan(table, stable_id(self.seed, table.schema, table.name), scoped=False)
        tenant_fks = [fk for fk in table.foreign_keys if fk.target_table == self.tenant_table
                      and fk.target_table != table.name]
        tenant_cols = {c for fk in tenant_fks for c in fk.columns if len(fk.columns) == 1}
        if table.column(self.tenant_column) is not None and table.name != self.tenant_table:
            tenant_cols.add(self.tenant_column)
        seen: set[tuple[object, ...]] = set()
        for fk in table.foreign_keys:
            if (same := (fk.columns, fk.target_schema, fk.target_table, fk.target_columns)) in seen:
                continue  # a duplicated FK constraint: one plan serves both
            seen.add(same)
            parent = self.plans.get(fk.target_table) if self._target(fk) else None
            nullable = all(c.nullable for c in table.columns if c.name in fk.columns)
            if (table.name, fk.name) in self.deferred:
                mode = "late"
            elif parent is None and fk.target_table != table.name:
                mode = "null"
            elif fk.target_table == table.name:
                mode = "self"
            elif fk.target_table == self.tenant_table and set(fk.columns) <= tenant_cols:
                mode = "tenant"
            else:
                mode = "pick"
            rate = 0.0
            if nullable and mode in ("pick", "late"):
                rate = 0.4 if any(h in c for c in fk.columns for h in RARELY_SET) else 0.05
            spread = 1.0
            if self.shape is not None and mode in ("pick", "late"):
                stated = self.shape.null_frac(table, fk.columns[0])
                rate = rate if stated is None or not nullable else stated
                target = self.catalog.tables.get(fk.target_table)
                if mode == "pick" and len(fk.columns) == 1 and target is not None:
                    spread = self.shape.fk_spread(table, fk.columns[0], target)
            tp.fks.append(FkPlan(fk, parent, mode, nullable, rate, spread=spread))
        tp.scoped = bool(tenant_cols) or any(f.mode == "pick" and f.parent is not None and f.parent.scoped
                                             for f in tp.fks)
        fk_cols = {c for f in tp.fks for c in f.fk.columns}
        checks = parse_checks(table, self.types.domain_checks)
        for f in tp.fks:
            if set(f.fk.columns) & checks.forced:
                f.null_rate = 0.0
        keyed = self._key_columns(tp, fk_cols | tenant_cols, checks)
        tp.key_columns = keyed
        self._radix(tp, tenant_cols)
        self._count(tp, keyed, checks)
        self._stated_nulls(tp)
        for col in table.columns:
            if (table.schema, table.name, col.name) in self.types.generated:
                continue
            fn = self._column(tp, col, keyed, tenant_cols, checks)
            if fn is not None:
                tp.copy_columns.append(col.name)
        tp.est_bytes = 8 + sum(self._est(tp, c) for c in tp.copy_columns)
        tp.rules = self._rules(tp, checks)
        return tp

    def _stated_nulls(self, tp: TablePlan) -> None:
        """An FK's stated NULL share counts the rows whose tenant has no parent row (NULL anyway): only the
        rest is drawn, so the copy's share is the stated one rather than both added."""
        for f in tp.fks:
            if f.mode != "pick" or not f.nullable or f.parent is None or not tp.count or self.shape is None \
                    or self.shape.null_frac(tp.table, f.fk.columns[0]) is None:
                continue
            tenants = np.arange(len(tp.starts) - 1)
            orphans = np.diff(tp.starts)[f.parent.block(tenants)[1] == 0].sum() / tp.count
            f.null_rate = max(0.0, (f.null_rate - orphans) / (1 - orphans)) if orphans < 1 else 0.0

    def _rules(self, tp: TablePlan, checks: Checks) -> list[Rule]:
        """NULL patterns (exactly one of, all or none of) and orderings between columns of a row."""
        rules: list[Rule] = []
        null_fk = {c for f in tp.fks if f.mode == "null" for c in f.fk.columns}
        for kind, cols in checks.groups:
            present = [c for c in cols if c in tp.copy_columns]
            settable = [c for c in present if c not in null_fk]
            if settable:
                rules.append(_null_rule(kind, present, settable))
        for a, op, b in checks.orders:
            if a in tp.rand and b in tp.rand:
                numeric = self._base_type(tp.table.column(a)).startswith(  # type: ignore[arg-type]
                    ("integer", "bigint", "smallint", "numeric", "real", "double"))
                rules.append(_order_rule(a, op, b, numeric, tp.table.column(b).nullable))  # type: ignore[union-attr]
        return rules

    def _key_columns(self, tp: TablePlan, fk_cols: set[str], checks: Checks) -> set[str]:
        """Non-FK columns that must be unique: one per unique key (the roomiest), made from ``j``."""
        table = tp.table
        sets = [table.primary_key, *table.uniques]
        names = set(table.column_names)
        for ix in table.indexes:
            if ix.unique and not ix.primary:
                sets.append(tuple(w for c in ix.columns for w in re.findall(r"\w+", c) if w in names))
        # columns a child's FK points at must be computable from j, like keys
        keyed: set[str] = {c for t in self.catalog.tables.values() for fk in t.foreign_keys
                           if fk.target_table == table.name and fk.target_schema == table.schema
                           for c in fk.target_columns if c not in fk_cols}
        for cols in sets:
            free = [c for c in cols if c not in fk_cols]
            if cols and free and not keyed.intersection(free):
                keyed.add(max(free, key=lambda c: self._capacity(table.column(c), checks)))  # type: ignore[arg-type]
        return keyed

    def _radix(self, tp: TablePlan, tenant_cols: set[str]) -> None:
        """A unique key made only of FKs: enumerate parent combinations instead of drawing them."""
        table = tp.table
        by_col = {c: f for f in tp.fks for c in f.fk.columns}
        indexed = [ix.columns for ix in table.indexes if ix.unique and not ix.primary and set(ix.columns) <= set(by_col)]
        for cols in (table.primary_key, *table.uniques, *sorted(indexed, key=len)):
            if not cols or any(c not in by_col and c not in tenant_cols for c in cols):
                continue
            for c in cols:
                f = by_col.get(c)
                if f is not None and f.mode == "pick" and f not in tp.radix:
                    f.mode, f.digit, f.null_rate = "radix", len(tp.radix), 0.0
                    tp.radix.append(f)
            break

    def _count(self, tp: TablePlan, keyed: set[str], checks: Checks) -> None:
        table = tp.table
        stated = self.shape.rows(table) if self.shape is not None else None
        want = self.tenants if table.name == self.tenant_table else \
            self.profile.rows(table.name) if stated is None else stated
        for c in keyed:
            want = min(want, self._capacity(table.column(c), checks))  # type: ignore[arg-type]
        for f in tp.fks:
            if f.mode in ("pick", "radix") and not f.nullable and f.parent is not None and f.parent.count == 0:
                self.notes.append(f"{table.name}: NOT NULL FK {f.fk.name} targets an empty table, no rows")
                want = 0
        t_count = self.tenants if tp.scoped else 1
        per = zipf_split(want, t_count) if tp.scoped else np.array([want], dtype=np.int64)
        if tp.radix:
            tenants = np.arange(t_count)
            room = np.ones(t_count, dtype=np.float64)
            for f in tp.radix:
                assert f.parent is not None
                room *= f.parent.block(tenants)[1]
            clipped = np.minimum(per, room).astype(np.int64)
            if clipped.sum() < per.sum():
                self.notes.append(f"{table.name}: {int(per.sum() - clipped.sum())} rows fewer, its unique FK "
                                  "combinations are exhausted")
            per = clipped
        tp.starts = np.concatenate([[0], np.cumsum(per)]).astype(np.int64)
        tp.count = int(tp.starts[-1])
        if tp.count:
            a = (0x9E3779B1 + 2 * tp.tid) % tp.count or 1
            while math.gcd(a, tp.count) != 1:
                a += 1
            tp.a, tp.b = a, stable_id(tp.tid, "offset") % tp.count

    # -- column capacity and size
    def _base_type(self, col: Column) -> str:
        return self.types.domains.get(col.type, col.type)

    def _capacity(self, col: Column, checks: Checks) -> int:
        typ = self._base_type(col)
        if col.name in checks.allowed:
            return len(checks.allowed[col.name])
        if typ in INT_CAPACITY:
            return INT_CAPACITY[typ]
        if typ == "boolean":
            return 2
        if typ in self.types.enums:
            return len(self.types.enums[typ])
        m = re.match(r"character(?: varying)?\((\d+)\)", typ)
        if m:
            return 16 ** min(12, int(m.group(1)))
        return 2**47

    def _est(self, tp: TablePlan, col: str) -> int:
        c = tp.table.column(col)
        assert c is not None
        t = self._base_type(c)
        return 400 if t in ("json", "jsonb") else 36 if t == "uuid" else 26 if "time" in t else 12

    # -- value makers
    def _column(self, tp: TablePlan, col: Column, keyed: set[str], tenant_cols: set[str],
                checks: Checks) -> ValueFn | RandomFn | None:
        name = col.name
        fk = next((f for f in tp.fks if name in f.fk.columns), None)
        if name in tenant_cols and (fk is None or fk.mode == "tenant" or len(fk.fk.columns) == 1):
            tp.det[name] = self._tenant_fn(tp, col, fk)
            return tp.det[name]
        if fk is not None:
            tp.det[name] = self._fk_fn(tp, fk, name)
            return tp.det[name]
        if name in keyed:
            tp.det[name] = self._key_fn(tp, col, checks)
            return tp.det[name]
        fn = self._random_fn(tp, col, checks)
        if fn is None:
            if col.default is None and not col.nullable:
                self.notes.append(f"{tp.name}.{name}: type {col.type} not generated and NOT NULL without default")
            return None
        tp.rand[name] = fn
        return fn

    def _tenant_fn(self, tp: TablePlan, col: Column, fk: FkPlan | None) -> ValueFn:
        owner = self.plans.get(self.tenant_table or "")
        target = fk.fk.target_columns[fk.fk.columns.index(col.name)] if fk else None
        if target is None and owner is not None and len(owner.table.primary_key) == 1:
            target = owner.table.primary_key[0]  # a tenant column without FK still holds real tenant ids
        if owner is not None and target is not None:
            fn = owner.det[target]
            return lambda j: fn(tp.tenant_of(j)[0])
        salt = stable_id(self.seed, "tenant")
        prefix = _uuid_prefix(salt)
        is_uuid = self._base_type(col) == "uuid"

        def virtual(j: np.ndarray) -> list[str]:
            t = tp.tenant_of(j)[0]
            return [f"{prefix}{x:012x}" for x in scramble48(t, salt).tolist()] if is_uuid else _ints(t + 1)

        return virtual

    def _parent_rows(self, tp: TablePlan, f: FkPlan, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(parent logical index, NULL mask) of rows ``j`` for one FK."""
        salt = stable_id(tp.tid, f.fk.name)
        h = mix(j, salt)
        null = np.zeros(len(j), dtype=bool)
        if f.mode == "self":
            start, r = tp.tenant_of(j)
            first = tp.starts[start]
            pj = first + (h % np.maximum(r, 1).astype(U64)).astype(np.int64)
            null = r == 0
            if not f.nullable:
                pj = np.where(null, j, pj)
                null[:] = False
            return pj, null
        assert f.parent is not None
        parent = f.parent
        t, r = tp.tenant_of(j)
        first, size = parent.block(t)
        if f.mode == "radix":
            for g in tp.radix[: f.digit]:
                r = r // np.maximum(g.parent.block(t)[1], 1)  # type: ignore[union-attr]
            pj = first + r % np.maximum(size, 1)
        else:
            used = np.maximum(np.ceil(size * f.spread), 1).astype(U64)  # fan-out: children share fewer parents
            pj = first + (h % used).astype(np.int64)
        empty = size == 0
        if empty.any():  # this tenant has no parent row: NULL if allowed, else any parent row
            pj = np.where(empty, (h % U64(max(parent.count, 1))).astype(np.int64), pj)
            null |= empty & f.nullable
        if f.null_rate:
            null |= (mix(j, salt + 1) % U64(1000)) < U64(int(f.null_rate * 1000))
        return pj, null

    def _fk_fn(self, tp: TablePlan, f: FkPlan, column: str) -> ValueFn:
        if f.mode == "null":
            return lambda j: [V.NULL] * len(j)
        target = f.fk.target_columns[f.fk.columns.index(column)]

        def values(j: np.ndarray) -> list[str]:
            if f.mode == "late" and f.parent is None:  # a cycle's FK: every plan exists by the time rows are made
                f.parent = self.plans[f.fk.target_table]
            parent = tp if f.mode == "self" else f.parent
            assert parent is not None
            pj, null = self._parent_rows(tp, f, j)
            out = parent.det[target](pj)
            for k in np.flatnonzero(null).tolist():
                out[k] = V.NULL
            return out

        return values

    def _key_fn(self, tp: TablePlan, col: Column, checks: Checks) -> ValueFn:
        """Unique values made from ``j`` in the column's type, shaped by its name where that helps."""
        typ, name = self._base_type(col), col.name
        salt = stable_id(self.seed, tp.tid, name)
        if name in checks.allowed:
            allowed = [V.copy_escape(v) for v in checks.allowed[name]]
            return lambda j: [allowed[k] for k in j.tolist()]
        if typ == "uuid":
            prefix = _uuid_prefix(salt)
            return lambda j: [f"{prefix}{x:012x}" for x in scramble48(j, salt).tolist()]
        if typ in INT_CAPACITY or typ.startswith("numeric"):
            return lambda j: _ints(j + 1)
        if typ == "boolean":
            return lambda j: ["f" if k == 0 else "t" for k in j.tolist()]
        if typ in self.types.enums:
            labels = [V.copy_escape(x) for x in self.types.enums[typ]]
            return lambda j: [labels[k] for k in j.tolist()]
        if typ == "date":
            return lambda j: [str(np.datetime64("2020-01-01") + k) for k in j.tolist()]
        if typ in ("inet", "cidr"):
            return lambda j: [f"10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}" if k < 2**24 else f"fd00::{k:x}"
                              for k in j.tolist()]
        if "timestamp" in typ:
            tz = "+00" if "with time zone" in typ else ""
            return lambda j: [f"{np.datetime64('2023-01-01T00:00:00') + np.timedelta64(k, 's')}{tz}".replace("T", " ")
                              for k in j.tolist()]
        if typ in ("json", "jsonb"):
            return lambda j: [f'{{"k":{k}}}' for k in j.tolist()]
        m = re.match(r"character(?: varying)?\((\d+)\)", typ)
        limit = min(int(m.group(1)) if m else 10**6, checks.max_len.get(name, 10**6))
        table = tp.name
        if name in checks.regex:  # words, digits and underscores: what identifier-like patterns accept
            return _fit(lambda k: f"{V.WORDS[k % 28]}_", lambda k: "", limit)
        if "email" in name:
            return _fit(lambda k: f"{EMAIL_FIRST[k % 28]}.{EMAIL_LAST[k // 28 % 18]}.", lambda k: f"@{V.DOMAINS[k % 5]}",
                        limit)
        if "permission" in table and name in ("key", "name", "code", "permission_key"):
            return _fit(lambda k: V.PERMISSION_KEYS[k % 10], lambda k: "" if k < 10 else f".v{k // 10}", limit,
                        hexed=False)
        if "slug" in name or name in ("handle", "username", "code", "key"):
            return _fit(lambda k: f"{V.WORDS[k % 28]}-", lambda k: "", limit)
        return _fit(lambda k: f"{name[:12]}-", lambda k: "", limit)

    def _shaped_fn(self, tp: TablePlan, col: Column, checks: Checks, shaped: ColumnShape) -> RandomFn | None:
        """Values as the statistics state them; where they state none (OWN), the generator's own."""
        salt = stable_id(self.seed, tp.tid, col.name) % (1 << 30)
        if shaped.values[0] != OWN:
            return lambda ch: shaped.draw(ch.j, tp.count, salt, (tp.a, tp.b))
        made = self._random_fn(tp, col, checks, own=False)
        if made is None:
            return None

        def values(ch: Chunk) -> list[str]:
            return [m if d == OWN else d for m, d in zip(made(ch), shaped.draw(ch.j, tp.count, salt, (tp.a, tp.b)),
                                                              strict=True)]

        return values

    def _random_fn(self, tp: TablePlan, col: Column, checks: Checks, own: bool = True) -> RandomFn | None:
        """``own=False``: without NULLs, and not shaped by statistics (the caller applies them)."""
        typ, name = self._base_type(col), col.name
        null_rate = 0.0 if not col.nullable or name in checks.forced or not own else \
            0.85 if any(h in name for h in RARELY_SET) else 0.1
        shaped = self.shape.columns.get((tp.name, name)) if self.shape is not None and own else None
        if shaped is not None and (name not in checks.forced or shaped.values[0] != OWN):
            return self._shaped_fn(tp, col, checks, shaped.non_null() if name in checks.forced else shaped)
        if name in checks.allowed:
            return _pool_fn(_obj([V.copy_escape(v) for v in checks.allowed[name]]), null_rate)
        if typ in self.types.enums:
            return _pool_fn(_obj([V.copy_escape(v) for v in self.types.enums[typ]]), null_rate)
        if typ == "uuid":
            return _pool_fn(self.uuid_pool, null_rate)
        if typ in INT_CAPACITY or typ.startswith(("numeric", "real", "double")) or typ == "money":
            bounds = (checks.low.get(name), checks.high.get(name))
            return _pool_fn(self._pool(("num", name, typ, bounds), lambda r: self._numbers(name, typ, r, checks)),
                            null_rate)
        if typ == "boolean":
            share = 0.85 if any(h in name for h in ("active", "enabled", "visible", "public", "verified")) \
                else 0.05 if any(h in name for h in ("deleted", "archived", "blocked", "locked")) else 0.5
            return _pool_fn(_obj(["t" if k < share * 100 else "f" for k in range(100)]), null_rate)
        if typ == "date":
            return _pool_fn(self.date_pool, null_rate)
        if "timestamp" in typ:
            pool = self.tstz_pool if "with time zone" in typ else self.ts_pool
            return self._time_fn(name, pool, null_rate)
        if typ in ("json", "jsonb"):
            return self._json_fn(tp, col, null_rate, checks)
        if typ.endswith("range") and typ[:-5] in RANGE_BOUNDS:
            return _pool_fn(self._pool(("range", typ), lambda r: self._ranges(typ[:-5], r)), null_rate)
        if typ.endswith("[]"):
            return _pool_fn(self._pool(("array", typ), lambda r: self._arrays(typ, r)), null_rate)
        if typ.startswith(("text", "character", "citext", "name", "tsvector")):
            m = re.search(r"\((\d+)\)", typ)
            limit = min(int(m.group(1)) if m else 10**6, checks.max_len.get(name, 10**6))
            pattern = checks.regex.get(name)
            return _pool_fn(self._pool(("text", name, limit, pattern),
                                       lambda r: _texts(name, r, limit, pattern)), null_rate)
        if typ in ("inet", "cidr"):
            return _pool_fn(self._pool(("ip",), lambda r: V.text_pool("ip_address", r)), null_rate)
        if typ.startswith("time"):
            return _pool_fn(_obj([t[11:19] for t in self.ts_naive[:256]]), null_rate)
        if typ == "interval":
            return _pool_fn(_obj(["1 day", "02:30:00", "7 days", "00:00:01.5", "1 mon 2 days"]), null_rate)
        if typ == "bytea":
            return _pool_fn(self._pool(("bytea",), lambda r: [f"\\\\x{r.getrandbits(64):016x}" for _ in range(64)]),
                            null_rate)
        return None

    def _pool(self, key: tuple[object, ...], make: Callable[[random.Random], list[str]]) -> np.ndarray:
        """A value pool, built once per fill for every column sharing the same name and type."""
        if key not in self.pools:
            self.pools[key] = _obj(make(random.Random(stable_id(self.seed, *key))))
        return self.pools[key]

    def _numbers(self, name: str, typ: str, rnd: random.Random, checks: Checks) -> list[str]:
        """A pool of numbers whose range follows the column name and fits the type and CHECKs."""
        m = re.match(r"numeric\((\d+),(\d+)\)", typ)
        scale = int(m.group(2)) if m else 0 if typ in INT_CAPACITY else 2
        top = 10.0 ** (int(m.group(1)) - scale) - 1 if m else INT_CAPACITY.get(typ, 10**9)
        if "rating" in name or "average" in name or "priority" in name or "score" in name and top >= 5:
            lo, hi = 1.0, 5.0
        elif "count" in name or name.startswith("total_"):
            lo, hi = 0.0, 200.0
        elif any(h in name for h in ("price", "amount", "cost", "total", "balance")):
            lo, hi = 0.0, 999.99
        elif any(h in name for h in ("percent", "pct", "rate", "ratio")):
            lo, hi = 0.0, 100.0 if "percent" in name or "pct" in name else 1.0
        elif any(h in name for h in ("_ms", "duration", "latency", "time")):
            lo, hi = 5.0, 60000.0
        elif "token" in name:
            lo, hi = 10.0, 8000.0
        elif any(h in name for h in ("size", "bytes", "_mb")):
            lo, hi = 0.0, 10.0**6
        else:
            lo, hi = 0.0, 1000.0
        lo, hi = max(lo, checks.low.get(name, lo)), min(hi, top, checks.high.get(name, hi))
        if lo > hi:
            lo, hi = checks.low.get(name, 0.0), min(top, checks.low.get(name, 0.0) + 100)
        if scale == 0:
            lo, hi = math.ceil(lo), math.floor(hi)
            skew = "count" in name
            return [str(int(lo + (hi - lo) * rnd.random() ** (3 if skew else 1) + 0.5)) if hi > lo else str(int(lo))
                    for _ in range(512)]
        step = 10.0**-scale
        return [f"{min(hi, max(lo, math.floor(rnd.uniform(lo, hi) / step) * step)):.{scale}f}" for _ in range(512)]

    def _ranges(self, kind: str, rnd: random.Random) -> list[str]:
        """Half-open ranges whose bounds come from the type's own value pools (plus an empty one)."""
        out = ["empty"]
        for _ in range(63):
            if kind in ("int4", "int8", "num"):
                lo = rnd.randint(0, 10_000)
                out.append(f"[{lo},{lo + rnd.randint(1, 500)})")
            else:
                k = rnd.randrange(len(self.ts_naive) - TS_SPREAD)
                a, b = self.ts_naive[k], self.ts_naive[k + rnd.randint(1, TS_SPREAD - 1)]
                a, b = (a[:10], b[:10]) if kind == "date" else (a, b) if kind == "ts" else (a + "+00", b + "+00")
                out.append(f'["{a}","{b}")' if a < b else f'["{a}",)')
        return out

    def _arrays(self, typ: str, rnd: random.Random) -> list[str]:
        elem = typ[:-2]
        if elem in INT_CAPACITY:
            return ["{" + ",".join(str(rnd.randint(0, 999)) for _ in range(rnd.randint(0, 5))) + "}" for _ in range(64)]
        if elem == "uuid":
            return ["{" + ",".join(self.uuid_pool[rnd.randrange(4096)] for _ in range(rnd.randint(0, 3))) + "}"
                    for _ in range(64)]
        if elem.startswith(("text", "character")):
            return ["{" + ",".join(rnd.sample(V.WORDS, rnd.randint(0, 4))) + "}" for _ in range(64)]
        return ["{}"]

    def _time_fn(self, name: str, pool: np.ndarray, null_rate: float) -> RandomFn:
        """created_at-like columns share the row's base instant; later ones (updated_at, ...) follow it."""
        base = name in ("created_at", "started_at", "joined_at", "added_at", "timestamp") or "created" in name
        size = len(pool) - 1
        dst = self.dst_slots
        every = self.profile.json_edge_every

        def values(ch: Chunk) -> list[str]:
            idx = ch.time_index(size)
            if not base:
                idx = idx + ch.rng.integers(0, TS_SPREAD, ch.n)
            if null_rate:
                idx = np.where(ch.rng.random(ch.n) < (0.5 if ch.redraw else null_rate), size, idx)
            out = pool[idx].tolist()
            for k in np.flatnonzero(ch.j % every == 1).tolist() if not ch.redraw else ():  # every DST edge
                out[k] = pool[dst[(int(ch.j[k]) // every) % len(dst)]]
            return out

        return values

    def _json_fn(self, tp: TablePlan, col: Column, null_rate: float, checks: Checks) -> RandomFn:
        """Realistic documents, plus every ``json_edge_every``-th row an edge case, and rarely ``\\u0000``;
        a column whose CHECKs ask for a structure gets documents of that structure and only the edge cases
        that have it."""
        shape = (checks.json_type.get(col.name), checks.json_keys.get(col.name, {}))
        if shape == (None, {}):
            base = self._pool(("json", col.name), lambda r: V.json_pool(col.name, r))
            edges = [V.copy_escape(v) for v in V.JSON_EDGE_CASES.values()]
            nuls = [V.copy_escape(v) for v in V.JSON_NUL_CASES.values()]
        else:
            base = self._pool(("json", col.name, repr(shape)), lambda r: V.json_pool(col.name, r, shape=shape))
            edges = [V.copy_escape(v) for v in V.JSON_EDGE_CASES.values() if V.json_fits(v, *shape)] or [base[0]]
            nuls = [V.copy_escape(v) for v in V.JSON_NUL_CASES.values() if V.json_fits(v, *shape)] or [base[0]]
        every, nul_every = self.profile.json_edge_every, self.profile.nul_every
        salt = stable_id(tp.name, col.name)
        with_nul = col.type == "json" and salt % 3 == 0  # a third of the json columns, a row in nul_every

        def values(ch: Chunk) -> list[str]:
            out = _pick(base, ch, null_rate)
            j = ch.j
            for k in np.flatnonzero(j % every == 0).tolist() if not ch.redraw else ():
                out[k] = edges[(int(j[k]) // every + salt) % len(edges)]
            if with_nul:
                for k in np.flatnonzero(j % nul_every == 7).tolist():
                    out[k] = nuls[(int(j[k]) // nul_every + salt) % len(nuls)]
            return out

        return values


def _texts(name: str, rnd: random.Random, limit: int, pattern: str | None) -> list[str]:
    """The column's text pool cut to its length limit; with a regex CHECK, the candidates it accepts
    (identifier-like variants are added; PostgreSQL's ``~`` searches like Python's ``re.search``)."""
    values = [v[:limit] for v in V.text_pool(name, rnd)]
    if pattern is not None:
        variants = [f"{rnd.choice(V.WORDS)}_{rnd.choice(V.WORDS)}_{i}"[:limit] for i in range(64)]
        try:
            fits = [v for v in values + variants if re.search(pattern, v)]
        except re.error:
            fits = []
        values = fits or values
    return [V.copy_escape(v) for v in values]


def _null_rule(kind: str, present: list[str], settable: list[str]) -> Rule:
    """Exactly/at least/at most one of the columns set, or all or none of them, chosen per row."""
    def apply(ch: Chunk, cols: dict[str, list[str]]) -> None:
        pick = ch.rng.integers(0, len(settable), ch.n).tolist()
        none = (ch.rng.random(ch.n) < 0.2).tolist()
        for k in range(ch.n):
            for c in present:
                chosen = c == settable[pick[k]]
                if kind == "together":
                    clear = none[k]
                elif kind == "at_least_one":
                    clear = not chosen and cols[c][k] == V.NULL
                elif kind == "at_most_one":
                    clear = not chosen or none[k]
                else:
                    clear = not chosen
                if clear:
                    cols[c][k] = V.NULL
    return apply


def _order_rule(a: str, op: str, b: str, numeric: bool, b_nullable: bool) -> Rule:
    """``a < b`` / ``a <= b`` when both are set: swap a pair in the wrong order (equal and strict: b NULL)."""
    def wrong_way(x: str, y: str) -> bool:
        return float(x) > float(y) if numeric else x > y

    def apply(ch: Chunk, cols: dict[str, list[str]]) -> None:
        xs, ys = cols[a], cols[b]
        for k in range(ch.n):
            x, y = xs[k], ys[k]
            if x == V.NULL or y == V.NULL:
                continue
            if wrong_way(x, y):
                xs[k], ys[k] = y, x
            elif op == "<" and x == y and b_nullable:
                ys[k] = V.NULL
    return apply


def _pool_fn(pool: np.ndarray, null_rate: float) -> RandomFn:
    return lambda ch: _pick(pool, ch, null_rate)


def _fit(head: Callable[[int], str], tail: Callable[[int], str], limit: int, hexed: bool = True) -> ValueFn:
    """Unique text ``head + hex(j) + tail`` that fits ``varchar(limit)``: the decoration gives way first."""
    def values(j: np.ndarray) -> list[str]:
        out = []
        for k in j.tolist():
            core = f"{k:x}" if hexed else ""
            text = f"{head(k)}{core}{tail(k)}"
            out.append(V.copy_escape(text if len(text) <= limit else core[-limit:] if hexed else text[:limit]))
        return out

    return values


def _uuid_prefix(salt: int) -> str:
    """The fixed first 20 characters of a table's key uuids (version 4 and variant bits set)."""
    h = f"{stable_id(salt, 'uuid'):08x}{stable_id(salt, 'uuid2'):08x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[1:4]}-"


def _uuid4(rnd: random.Random) -> str:
    h = f"{rnd.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

