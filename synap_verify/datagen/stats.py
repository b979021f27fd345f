"""Statistics-shaped data: production's planner statistics in, a generated copy shaped by them out.

Only statistics are read (``pg_class.reltuples`` and ``pg_stats``), in a read-only transaction: never a
row. They travel as a JSON file (``synap-verify stats export``) so a user can hand them over without a
connection. :class:`Shape` turns them into what the planner needs: row counts (reltuples times a
factor), and per column a value distribution (NULL share, the most common values with their
frequencies, the rest spread over the histogram to the stated number of distinct values) whose every
value the server has checked against the column's type and single-column CHECK constraints; values
that do not fit are dropped with a note.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from synap_verify.catalog import Catalog, Column, Table
from synap_verify.datagen import values as V
from synap_verify.errors import SynapError, first_line

FORMAT = "synap-verify statistics 1"
OWN = "\x00own"  # a slot for a value of the generator's own making (the statistics state none)
NUMERIC = ("smallint", "integer", "bigint", "numeric", "real", "double precision")
ORDERED = 0.5  # a |correlation| (beyond ties) from which a column is laid out in physical order (range scans)
MAX_REST = 20_000  # distinct non-MCV values built per column (beyond: the n_distinct ratio is reported)


@dataclass(frozen=True)
class ColumnStats:
    """One column's ``pg_stats`` row (values as their text output)."""

    null_frac: float
    n_distinct: float  # > 0: distinct values; < 0: minus their share of the rows (pg_stats' convention)
    avg_width: int
    mcv: tuple[str, ...] = ()
    mcf: tuple[float, ...] = ()
    histogram: tuple[str, ...] = ()
    correlation: float | None = None

    def distinct(self, rows: float) -> float:
        return self.n_distinct if self.n_distinct >= 0 else -self.n_distinct * rows


@dataclass(frozen=True)
class TableStats:
    reltuples: float  # -1: never analysed
    columns: dict[str, ColumnStats] = field(default_factory=dict)


@dataclass(frozen=True)
class Stats:
    """The statistics of every table of some schemas, keyed ``schema.table``."""

    server_version: int
    tables: dict[str, TableStats]

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "server_version": self.server_version,
                           "tables": {k: asdict(v) for k, v in sorted(self.tables.items())}}, indent=1)

    @classmethod
    def from_json(cls, text: str, where: str) -> Stats:
        fix = "export them again with: synap-verify stats export --dsn URL --out FILE"
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {FORMAT!r}")
            tables = {name: TableStats(float(t["reltuples"]), {
                col: ColumnStats(float(c["null_frac"]), float(c["n_distinct"]), int(c["avg_width"]),
                                 tuple(map(str, c.get("mcv", ()))), tuple(map(float, c.get("mcf", ()))),
                                 tuple(map(str, c.get("histogram", ()))),
                                 None if c.get("correlation") is None else float(c["correlation"]))
                for col, c in t["columns"].items()}) for name, t in data["tables"].items()}
            return cls(int(data["server_version"]), tables)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SynapError(f"{where} is not a statistics file ({first_line(exc, 120)}): {fix}") from None


def read_stats(conn: psycopg.Connection, schemas: Sequence[str]) -> Stats:
    """reltuples and pg_stats of every table of ``schemas`` (no row is read), in one transaction."""
    with conn.transaction():
        tables: dict[str, TableStats] = {}
        for schema, name, rows in conn.execute(
            "SELECT n.nspname, c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) AND NOT c.relispartition", [list(schemas)]):
            tables[f"{schema}.{name}"] = TableStats(float(rows))
        for row in conn.execute(  # arrays of arrays (array columns' MCVs) are not shaped: left out here
            "SELECT s.schemaname, s.tablename, s.attname, s.null_frac, s.n_distinct, s.avg_width, "
            "CASE WHEN t.typcategory <> 'A' THEN s.most_common_vals::text::text[] END, s.most_common_freqs, "
            "CASE WHEN t.typcategory <> 'A' THEN s.histogram_bounds::text::text[] END, s.correlation "
            "FROM pg_stats s JOIN pg_namespace n ON n.nspname = s.schemaname "
            "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname "
            "JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE s.schemaname = ANY(%s) AND s.inherited = (c.relkind = 'p') AND NOT c.relispartition",
            [list(schemas)]):
            schema, table, col, null_frac, n_distinct, width, mcv, mcf, hist, corr = row
            if f"{schema}.{table}" in tables:
                tables[f"{schema}.{table}"].columns[col] = ColumnStats(
                    float(null_frac), float(n_distinct), int(width), tuple(mcv or ()), tuple(mcf or ()),
                    tuple(hist or ()), None if corr is None else float(corr))
    return Stats(conn.info.server_version, tables)


