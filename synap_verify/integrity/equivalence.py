"""Nothing lost: every legacy row and value, compared with the migrated database under the contract's mapping.

Strategy (docs/equivalence.md): both databases render each table the same way — one text key, then
every column normalised to its meaning (json as jsonb text, timestamps as epoch seconds, comma lists
as arrays, renamed tables and columns mapped) — and each side hashes its rows into key buckets (1,024 to 4,096 by size)
(``count`` + ``sum`` of a 64-bit row hash: one sequential scan and a hash aggregate). Only buckets
whose (count, sum) differ are narrowed down: keys and row hashes of those buckets, then the full rows
of the keys that differ, column by column. The rows the migration says it changed are set aside from the
scan and read by key instead, so they never make a bucket differ. The databases may sit on the same server or on two;
nothing crosses between them but bucket sums and the few differing rows.

The bucket scans run in parallel (:func:`scan`): every relation on each side is a task, and a large
table is split into ranges of its pages (a TID range scan each) whose per-bucket sums add up to the
table's; N connections per side take the tasks, largest first.

A difference is a loss unless the migrated database explains it: the value is quarantined with its
original text (``migration_quarantine``), the row or value is journaled as a data move
(``migration_undo``), or a json value means the same document (:mod:`jsonsem`).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import psycopg
from psycopg import sql

from synap_verify.catalog import Catalog, Table, ident
from synap_verify.contract import Contract
from synap_verify.errors import SynapError
from synap_verify.findings import Finding
from synap_verify.groups import SCHEMA
from synap_verify.integrity import counters, jsonsem
from synap_verify.integrity.moves import destinations

# key buckets of the first pass, per relation ~ROWS_PER_BUCKET rows each, at most 4,096: a differing bucket's rows
# are read again to narrow it, but the rows the migration says it changed are set aside (ASIDE_KEYS), so buckets
# differ only for a loss; a larger hash table costs every row of the scan a cache miss (32,768 buckets: ~6% more
# CPU over the prod scan than 4,096, docs/equivalence.md)
BUCKETS = (1024, 4096)
ROWS_PER_BUCKET = 32
CHUNK = 5000
# a side's differing buckets holding at most this many rows are read with their rendered columns in the pass that
# hashes them (one scan); more are hashed first and only the differing keys' rows read again (memory stays small)
NARROW_ROWS = 100_000
# at most this many expected keys of a relation are set aside (:func:`_set_aside`): their anti-join's hash table
# stays well inside work_mem; a relation with more is narrowed bucket by bucket as any other
ASIDE_KEYS = 20_000
UNKEYED = -1  # the bucket of rows whose key is NULL: no narrowing can read them by bucket, nor pair them by key
# a scan's condition leaving the rows set aside out (a hashed anti-join); a NULL key is no key set aside, and
# ``NOT IN`` alone (NULL for it) would drop its row from the scan unseen
OUTSIDE_ASIDE = "(s.k IS NULL OR s.k NOT IN (SELECT unnest(%s::text[])))"


def _integer(bits: int) -> Callable[[str], bool]:
    """Whether a text is how PostgreSQL writes an integer of ``bits`` bits and a sign."""

    def fits(text: str) -> bool:
        return re.fullmatch(r"-?(0|[1-9][0-9]*)", text) is not None and -(1 << bits) <= int(text) < 1 << bits
    return fits


# key types whose rows can be read by key text, each with the shape of its ``::text``: a key of another shape (a
# journal's index name, a composite key) names no row, and would fail the cast that reads them
KEY_TEXT: dict[str, Callable[[str], bool]] = {
    "uuid": lambda k: re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", k) is not None,
    "integer": _integer(31), "bigint": _integer(63), "smallint": _integer(15), "text": lambda k: True}
RAW = "raw:"  # prefix of a json value rendered verbatim because jsonb might reject it
_T = TypeVar("_T")
# The same text rendering on both sides, whatever each server's defaults are.
SESSION = ("SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, YMD'", "SET IntervalStyle = 'postgres'",
           "SET extra_float_digits = 1", "SET bytea_output = 'hex'")
INSTANT_TYPES = ("date", "timestamp without time zone", "timestamp with time zone")
SPLIT_PAGES = 1024  # a table above this many 8 kB pages is scanned in page ranges by several connections
DISTINCT_KEYS = "SELECT DISTINCT hashtextextended(s.k, 0) FROM ({}) s"
# a column of the same type on both sides hashes with its type's own function, without rendering its text (a
# uuid's text costs twice its hash); equal values of these types have equal texts, so nothing is judged otherwise
NATIVE_HASH = {"uuid": "uuid_hash_extended", "integer": "hashint4extended", "bigint": "hashint8extended",
               "smallint": "hashint2extended", "text": "hashtextextended"}


@dataclass(frozen=True)
class Relation:
    """One keyed row set rendered by each side: ``SELECT k, <columns> ...`` with ``k`` a text key (``SELECT k, h, b,
    <columns>`` when ``digested``: ``h`` the columns' digests, what the scan sums, ``b`` the key's, its bucket).

    ``subset``: a destination check, where every before row must be among the after rows (which may
    hold more: other data already living at the destination).
    """

    group: str
    table: str  # target-schema name: findings and the quarantine/journal tables use it
    before_sql: str
    after_sql: str
    columns: tuple[str, ...] = ()
    json_columns: frozenset[str] = frozenset()
    subset: bool = False
    label: str = ""  # a subset check's destination, for messages
    source: str = ""  # a subset check's legacy values, for messages
    instant_columns: frozenset[str] = frozenset()
    buckets: int = BUCKETS[0]  # a power of two: the first pass's key buckets (``prepare`` sizes them)
    digested: bool = False  # the queries are :func:`_select` hashed
    # each side's query with json cast unguarded ("" when it is the guarded one): the scan tries it first
    unguarded: tuple[str, str] = ("", "")
    # each side's one key column and its type, when key texts can read its rows through its index (KEY_TEXT)
    key: tuple[tuple[str, str], ...] = ()
    # keys the migration says it changed (quarantined, journaled): left out of the scan, read by key and compared row
    # by row, so a table's few expected differences never make its buckets differ and its rows be read again
    aside: tuple[str, ...] = ()

    @property
    def row_hash(self) -> str:
        """The hash of a scan query's row ``s``: its ``h`` (the key's columns among its digests), or its key's XOR the
        hash of its rendered columns' texts."""
        return "s.h" if self.digested else "hashtextextended(s.k, 0) # " + _row_hash(
            [f"hashtextextended(s.{ident(c)}, {i + 2})" for i, c in enumerate(self.columns)])

    @property
    def bucket(self) -> str:
        """The hash of a scan query's row ``s``'s key that picks its bucket: its ``b``, or its key text's."""
        return "s.b" if self.digested else "hashtextextended(s.k, 1)"

    def scanned(self, side: str) -> str:
        """The query whose rows a side's scan and narrowing hash and read (the guarded one)."""
        return self.before_sql if side == "before" else self.after_sql

    def lookup(self, side: str) -> str:
        """A condition reading the rows of a list of key texts through the side's key index."""
        column, own = self.key[0 if side == "before" else 1]
        return f"{ident(column)} = ANY(%s::text[]::{own}[])"

    @property
    def rendered(self) -> str:
        """A scan query's row ``s``'s rendered columns, as a select list's tail."""
        return "".join(f", s.{ident(c)}" for c in self.columns)


