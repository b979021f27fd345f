"""G8 in the data: every counter of the contract equals its aggregate over the rows it counts.

The contract states each counter's source table and aggregate (``count(*)`` unless it says otherwise);
the rows are linked through the source's foreign key to the counter's table (or the contract's ``via``).
One set-based query per counter: the source grouped once by that key, joined to every parent row, the
parents whose stored value differs returned in key order. A counter left one off by a backfill that
ran with its trigger disabled is what this finds; the structural G8 rule (a trigger exists) cannot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from synap_verify.catalog import Catalog, Table, ident
from synap_verify.contract import Contract
from synap_verify.findings import Finding

COUNTER_OFF = "G8-COUNT"
"""A counter differs from its aggregate over the counted rows: recount it from the rows, and check its trigger."""

COUNTER_UNCHECKED = "G8-COUNT-UNCHECKED"
"""A counter whose rows cannot be found (no source table, or no FK to follow): state ``via:`` in the contract."""


@dataclass(frozen=True)
class Counted:
    """One counter, resolved against a catalog: which table, column, source, link and aggregate."""

    schema: str
    group: str
    table: str  # the counter's table as the contract names it (findings and the equivalence use it)
    relation: str  # the counter's table as named in the database checked
    column: str
    source: str  # the counted table, as named in the database checked
    via: str  # the source column pointing at the counter's row
    target: str  # the counter table's column ``via`` points at (its key)
    aggregate: str

    def query(self) -> str:
        """The parents whose stored value differs from the aggregate: key, stored, counted (as text), in key order."""
        parent, child = (f"{ident(self.schema)}.{ident(t)}" for t in (self.relation, self.source))
        via, key, col = ident(self.via), ident(self.target), ident(self.column)
        # a parent with no rows gets the aggregate over no rows (0 for count(*), NULL for a bare avg)
        value = "CASE WHEN n.k IS NULL THEN e.v ELSE n.v END"
        return (f"WITH n AS (SELECT c.{via} AS k, {self.aggregate} AS v FROM {child} c "
                f"WHERE c.{via} IS NOT NULL GROUP BY c.{via}), "
                f"e AS (SELECT {self.aggregate} AS v FROM {child} c WHERE false) "
                f"SELECT p.{key}::text, p.{col}::text, ({value})::text FROM {parent} p "
                f"LEFT JOIN n ON n.k = p.{key} CROSS JOIN e WHERE p.{col} IS DISTINCT FROM {value} ORDER BY p.{key}")


@dataclass(frozen=True)
class Drift:
    """The rows of one counter that disagree with their aggregate: ``off`` maps key -> (stored, counted)."""

    counted: Counted
    off: dict[str, tuple[str | None, str | None]]


def plan(catalog: Catalog, contract: Contract, groups: Iterable[str] = (),
         legacy: bool = False) -> tuple[list[Counted], list[Finding]]:
    """Every counter with a source over the selected groups, resolved; a finding for each that cannot be.

    ``legacy``: the catalog is of a legacy (or downgraded) database, so tables go by their legacy names.
    A counter over rows of a group not selected is left to a run with both groups (:func:`judged_apart`).
    """
    selected = set(groups) or set(contract.groups)
    mapping = contract.mapping()

    def named(table: str) -> Table | None:
        return catalog.table((mapping.legacy_table(table) or table) if legacy else table)

    resolved: list[Counted] = []
    unresolved: list[Finding] = []
    for spec in contract.tables_in(selected):
        for counter in spec.counters.values():
            if judged_apart(contract, spec.name, counter.column, selected):
                continue
            table, child = named(spec.name), named(counter.source or "")
            if counter.source is None or table is None or table.column(counter.column) is None:
                continue  # nothing counted, or the contract check reports the missing table or column
            link = _link(table, child, counter.via)
            if child is None or link is None:
                why = f"{counter.source} is missing" if child is None else \
                    f"{child.name} has no single-column FK to {table.name}"
                unresolved.append(Finding(COUNTER_UNCHECKED, spec.group, spec.name,
                                          f"{spec.name}.{counter.column} cannot be checked against its rows: {why}; "
                                          f"state the linking column as `via:` in the contract ({COUNTER_UNCHECKED})",
                                          column=counter.column, expected=f"rows of {counter.source}", actual=why))
                continue
            resolved.append(Counted(contract.schemas[0], spec.group, spec.name, table.name, counter.column,
                                    child.name, *link, counter.aggregate))
    return resolved, unresolved


def judged_apart(contract: Contract, table: str, column: str, groups: Iterable[str]) -> str | None:
    """Why a counter is not judged over ``groups``: the rows it counts belong to a group not selected. Its trigger
    and recount may come with either group (the reference recounts with the counted rows' group), so a run of
    one of the two cannot tell a drift the other group fixes from a defect."""
    source = contract.tables.get(contract.tables[table].counters[column].source or "")
    if source is None or source.group in set(groups):
        return None
    return f"{table}.{column} counts {source.name} of group {source.group}, which this run does not migrate: " \
           f"judged when both groups run"


def _link(table: Table, child: Table | None, via: str | None) -> tuple[str, str] | None:
    """(source column, parent column): the contract's ``via`` to the parent's key, else the source's FK to it."""
    if child is None:
        return None
    if via is not None:
        return (via, table.primary_key[0]) if child.column(via) and len(table.primary_key) == 1 else None
    fks = [fk for fk in child.foreign_keys if fk.target_table == table.name and len(fk.columns) == 1]
    return (fks[0].columns[0], fks[0].target_columns[0]) if fks else None


def measure(conn: psycopg.Connection, counted: Counted) -> Drift:
    return Drift(counted, {k: (stored, value) for k, stored, value in conn.execute(counted.query())})


def finding(drift: Drift) -> Finding | None:
    """One finding per counter that is off: how many rows, and the first key with its stored and counted values."""
    if not drift.off:
        return None
    c = drift.counted
    key, (stored, value) = next(iter(drift.off.items()))
    return Finding(COUNTER_OFF, c.group, c.table,
                   f"{c.relation}.{c.column}: {len(drift.off)} rows differ from {c.aggregate} over {c.source} "
                   f"(e.g. {c.target} {key}: stored {stored}, counted {value}); recount them from {c.source} and "
                   f"check the trigger that keeps them in sync ({COUNTER_OFF})",
                   column=c.column, expected=value, actual=stored)


def check(conn: psycopg.Connection, catalog: Catalog, contract: Contract, groups: Iterable[str] = (),
          legacy: bool = False) -> tuple[list[Finding], list[Drift]]:
    """Every counter measured: the findings (off or unchecked) and each counter's drift, for the equivalence."""
    resolved, findings = plan(catalog, contract, groups, legacy)
    drifts = [measure(conn, c) for c in resolved]
    findings += [f for d in drifts if (f := finding(d)) is not None]
    return findings, drifts


def main(argv: list[str] | None = None) -> int:
    """``python -m synap_verify.integrity.counters --dsn DSN``: the check with each counter's time (a benchmark
    command; the check itself runs in ``synap-verify equivalence`` and the integrity suite)."""
    import argparse
    import time

    from synap_verify.catalog import read_catalog
    from synap_verify.contract import load_contract
    from synap_verify.errors import SynapError
    from synap_verify.findings import render_text
    from synap_verify.integrity.equivalence import connect
    from synap_verify.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m synap_verify.integrity.counters", description=main.__doc__)
    parser.add_argument("--dsn", required=True, help="the migrated database (read only)")
    parser.add_argument("--contract", default=Settings.contract)
    args = parser.parse_args(argv)
    try:
        with connect(args.dsn) as conn:
            catalog = read_catalog(conn)
            resolved, findings = plan(catalog, load_contract(args.contract))
            began = time.perf_counter()
            for counted in resolved:
                start = time.perf_counter()
                drift = measure(conn, counted)
                rows = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                                    (f"{counted.schema}.{counted.source}",)).fetchone()
                print(f"{counted.table}.{counted.column:<18} over {counted.source:<22} ~{rows[0] if rows else 0:>10,} "
                      f"rows  {time.perf_counter() - start:7.3f}s  {len(drift.off)} off")
                findings += [f for f in (finding(drift),) if f is not None]
    except SynapError as exc:
        print(f"synap-verify: {exc}")
        return 2
    print(render_text(findings) or "no finding")
    print(f"{len(resolved)} counters checked in {time.perf_counter() - began:.2f}s")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