def load_stats(source: Path | str) -> Stats:
    """Statistics from a file written by ``stats export``, or read from a live DSN (statistics only)."""
    if isinstance(source, Path):
        try:
            text = source.read_text()
        except OSError as exc:
            raise SynapError(f"cannot read the statistics file {source}: {exc.strerror}: give a file written by "
                             "synap-verify stats export") from None
        return Stats.from_json(text, str(source))
    from synap_verify.catalog import user_schemas
    from synap_verify.server import redact

    try:
        with psycopg.connect(source, autocommit=True, connect_timeout=10) as conn:
            conn.read_only = True  # every transaction of this session is read-only: nothing can be written
            return read_stats(conn, user_schemas(conn))
    except psycopg.Error as exc:
        raise SynapError(f"cannot read statistics from {redact(source)}: {first_line(exc, 160)}: check the DSN "
                         "(host, port, user, database) or hand over a file from synap-verify stats export") from None


# --------------------------------------------------------------------------------------------- shaping

@dataclass(frozen=True)
class ColumnShape:
    """A column's generated distribution: ``values`` with cumulative probabilities ``cdf``."""

    values: np.ndarray  # COPY texts (or OWN); the last slot is NULL
    cdf: np.ndarray  # one per value; the last is 1.0
    order: int = 0  # 1: values rise with the physical row order (pg_stats.correlation >= ORDERED), -1: fall, 0: unrelated

    def non_null(self) -> ColumnShape:
        """The distribution without its NULL share: for columns whose NULLs a row rule decides."""
        body = self.cdf[-2] if len(self.cdf) > 1 and self.cdf[-2] > 0 else 1.0
        return ColumnShape(self.values, np.minimum(self.cdf / body, 1.0), self.order)

    def draw(self, j: np.ndarray, count: int, salt: int, physical: tuple[int, int]) -> list[str]:
        """Values of logical rows ``j`` of ``count``: stratified, not sampled. A bijection of 0..count-1 puts every
        row on its own quantile, so each value gets its frequency's share of the rows to within one row (the
        copy's MCVs and NULL share are the source's, not a sample's). The bijection is salted (an order unrelated
        to the rows'), or, for an ordered column, the row's physical position (``j = (a*i + b) mod count``
        inverted), so the copy's correlation is the source's."""
        if self.order:
            a, b = physical
            pos = ((j - b) * pow(a, -1, count)) % count
            pos = pos if self.order > 0 else count - 1 - pos
        else:
            a = (0x9E3779B1 + 2 * salt) % count or 1
            while math.gcd(a, count) != 1:
                a += 1
            pos = (j * a + salt) % count
        u = (pos + 0.5) / count
        return self.values[np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.values) - 1)].tolist()  # type: ignore[no-any-return]


@dataclass
class Shape:
    """What the statistics say about the tables to fill: row counts, column distributions, FK fan-out."""

    stats: Stats
    factor: float
    columns: dict[tuple[str, str], ColumnShape] = field(default_factory=dict)  # (table, column)
    notes: list[str] = field(default_factory=list)

    def table(self, table: Table) -> TableStats | None:
        return self.stats.tables.get(f"{table.schema}.{table.name}")

    def rows(self, table: Table) -> int | None:
        """Production's row count times the factor (None: no statistics, the profile decides)."""
        ts = self.table(table)
        if ts is None or ts.reltuples < 0:
            return None
        return max(1, round(ts.reltuples * self.factor)) if ts.reltuples > 0 else 0

    def null_frac(self, table: Table, column: str) -> float | None:
        ts = self.table(table)
        cs = ts.columns.get(column) if ts else None
        return cs.null_frac if cs else None

    def fk_spread(self, table: Table, column: str, parent: Table) -> float:
        """The share of parent rows that children reference, as the FK column's n_distinct states it."""
        ts, ps = self.table(table), self.table(parent)
        cs = ts.columns.get(column) if ts else None
        if cs is None or ts is None or ps is None or ps.reltuples <= 0:
            return 1.0
        return min(1.0, max(cs.distinct(ts.reltuples) / ps.reltuples, 1e-9))