@dataclass
class Outcome:
    relation: Relation
    rows_before: int = 0
    rows_after: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Expectations:
    """What the migration says it changed on purpose: quarantined originals and journaled moves."""

    quarantined: dict[tuple[str, str, str], set[str | None]] = field(default_factory=dict)
    reasons: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    journaled: set[tuple[str, str, str]] = field(default_factory=set)
    # (table, counter column) -> keys whose value differs from its aggregate; only measured counters are excused
    counters_off: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: psycopg.Connection, schema: str = SCHEMA) -> Expectations:
        """Read both audit tables of ``schema`` (where the migration restructured) when they exist (an unmigrated or
        foreign database has neither)."""
        found = cls()
        if _exists(conn, schema, "migration_quarantine"):
            for table, pk, column, text, reason in conn.execute(
                    f"SELECT table_name, primary_key, coalesce(column_name, ''), original_text, reason "
                    f"FROM {ident(schema)}.migration_quarantine"):
                found.quarantined.setdefault((table, pk, column), set()).add(text)
                found.reasons.setdefault((table, pk, column), set()).add(reason)
        if _exists(conn, schema, "migration_undo"):
            for table, pk, column in conn.execute(
                    f"SELECT table_name, primary_key, coalesce(column_name, '') FROM {ident(schema)}.migration_undo"):
                found.journaled.add((table, pk, column))
        return found

    def explains(self, table: str, key: str, column: str, before: str | None) -> bool:
        """A changed value the migration accounted for: its original quarantined, a recount, or a journaled move."""
        where = (table, key, column)
        original = before[len(RAW):] if before is not None and before.startswith(RAW) else before
        if original in self.quarantined.get(where, set()):
            return True
        return "counter_drift" in self.reasons.get(where, set()) and self.recount_holds(table, key, column) \
            or where in self.journaled

    def recount(self, drifts: Iterable[counters.Drift]) -> None:
        """Record the counters measured after the migration: a recount is an excuse only where it holds."""
        self.counters_off.update({(d.counted.table, d.counted.column): set(d.off) for d in drifts})

    def recount_holds(self, table: str, key: str, column: str) -> bool:
        """The changed counter's new value equals its aggregate over the counted rows (measured, not assumed)."""
        off = self.counters_off.get((table, column))
        return off is not None and key not in off

    def inserted(self, table: str, key: str) -> bool:
        """A row the migration added and journaled (carried-over feedback, role pairs, default workspaces)."""
        return (table, key, "id") in self.journaled

    def keys(self) -> dict[str, set[str]]:
        """Table -> the keys of its rows the migration says it changed, added or moved."""
        found: dict[str, set[str]] = {}
        for table, key, _ in (*self.quarantined, *self.journaled):
            found.setdefault(table, set()).add(key)
        return found


def connect(dsn: str) -> psycopg.Connection:
    """A read-only autocommit session with the shared text rendering; refuses a session RLS would filter."""
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise SynapError(f"cannot connect to {_safe(dsn)}: {str(exc).strip()}") from None
    for statement in (*SESSION, "SET default_transaction_read_only = on"):
        conn.execute(statement)
    row = conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
    if not (row and row[0]):
        conn.close()
        raise SynapError(f"{_safe(dsn)}: the role must be superuser or BYPASSRLS, or forced row-level security "
                         "hides rows from the comparison and every hidden row would look lost")
    return conn


def _safe(dsn: str) -> str:
    return re.sub(r"(password=)\S+|(:)[^:@/]+(@)", r"\1\2***\3", dsn)


def _exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{ident(schema)}.{ident(table)}",)).fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------------------------------
# planning: which relations, rendered how


def render(column: str, own: str, other: str, guarded: bool = True) -> str:
    """A column as text that means the same on both sides of the restructure (``own`` its type here).

    json text jsonb may reject stays verbatim (judged row by row) instead of failing the statement.
    ``guarded`` tells every such text by a regex, which costs about half as much again as the cast;
    unguarded, only a NUL escape (the reject real data holds) is told, by ``strpos`` at no measurable
    cost, and a rarer reject fails the statement: the scan tries that first (:func:`_scan_task`).
    """
    c = ident(column)
    if own == "json":
        return f"CASE WHEN {_suspect(c, guarded)} THEN '{RAW}' || {c}::text ELSE {c}::jsonb::text END"
    if own in INSTANT_TYPES and other in INSTANT_TYPES:  # a naive value is UTC: epoch of the same instant
        return f"extract(epoch FROM {c})::text"
    if own == "text" and other == "text[]":  # the legacy comma-separated list (also on a downgraded side)
        return (f"(CASE WHEN btrim({c}) = '' THEN '{{}}'::text[] "
                f"ELSE regexp_split_to_array(btrim({c}), '\\s*,\\s*') END)::text")
    return f"{c}::text"


def _suspect(c: str, guarded: bool) -> str:
    return f"{c}::text ~ '{jsonsem.SUSPECT}'" if guarded else f"strpos({c}::text, '\\u0000') > 0"


def digest(column: str, own: str, other: str, seed: int, guarded: bool = True) -> str:
    """A column's meaning as a 64-bit hash: equal on both sides when :func:`render`'s texts are, without rendering
    an instant pair's text (the epoch as numeric, then text): ``timestamp_hash_extended`` of its UTC wall time (the
    session's TimeZone is UTC), stable across PostgreSQL versions as hash partitioning needs. A document pair
    keeps jsonb's text: ``jsonb_hash_extended`` ignores nesting (``"a"`` and ``["a"]``, ``[[1],2]`` and ``[[1,2]]``
    hash alike)."""
    if own in INSTANT_TYPES and other in INSTANT_TYPES:
        return f"timestamp_hash_extended({ident(column)}::timestamp, {seed})"
    if own == other and own in NATIVE_HASH:
        return f"{NATIVE_HASH[own]}({ident(column)}, {seed})"
    return f"hashtextextended({render(column, own, other, guarded)}, {seed})"


def _select(table: Table, columns: Sequence[tuple[str, str, str]], key: Sequence[str], guarded: bool = True,
            hashed: bool = False) -> str:
    """``SELECT k, rendered columns FROM table``; ``columns`` is (name here, other side's type, label).

    ``hashed``: ``SELECT k, h, b, rendered columns FROM table``, ``h`` the columns' digests combined
    (:func:`_row_hash`): what the scan sums and the narrowing compares; ``b`` the key columns' digests, the row's
    bucket (a uuid key hashed as a uuid, never rendered: ``k`` is read only where keys are). A statement that reads
    only ``h`` and ``b`` (the scan) never computes the rendered columns: PostgreSQL pulls the query up and drops
    what no one reads."""
    types = {c.name: c.type for c in table.columns}
    exprs = [render(name, types[name], other, guarded) for name, other, _ in columns]
    keyed = " || '|' || ".join(f"{ident(k)}::text" for k in key) if key else f"md5(row({', '.join(exprs)})::text)"
    source = f" FROM {ident(table.schema)}.{ident(table.name)}"
    rendered = "".join(f", {e} AS {ident(label)}" for e, (_, _, label) in zip(exprs, columns, strict=True))
    if hashed:
        digests = [digest(name, types[name], other, i + 2, guarded) for i, (name, other, _) in enumerate(columns)]
        others = {name: other for name, other, _ in columns}
        bucket = " # ".join(digest(k, types[k], others[k], i + 1, guarded) for i, k in enumerate(key)) \
            or f"hashtextextended({keyed}, 1)"
        return f"SELECT {keyed} AS k, {_row_hash(digests)} AS h, {bucket} AS b{rendered}{source}"
    return f"SELECT {keyed} AS k{rendered}{source}"


def _hashed(table: Table, columns: Sequence[tuple[str, str, str]], key: Sequence[str]) -> tuple[str, str]:
    """A side's scan queries (:func:`_select` hashed): with the json guard, and without it ("" when that is the
    same query: no json column on this side, nothing to gain, nothing to scan twice when a statement fails)."""
    guarded, fast = (_select(table, columns, key, g, hashed=True) for g in (True, False))
    return guarded, "" if fast == guarded else fast