def build_shape(conn: psycopg.Connection, catalog: Catalog, stats: Stats, factor: float,
                base_type: dict[str, str]) -> Shape:
    """Match the statistics to the catalog and build every column's checked distribution."""
    shape = Shape(stats, factor)
    check_matches(stats, catalog)
    shape.notes.append(f"statistics: data shaped by the statistics of {len(stats.tables)} tables, row counts "
                       f"production's x {factor:g} (only reltuples and pg_stats were read, never a row)")
    ids = id_columns(catalog)
    for table in catalog.tables.values():
        ts = shape.table(table)
        if ts is None:
            if table.partition_of is None:
                shape.notes.append(f"statistics: none for {table.schema}.{table.name}: its rows follow the profile")
            continue
        rows = shape.rows(table) or 0
        for name, cs in ts.columns.items():
            col = table.column(name)
            if col is None:
                shape.notes.append(f"statistics: {table.name}.{name} is not a column of the baseline: ignored")
                continue
            if (f"{table.schema}.{table.name}", name) in ids:
                continue  # made from the row's key (FKs take their NULL share and fan-out from the statistics)
            typ = base_type.get(col.type, col.type)
            made = _column_shape(conn, table, col, typ, cs, rows, shape.notes)
            if made is not None:
                shape.columns[(table.name, name)] = made
    return shape


def id_columns(catalog: Catalog) -> set[tuple[str, str]]:
    """(schema.table, column) of keys, FKs and tenant columns: identifiers a copy makes afresh (never copied)."""
    out = set()
    for t in catalog.tables.values():
        cols = {*t.primary_key, *(c for u in t.uniques for c in u), *(c for fk in t.foreign_keys for c in fk.columns),
                *(c for ix in t.indexes if ix.unique for c in ix.columns), "tenant_id"}
        out |= {(f"{t.schema}.{t.name}", c) for c in cols}
    return out


def check_matches(stats: Stats, catalog: Catalog) -> None:
    """Statistics of another schema are refused: at least half their tables must be in the baseline."""
    ours = {f"{t.schema}.{t.name}" for t in catalog.tables.values()}
    found = [k for k in stats.tables if k in ours]
    if not stats.tables or len(found) * 2 < len(stats.tables):
        missing = sorted(set(stats.tables) - ours)
        raise SynapError(f"the statistics describe another schema ({len(found)} of {len(stats.tables)} tables are in "
                         f"the baseline; missing e.g. {', '.join(missing[:3]) or 'every table'}): export them from the "
                         "database the baseline schema was taken from")


def _column_shape(conn: psycopg.Connection, table: Table, col: Column, typ: str, cs: ColumnStats, rows: int,
                  notes: list[str]) -> ColumnShape | None:
    """NULLs, the MCVs that fit, and the rest of the stated distinct values spread over the histogram."""
    null = cs.null_frac if col.nullable else 0.0
    rest_count = min(MAX_REST, max(0, round(min(cs.distinct(rows), rows * (1 - null))) - len(cs.mcv)))
    rest = _spread(typ, cs.histogram, rest_count)
    fits = _fitting(conn, table, col, typ, list(dict.fromkeys([*cs.mcv, *rest])))
    mcv = [(v, f) for v, f in zip(cs.mcv, cs.mcf, strict=False) if v in fits]
    dropped = [v for v in cs.mcv if v not in fits]
    if dropped:
        notes.append(f"statistics: {table.name}.{col.name}: {len(dropped)} most common value(s) dropped, they do not "
                     f"fit the column's type or CHECK constraints (e.g. {dropped[0][:40]!r})")
    common = {v for v, _ in mcv}
    rest = [v for v in rest if v in fits and v not in common]
    if not mcv and not rest:  # no values stated (json has no MCVs): the generator's own, with the stated NULLs
        return ColumnShape(np.array([OWN, V.NULL], dtype=object), np.array([1.0 - null, 1.0])) if col.nullable else None
    weights = [f for _, f in mcv]
    share = max(0.0, 1.0 - null - sum(weights))
    if rest:  # each at the share it would have among all the values wanted (fewer made: all scale up alike)
        weights += [share / max(len(rest), rest_count)] * len(rest)
    weights = [w * (1 - null) / sum(weights) for w in weights]  # the non-NULL mass, whatever was dropped
    entries = list(zip([v for v, _ in mcv] + rest, weights, strict=True))
    order = laid_out(cs.correlation, np.array(weights) / max(sum(weights), 1e-12))
    if order:  # laid out in physical order: the values in the type's order (quantile order = row order)
        entries.sort(key=lambda e: fits[e[0]])
    probs = np.array([w for _, w in entries] + [null], dtype=np.float64)
    texts = np.empty(len(probs), dtype=object)
    texts[:-1] = [V.copy_escape(v) for v, _ in entries]
    texts[-1] = V.NULL
    cdf = np.cumsum(probs) / probs.sum()
    cdf[-1] = 1.0
    return ColumnShape(texts, cdf, order)