def plan(before: Catalog, after: Catalog, contract: Contract, groups: Iterable[str] = (),
         rollback: bool = False) -> tuple[list[Relation], list[Finding]]:
    """The relations to compare for the selected groups, and findings for columns that have nowhere to be.

    Forward (legacy → migrated): tables and columns through the contract's mapping, dropped columns
    checked at their destination. ``rollback`` (legacy → downgraded): every name is the legacy one.
    """
    contract = contract.covering(before)  # a contract with ``unlisted:`` compares every table the database had
    selected = set(groups) or set(contract.groups)
    mapping = contract.mapping()
    renamed = contract.rules.renamed_columns
    relations: list[Relation] = []
    findings: list[Finding] = []
    for spec in contract.tables_in(selected):
        legacy_name = spec.legacy_name or spec.name
        old = before.table(legacy_name)
        if old is None:
            continue
        new = after.table(legacy_name if rollback else spec.name)
        if new is None:
            findings.append(Finding("EQ-TABLE", spec.group, spec.name, f"{legacy_name} has no counterpart in the "
                                    f"{'downgraded' if rollback else 'migrated'} database: all {legacy_name} rows are lost"))
            continue
        dropped = set() if rollback else {d.column for d in mapping.dropped if d.legacy_table == legacy_name}
        pairs: list[tuple[str, str]] = []
        for col in old.columns:
            if col.name in dropped:
                continue
            target = col.name if rollback else mapping.columns.get(spec.name, {}).get(col.name, col.name)
            if new.column(target) is None and col.name in renamed and new.column(renamed[col.name]):
                target = renamed[col.name]
            if new.column(target) is None:
                why = "the downgrade did not restore it" if rollback else "the contract does not drop it"
                findings.append(Finding("EQ-COLUMN", spec.group, spec.name, f"{legacy_name}.{col.name} has no column in "
                                        f"{new.name} and {why}: its values are lost",
                                        column=col.name, expected=target, actual="absent"))
                continue
            pairs.append((col.name, target))
        old_types = {c.name: c.type for c in old.columns}
        new_types = {c.name: c.type for c in new.columns}
        as_before, as_after = dict(new_types), {t: old_types[o] for o, t in pairs}
        if rollback:  # both sides legacy-typed: render both as the migrated type means it (tags as lists)
            for _, t in pairs:
                if mapping.types.get((spec.name, t)) == "text[]":
                    as_before[t] = as_after[t] = "text[]"
        targets = dict(pairs)
        key = [k for k in old.primary_key if k in targets]
        before_side = (old, [(o, as_before[t], t) for o, t in pairs], key)
        after_side = (new, [(t, as_after[t], t) for _, t in pairs], [targets[k] for k in key])
        hashed_before, hashed_after = _hashed(*before_side), _hashed(*after_side)
        one_key = ((key[0], old_types[key[0]]), (targets[key[0]], new_types[targets[key[0]]])) if len(key) == 1 else ()
        relations.append(Relation(
            spec.group, spec.name, hashed_before[0], hashed_after[0],
            tuple(t for _, t in pairs),
            frozenset(t for o, t in pairs if "json" in (old_types[o], new_types[t])),
            instant_columns=frozenset(t for o, t in pairs if old_types[o] in INSTANT_TYPES and new_types[t] in INSTANT_TYPES),
            digested=True, unguarded=(hashed_before[1], hashed_after[1]),
            key=one_key if all(t in KEY_TEXT for _, t in one_key) else ()))
    if not rollback:
        checks, unchecked = destinations(before, after, contract, selected)
        relations += [Relation(g, t, b, a, subset=True, label=dest, source=src) for g, t, b, a, src, dest in checks]
        findings += unchecked
    if contract.rules.backup_group in selected:
        relations += _backups(before, after, contract, rollback, findings)
    return relations, findings


def _backups(before: Catalog, after: Catalog, contract: Contract, rollback: bool, findings: list[Finding]) -> list[Relation]:
    """backup_* tables: restored ones are compared row for row; archived ones are checked against the audit."""
    group = contract.rules.backup_group
    pattern = re.compile(contract.rules.backup_pattern)
    out: list[Relation] = []
    archived = after.table("migration_archive") is not None
    for table in before.tables.values():
        if not pattern.search(table.name):
            continue
        twin = after.table(table.name)
        if twin is not None:
            cols = [(c.name, c.type, c.name) for c in table.columns if twin.column(c.name)]
            out.append(Relation(group, table.name, _select(table, cols, table.primary_key),
                                _select(twin, cols, twin.primary_key), tuple(c[2] for c in cols)))
        elif rollback or not archived:
            findings.append(Finding("EQ-TABLE", group, table.name, f"{table.name} is gone and nothing archived it"))
        else:
            count = f"SELECT count(*)::text AS k FROM {ident(table.schema)}.{ident(table.name)}"
            audit = (f"SELECT row_count::text AS k FROM (SELECT row_count FROM {ident(table.schema)}.migration_archive "
                     f"WHERE table_name = {sql.Literal(table.name).as_string(None)} AND restored_rows = row_count "
                     "ORDER BY id DESC LIMIT 1) a")
            out.append(Relation(group, table.name, count, audit, subset=True, source=f"the row count of {table.name}",
                                label="migration_archive with a restore that counted as many rows"))
    return out


# --------------------------------------------------------------------------------------------------
# comparing


def _row_hash(digests: Sequence[str]) -> str:
    """A row's columns as one hash: their digests XORed, each seeded by the column's position (a value moved to
    another column changes it; NULL stands for a constant of its own). Hashing the row's text (``s::text``, which
    quotes every field) cost 15-45% more per scan (docs/equivalence.md)."""
    return " # ".join(f"coalesce({d}, {i + 7})" for i, d in enumerate(digests)) or "0"


def _set_aside(relation: Relation, changed: dict[str, set[str]]) -> Relation:
    """``relation`` with the keys ``changed`` names for its table (:meth:`Expectations.keys`) set aside, when it has
    a key to read them by and they are few enough (:data:`ASIDE_KEYS`)."""
    keys = {k for k in changed.get(relation.table, ()) if all(KEY_TEXT[t](k) for _, t in relation.key)} \
        if relation.key else set()  # a subset check is planned without a key
    return replace(relation, aside=tuple(sorted(keys))) if 0 < len(keys) <= ASIDE_KEYS else relation


def _buckets(conn: psycopg.Connection, query: str, relation: Relation) -> Buckets:
    """Per key bucket, the count and the sum of row hashes. Each row is reduced to (bucket, hash) below an
    ``OFFSET 0`` fence, before the aggregate: the planner takes every key for its own group (it cannot know the
    mask leaves a few thousand), plans the hash aggregate to spill, and without the fence spills the raw rows,
    whose hashes it computes after reading them back (node_executions at prod: 900 MB written, twice the
    scan's time; docs/equivalence.md). Rows without a key count in bucket UNKEYED."""
    aside = f" WHERE {OUTSIDE_ASIDE}" if relation.aside else ""
    rows = conn.execute(f"SELECT b, count(*), sum(h) FROM (SELECT coalesce({relation.bucket} & {relation.buckets - 1}, "
                        f"{UNKEYED}) AS b, coalesce({relation.row_hash}, 0) AS h FROM ({query}) s{aside} OFFSET 0) r "
                        "GROUP BY b",
                        (list(relation.aside),) if aside else None).fetchall()
    return {b: (n, int(h)) for b, n, h in rows}


def _sizes(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """``schema.table`` -> (pages, rows the statistics estimate; -1 never analysed) of every table: the scan's page
    ranges and the key buckets are sized from them."""
    return {name: (int(pages), int(rows)) for name, pages, rows in conn.execute(
        "SELECT n.nspname || '.' || c.relname, pg_relation_size(c.oid) / current_setting('block_size')::int, c.reltuples "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')")}


def _sized(conn: psycopg.Connection, relations: list[Relation]) -> list[Relation]:
    """Each row relation's key buckets for its table's size (``reltuples`` of the side ``conn`` reads, the same
    for both sides' scans): ~ROWS_PER_BUCKET rows a bucket, within BUCKETS."""
    sizes = _sizes(conn)
    low, high = BUCKETS
    out = []
    for r in relations:
        n = max(0, sizes.get(_scanned_table(r.after_sql) or "", (0, 0))[1])
        out.append(r if r.subset else replace(r, buckets=min(high, max(low, 1 << (n // ROWS_PER_BUCKET).bit_length()))))
    return out


# Membership in a list of buckets or keys is ``IN (SELECT unnest(list))``, a hashed semi-join: ``= ANY(list)`` with
# the list as a parameter is a linear search per row (node_executions at prod: 9.8 s for 1,637 buckets).
def _narrowed(conn: psycopg.Connection, relation: Relation, side: str, buckets: list[int], rows: bool) -> Keyed:
    """Key -> (row hash, its rendered columns when ``rows``, else ()) of every row of ``buckets`` but those set aside
    (read by key): one scan."""
    aside = f" AND {OUTSIDE_ASIDE}" if relation.aside else ""
    return _keyed(conn.execute(
        f"SELECT s.k, {relation.row_hash}{relation.rendered if rows else ''} FROM ({relation.scanned(side)}) s "
        f"WHERE {relation.bucket} & {relation.buckets - 1} IN (SELECT unnest(%s::bigint[])){aside}",
        (buckets, list(relation.aside)) if aside else (buckets,)))


def _looked_up(conn: psycopg.Connection, relation: Relation, side: str) -> Keyed:
    """Key -> (row hash, rendered columns) of the rows of the keys set aside, read through the key's index."""
    return _keyed(conn.execute(f"SELECT s.k, {relation.row_hash}{relation.rendered} FROM ({relation.scanned(side)} "
                               f"WHERE {relation.lookup(side)}) s", (list(relation.aside),)))


def _keyed(rows: Iterable[Sequence[Any]]) -> Keyed:
    """Rows ``(k, h, *columns)`` by key, and how many rows hold each key: the identical rows of a table without a
    key share one (the hash of the row), and one of them lost is a row lost."""
    found: dict[str, tuple[int, Row]] = {}
    counts: Counter[str] = Counter()
    for k, h, *rest in rows:
        found[k] = (h, tuple(rest))
        counts[k] += 1
    return found, counts


def _merged(narrowed: Keyed, aside: Keyed) -> Keyed:
    """A side's narrowed rows and its rows set aside (no key in both)."""
    return {**narrowed[0], **aside[0]}, narrowed[1] + aside[1]


def _rows(conn: psycopg.Connection, relation: Relation, side: str, keys: Sequence[str]) -> dict[str, Row]:
    """The rendered columns of ``keys``' rows (one scan per CHUNK keys)."""
    return {k: tuple(rest) for i in range(0, len(keys), CHUNK) for k, *rest in conn.execute(
        f"SELECT s.k{relation.rendered} FROM ({relation.scanned(side)}) s WHERE s.k IN (SELECT unnest(%s::text[]))",
        (list(keys[i:i + CHUNK]),))}


# per side: a relation's bucket sums {bucket: (count, sum)}, or a subset check's set of key hashes
Buckets = dict[int, tuple[int, int]]
Row = tuple[str | None, ...]  # a row's rendered columns, the key left out
Keyed = tuple[dict[str, tuple[int, Row]], Counter[str]]  # key -> (row hash, row), and the rows holding each key
Scanned = Buckets | set[int]
Scan = tuple[Scanned, Scanned] | psycopg.Error  # both sides, or why one could not be scanned


def compare(before: psycopg.Connection, after: psycopg.Connection, relation: Relation, expected: Expectations,
            examples: int = 3, scanned: Scan | None = None) -> Outcome:
    """Hash both sides per key bucket, narrow differing buckets to keys, differing keys to columns.

    ``scanned``: both sides' bucket sums (or key hashes) already taken by :func:`scan`, or its error.
    """
    began = time.perf_counter()
    out = Outcome(relation)
    try:
        if isinstance(scanned, psycopg.Error):
            raise scanned
        if relation.subset:
            _compare_subset(before, after, relation, out, examples, cast("tuple[set[int], set[int]] | None", scanned))
        else:
            _compare_rows(before, after, relation, expected, out, examples, cast("tuple[Buckets, Buckets] | None", scanned))
    except psycopg.Error as exc:
        out.findings.append(Finding("EQ-ERROR", relation.group, relation.table,
                                    f"could not compare {relation.table}: {str(exc).strip().splitlines()[0]}"))
    out.seconds = time.perf_counter() - began
    return out


def _compare_rows(before: psycopg.Connection, after: psycopg.Connection, relation: Relation, expected: Expectations,
                  out: Outcome, examples: int, scanned: tuple[Buckets, Buckets] | None = None) -> None:
    b, a = scanned or (_buckets(before, relation.scanned("before"), relation),
                       _buckets(after, relation.scanned("after"), relation))
    none: Keyed = ({}, Counter())
    aside_b, aside_a = (_looked_up(before, relation, "before"), _looked_up(after, relation, "after")) \
        if relation.aside else (none, none)
    out.rows_before = sum(n for n, _ in b.values()) + aside_b[1].total()
    out.rows_after = sum(n for n, _ in a.values()) + aside_a[1].total()
    if b.get(UNKEYED) != a.get(UNKEYED):
        out.findings += [Finding("EQ-ROWS", relation.group, relation.table,
                                 f"{n} rows of {relation.table} have no key {side} the migration: no row of the other "
                                 "side can be paired with them, so they are not compared (a key column that lost NOT "
                                 "NULL?)", expected=str(out.rows_before), actual=str(out.rows_after))
                         for side, sums in (("before", b), ("after", a)) if (n := sums.get(UNKEYED, (0, 0))[0])]
    differing = sorted(k for k in b.keys() | a.keys() if k != UNKEYED and b.get(k) != a.get(k))
    if not differing and not aside_b[0] and not aside_a[0]:
        return
    rows = max(sum(side.get(k, (0, 0))[0] for k in differing) for side in (b, a)) <= NARROW_ROWS
    (nb, cb), (na, ca) = (_merged(_narrowed(conn, relation, side, differing, rows), aside) if differing else aside
                          for conn, side, aside in ((before, "before", aside_b), (after, "after", aside_a)))

    def rendered(conn: psycopg.Connection, side: str, narrowed: dict[str, tuple[int, Row]], keys: list[str]) -> dict[str, Row]:
        return {k: narrowed[k][1] for k in keys} if rows else _rows(conn, relation, side, keys)

    table = relation.table
    missing = sorted(k for k in cb if cb[k] > ca[k])
    extra = sorted(k for k in ca if ca[k] > cb[k] and not expected.inserted(table, k))
    changed = sorted(k for k in nb.keys() & na.keys() if nb[k][0] != na[k][0])
    if missing:
        hint = _rejected_json(relation, rendered(before, "before", nb, missing)) if relation.json_columns else ""
        lost = sum(cb[k] - ca[k] for k in missing)
        out.findings.append(Finding("EQ-ROWS", relation.group, table,
                                    f"{lost} of {out.rows_before} rows of {table} are missing after the migration "
                                    f"(keys {_listing(missing, examples)}){hint}",
                                    expected=str(out.rows_before), actual=str(out.rows_after)))
    if extra:
        out.findings.append(Finding("EQ-ROWS", relation.group, table,
                                    f"{sum(ca[k] - cb[k] for k in extra)} rows of {table} appeared that the legacy "
                                    "database did not have and "
                                    f"no journal explains (keys {_listing(extra, examples)})",
                                    expected=str(out.rows_before), actual=str(out.rows_after)))
    if changed:
        _compare_values(relation, expected, changed, rendered(before, "before", nb, changed),
                        rendered(after, "after", na, changed), out, examples)


def _rejected_json(relation: Relation, missing: dict[str, Row]) -> str:
    """A hint when missing rows held json that jsonb rejects: such rows belong in the quarantine, not deleted."""
    positions = [i for i, c in enumerate(relation.columns) if c in relation.json_columns]
    held = sum(1 for row in missing.values() if any(v is not None and v.startswith(RAW) for v in (row[i] for i in positions)))
    return f"; {held} of them held json text jsonb may reject: quarantine such values, never delete the row" if held else ""


def _compare_values(relation: Relation, expected: Expectations, keys: list[str], olds: dict[str, Row],
                    news: dict[str, Row], out: Outcome, examples: int) -> None:
    lost: dict[str, list[tuple[str, str | None, str | None]]] = {}
    for key in keys:
        for column, old, new in zip(relation.columns, olds[key], news[key], strict=True):
            if old == new or column in relation.json_columns and _same_json(old, new):
                continue
            if not expected.explains(relation.table, key, column, old):
                lost.setdefault(column, []).append((key, old, new))
    for column, cases in lost.items():
        show = _instant if column in relation.instant_columns else jsonsem.abbreviate
        shown = "; ".join(f"{k}: {show(o)} → {show(n)}" for k, o, n in cases[:examples])
        kind = "json documents changed meaning" if column in relation.json_columns else "values changed"
        if column in relation.instant_columns:
            kind = "instants moved" + _shifts(cases)
        out.findings.append(Finding("EQ-VALUE", relation.group, relation.table,
                                    f"{relation.table}.{column}: {len(cases)} {kind} with no quarantine or journal entry "
                                    f"(e.g. {shown})", column=column, expected=cases[0][1], actual=cases[0][2]))


def _keys(conn: psycopg.Connection, query: str) -> set[int]:
    """The distinct key hashes of a relation's rows: what a subset check compares."""
    return {h for (h,) in conn.execute(DISTINCT_KEYS.format(query))}


def _same_json(old: str | None, new: str | None) -> bool:
    strip = [v[len(RAW):] if v is not None and v.startswith(RAW) else v for v in (old, new)]
    return jsonsem.equivalent(strip[0], strip[1])


def _compare_subset(before: psycopg.Connection, after: psycopg.Connection, relation: Relation, out: Outcome,
                    examples: int, scanned: tuple[set[int], set[int]] | None = None) -> None:
    want, have = scanned or (_keys(before, relation.before_sql), _keys(after, relation.after_sql))
    out.rows_before, out.rows_after = len(want), len(have)
    missing = sorted(want - have)
    if missing:
        keys = [k for (k,) in before.execute(f"SELECT s.k FROM ({relation.before_sql}) s "
                                             "WHERE hashtextextended(s.k, 0) IN (SELECT unnest(%s::bigint[])) LIMIT %s",
                                             (missing, examples))]
        out.findings.append(Finding("EQ-MOVED", relation.group, relation.table,
                                    f"{len(missing)} of {len(want)} {relation.source} are neither in {relation.label} "
                                    "nor quarantined "
                                    f"(e.g. {'; '.join(jsonsem.abbreviate(k, 90) for k in keys)})",
                                    expected=str(len(want)), actual=str(len(want) - len(missing))))


def _shifts(cases: Sequence[tuple[str, str | None, str | None]]) -> str:
    """The distinct shifts, in hours: a constant shift is the signature of a conversion in the wrong TimeZone."""
    try:
        hours = sorted({round((float(n) - float(o)) / 3600, 2) for _, o, n in cases if o is not None and n is not None})
    except ValueError:
        return ""
    return f" (shifted by {', '.join(f'{h:+g} h' for h in hours[:4])})" if hours else ""


def _instant(epoch: str | None) -> str:
    """An epoch rendering back as a UTC instant, so a shifted timestamp reads as one."""
    if epoch is None:
        return "NULL"
    try:
        return datetime.fromtimestamp(float(epoch), UTC).isoformat(sep=" ")
    except (ValueError, OverflowError):
        return epoch


def _listing(keys: Sequence[str], examples: int) -> str:
    return ", ".join(keys[:examples]) + (f" and {len(keys) - examples} more" if len(keys) > examples else "")


@dataclass
class Report:
    outcomes: list[Outcome]
    findings: list[Finding]
    seconds: float
    jobs: int = 1  # connections per side that scanned
    scanned_in: float = 0.0  # of ``seconds``, until every bucket sum was in (planning included); the rest narrowed

    @property
    def rows(self) -> int:
        return sum(o.rows_before + o.rows_after for o in self.outcomes)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def default_jobs() -> int:
    """Connections per side: one per core (of this machine, the server's own for the local backends)."""
    return os.cpu_count() or 1


@dataclass(frozen=True)
class _Task:
    index: int  # of the relation in the caller's list
    relation: Relation
    side: str  # "before" or "after"
    query: str
    pages: int  # for scheduling, largest first
    guarded: str = ""  # the same rows with the json guard, when ``query`` casts json without it


def scan(before_dsn: str, after_dsn: str, relations: Sequence[Relation], jobs: int | None = None) -> list[Scan]:
    """Both sides' bucket sums (key hashes for subset checks) of every relation, over ``jobs`` connections per side.

    A table above SPLIT_PAGES is cut into page ranges (``ctid`` TID range scans, PostgreSQL 14+): counts
    and sums are additive, so the parts' bucket sums add up to the table's on each side independently.
    """
    jobs = max(1, jobs or default_jobs())
    tasks = [*_tasks(before_dsn, relations, "before", jobs), *_tasks(after_dsn, relations, "after", jobs)]
    pools = {side: _Pool((dsn,), jobs) for side, dsn in (("before", before_dsn), ("after", after_dsn))}
    try:
        futures = [(t, pools[t.side].submit(_scan_task, t)) for t in sorted(tasks, key=lambda t: -t.pages)]
        parts: dict[tuple[int, str], list[Scanned]] = {}
        failed: dict[int, psycopg.Error] = {}
        for task, future in futures:
            try:
                parts.setdefault((task.index, task.side), []).append(future.result())
            except psycopg.Error as exc:  # one relation's finding (compare reports it), not the end of the run
                failed[task.index] = exc
    finally:
        for pool in pools.values():
            pool.close()
    return [failed.get(i) or (_merge(parts[(i, "before")]), _merge(parts[(i, "after")])) for i in range(len(relations))]


def _tasks(dsn: str, relations: Sequence[Relation], side: str, jobs: int) -> Iterator[_Task]:
    with connect(dsn) as conn:
        pages = {name: size[0] for name, size in _sizes(conn).items()}
        ranges = int(conn.info.server_version) >= 140000
    for index, relation in enumerate(relations):
        guarded = relation.scanned(side)
        fast = relation.unguarded[0 if side == "before" else 1]
        query, fallback = (fast, guarded) if fast else (guarded, "")
        table = _scanned_table(guarded)
        size = pages.get(table, 0) if table else 0
        parts = min(4 * jobs, -(-size // SPLIT_PAGES)) if ranges and not relation.subset else 1
        if parts <= 1:
            yield _Task(index, relation, side, query, size, fallback)
            continue
        step = -(-size // parts)
        for first in range(0, size, step):
            upper = f" AND ctid < '({first + step},0)'::tid" if first + step < size else ""  # the last range is open
            where = f" WHERE ctid >= '({first},0)'::tid{upper}"
            yield _Task(index, relation, side, query + where, step, fallback and fallback + where)


def _scanned_table(query: str) -> str | None:
    """The table a row relation reads, as ``schema.table`` unquoted: :func:`_select` ends every query with
    ``FROM schema.table``."""
    part = r'("(?:[^"]|"")+"|\w+)'
    found = re.search(rf" FROM {part}\.{part}$", query)
    return ".".join(g.strip('"').replace('""', '"') for g in found.groups()) if found else None


def _merge(parts: list[Scanned]) -> Scanned:
    if isinstance(parts[0], set):
        return set().union(*parts)
    total: Buckets = {}
    for part in parts:
        assert isinstance(part, dict)
        for bucket, (n, h) in part.items():
            m, g = total.get(bucket, (0, 0))
            total[bucket] = (m + n, g + h)
    return total


class _Pool:
    """``jobs`` threads, each with its own read-only connection to each of ``dsns`` (opened on first use)."""

    def __init__(self, dsns: tuple[str, ...], jobs: int) -> None:
        self.dsns = dsns
        self.local = threading.local()
        self.opened: list[psycopg.Connection] = []
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="equivalence")

    def submit(self, work: Callable[..., _T], *args: Any) -> Future[_T]:
        """``work(*connections, *args)`` on a thread of the pool, with that thread's connections."""
        return self.executor.submit(self._run, work, *args)

    def _run(self, work: Callable[..., _T], *args: Any) -> _T:
        conns: tuple[psycopg.Connection, ...] | None = getattr(self.local, "conns", None)
        if conns is None:
            conns = self.local.conns = tuple(connect(dsn) for dsn in self.dsns)
            with self.lock:
                self.opened.extend(conns)
        return work(*conns, *args)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        for conn in self.opened:
            conn.close()


def _scan_task(conn: psycopg.Connection, task: _Task) -> Scanned:
    """One scan, json cast unguarded first: a value jsonb rejects beyond a NUL (a lone surrogate, an exponent
    beyond numeric's range) fails only the rare part that holds one, and that part is scanned again with the
    guard. A row the guard would keep verbatim but jsonb accepts (an escaped emoji) then hashes as its
    document, as the other side's does; narrowing and row reads always use the guard."""
    if task.relation.subset:
        return _keys(conn, task.query)
    try:
        return _buckets(conn, task.query, task.relation)
    except psycopg.DataError:
        if not task.guarded:
            raise
        return _buckets(conn, task.guarded, task.relation)


def prepare(after_conn: psycopg.Connection, before: Catalog, after: Catalog, contract: Contract,
            groups: Iterable[str] = (), rollback: bool = False, expected: Expectations | None = None,
            ) -> tuple[list[Relation], list[Finding], Expectations, list[Finding]]:
    """What a comparison needs before it scans: the relations and the plan's findings, and the expectations
    (journal, quarantine; recounts excused only where the counter equals its aggregate), and the counters'
    own findings (G8-COUNT), which callers report apart or together."""
    relations, findings = plan(before, after, contract, groups, rollback)
    relations = _sized(after_conn, relations)
    known = expected if expected is not None else Expectations.load(after_conn, contract.schemas[0])
    changed = known.keys()
    relations = [_set_aside(r, changed) for r in relations]
    counted, drifts = counters.check(after_conn, after, contract, groups, legacy=rollback)
    known.recount(drifts)
    return relations, findings, known, counted


def run(before_dsn: str, after_dsn: str, contract: Contract, groups: Iterable[str] = (), rollback: bool = False,
        expected: Expectations | None = None, jobs: int | None = None) -> Report:
    """Compare two whole databases: plan from both catalogs, scan every relation in parallel, then narrow."""
    from synap_verify.catalog import read_catalog

    began = time.perf_counter()
    jobs = max(1, jobs or default_jobs())
    with connect(before_dsn) as b, connect(after_dsn) as a:
        relations, findings, known, counted = prepare(a, read_catalog(b, contract.schemas), read_catalog(a, contract.schemas),
                                                      contract, groups,
                                                      rollback, expected)
        findings += counted
        scanned = scan(before_dsn, after_dsn, relations, jobs)
    scanned_in = time.perf_counter() - began
    # narrowing a differing bucket (a quarantined or journaled row is one) reads its table again on both sides:
    # the relations are compared side by side, each thread with a connection to each side
    pairs = _Pool((before_dsn, after_dsn), jobs)
    try:
        outcomes = [f.result() for f in [pairs.submit(compare, r, known, 3, sides)
                                          for r, sides in zip(relations, scanned, strict=True)]]
    finally:
        pairs.close()
    findings += [f for o in outcomes for f in o.findings]
    return Report(outcomes, findings, time.perf_counter() - began, jobs, scanned_in)