def laid_out(correlation: float | None, shares: np.ndarray) -> int:
    """1/-1 when the column's values follow the physical row order beyond what ties alone make. pg_stats ranks
    equal values by position, so a column of values in random order shows a correlation of about the sum of
    its squared value shares (70/20/10%: 0.54); only the excess over that says the rows are laid out in order."""
    if correlation is None:
        return 0
    ties = float((shares**2).sum())
    excess = (abs(correlation) - ties) / max(1 - ties, 1e-9)
    return 0 if excess < ORDERED else 1 if correlation > 0 else -1


def _spread(typ: str, bounds: Sequence[str], count: int) -> list[str]:
    """``count`` values at evenly spaced quantiles of the equi-depth histogram ``bounds``: drawn uniformly, they
    follow the column's distribution. Numbers and instants are interpolated; other types reuse bounds."""
    if count <= 0 or len(bounds) < 2:
        return []
    q = (np.arange(count) + 0.5) / count * (len(bounds) - 1)
    low, part = np.floor(q).astype(int), q - np.floor(q)
    if typ.startswith(NUMERIC):
        nums = np.array([float(b) for b in bounds])
        vals = nums[low] + part * (nums[np.minimum(low + 1, len(nums) - 1)] - nums[low])
        m = re.match(r"numeric\(\d+,(\d+)\)", typ)
        digits = int(m.group(1)) if m else 0 if typ in ("smallint", "integer", "bigint") else 6
        return list(dict.fromkeys(f"{v:.{digits}f}" for v in vals.tolist()))
    if typ == "date" or typ.startswith("timestamp"):
        parse = date.fromisoformat if typ == "date" else datetime.fromisoformat
        try:
            instants = [parse(b) for b in bounds]
        except ValueError:
            return list(bounds)
        if typ == "date":
            days = np.array([d.toordinal() for d in instants], dtype=np.float64)
            out = days[low] + part * (days[np.minimum(low + 1, len(days) - 1)] - days[low])
            return list(dict.fromkeys(date.fromordinal(int(d)).isoformat() for d in out.tolist()))
        epoch = datetime(1970, 1, 1, tzinfo=getattr(instants[0], "tzinfo", None))
        secs = np.array([(t - epoch).total_seconds() for t in instants])  # type: ignore[operator]
        out = secs[low] + part * (secs[np.minimum(low + 1, len(secs) - 1)] - secs[low])
        return list(dict.fromkeys((epoch + timedelta(seconds=round(s, 3))).isoformat(sep=" ") for s in out.tolist()))
    if typ == "uuid":  # 128-bit numbers: interpolated like integers
        ints = [int(b.replace("-", ""), 16) for b in bounds]
        made = (ints[k] + int(f * (ints[min(k + 1, len(ints) - 1)] - ints[k])) for k, f in zip(low.tolist(), part.tolist(),
                                                                                               strict=True))
        return list(dict.fromkeys(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in (f"{x:032x}" for x in made)))
    if typ.startswith(("text", "character", "citext")):  # a bound and a suffix: sorts just after the bound
        return list(dict.fromkeys(bounds[k] + (f"-{n}" if n else "") for n, k in enumerate(low.tolist())))[:count]
    return list(bounds)


def _fitting(conn: psycopg.Connection, table: Table, col: Column, typ: str, candidates: list[str]) -> dict[str, int]:
    """The candidates the server accepts as the column's type and that pass its single-column CHECKs, with
    their rank in the type's order."""
    if not candidates:
        return {}
    names = set(table.column_names)
    own = [re.sub(r"^CHECK \((.*)\)( NOT VALID)?$", r"\1", d) for _, d in table.checks
           if set(re.findall(r"\w+", re.sub(r"'(?:[^']|'')*'", "", d))) & names == {col.name}]
    same = "v = v::{t}::text" if typ.startswith("character") else "true"  # an explicit cast would truncate
    test = sql.SQL("SELECT v FROM unnest(%s::text[]) AS u(v) WHERE " + same + " AND (SELECT {c} FROM "
                   "(SELECT u.v::{t} AS {n}) AS x) IS NOT FALSE ORDER BY v::{t}").format(
        t=sql.SQL(col.type), n=sql.Identifier(col.name),
        c=sql.SQL(" AND ".join(f"({c})" for c in own) or "true"))
    try:
        with conn.transaction():
            return {r[0]: rank for rank, r in enumerate(conn.execute(test, [candidates]))}
    except psycopg.Error:  # a value the type refuses (or a type without order): judge them one by one
        keep: dict[str, int] = {}
        for value in candidates:
            try:
                with conn.transaction():
                    if conn.execute(test, [[value]]).fetchone():
                        keep[value] = len(keep)
            except psycopg.Error:
                continue
        return keep

