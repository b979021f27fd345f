"""A statement's legacy form and its new form, through the contract's table and column renames.

A production workload is written in one application's names: the old application's statements name
``llms_messages`` and ``meta_data``, the new one's ``messages`` and ``metadata``. For a zero-downtime run
each statement is needed in both: the old application runs the legacy form through the expand, the new
application the new form from the switch on. The statement is parsed by PostgreSQL's own parser
(pglast, libpg_query), every relation and column reference is resolved against the statement's scopes
(FROM items, aliases, joins, subqueries, CTEs, RETURNING, ON CONFLICT), and only the tokens that resolve
to a renamed table or to a renamed column *of that table* are replaced in the original text, which is
otherwise kept as written (comments, casts, layout). An unqualified column that could belong to more
than one relation in scope, one of them renamed, is never guessed: the statement is reported as
unmappable with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pglast import ast, parse_sql
from pglast.enums import SetOperation
from pglast.parser import ParseError, scan

from synap_verify.contract import Contract
from synap_verify.groups import SCHEMA as S

Side = Literal["legacy", "new"]
Columns = dict[str, set[str]]  # table -> its column names
SIMPLE = re.compile(r"[a-z_][a-z0-9_$]*")


class Unmappable(Exception):
    """The statement cannot be mapped without guessing (the message says why)."""


@dataclass(frozen=True)
class Forms:
    """A statement in the legacy and the new names, and each name mapped (``old -> new``); ``reason`` when unmappable."""

    legacy: str = ""
    new: str = ""
    mapped: tuple[str, ...] = ()  # legacy -> new, whichever names the statement was taken in
    reason: str = ""


@dataclass
class _Entry:
    """A relation in scope: how the statement names it, its columns (None: unknown), its column renames."""

    name: str
    columns: set[str] | None
    renames: dict[str, str] = field(default_factory=dict)
    table: str | None = None  # the table of the schema it is, under the statement's names
    aliased: bool = False
    rename_to: str | None = None  # its name on the other side, when the table is renamed and named without alias


class Mapper:
    """Maps statements between the legacy and the new names of ``contract``, with ``catalog`` of a database.

    ``catalog`` (table -> columns, of either shape, or the expanded one) tells which columns each table
    has, so an unqualified name can be resolved as PostgreSQL would; G3's global column renames apply to
    the contract's tables whose catalog entry still has the old name.
    """

    def __init__(self, contract: Contract, catalog: dict[str, Any]) -> None:
        mapping = contract.mapping()
        self.tables: dict[Side, dict[str, str]] = {"new": {o: n for o, n in mapping.tables.items() if o != n}, "legacy": {}}
        self.tables["legacy"] = {n: o for o, n in self.tables["new"].items()}
        g3 = dict(contract.rules.renamed_columns) if "G3" in contract.rules.enabled else {}
        to_new: dict[str, dict[str, str]] = {}  # legacy table -> {legacy column: new column}
        for legacy, target in mapping.tables.items():
            have = set(catalog.get(legacy, ())) | set(catalog.get(target, ()))
            renames = {o: n for o, n in g3.items() if o in have and n not in set(catalog.get(legacy, ()))}
            renames.update(mapping.columns.get(target, {}))
            if renames:
                to_new[legacy] = renames
        self.columns: dict[Side, dict[str, dict[str, str]]] = {
            "new": to_new,
            "legacy": {self.tables["new"].get(t, t): {n: o for o, n in r.items()} for t, r in to_new.items()}}
        # columns of each table under both sides' names (renamed columns under both names: a superset is
        # conservative, it can only make an unqualified name ambiguous, never resolve it wrongly)
        self.known: Columns = {}
        for table, cols in catalog.items():
            legacy = self.tables["legacy"].get(table, table)
            names = set(cols) | set(to_new.get(legacy, {}).values()) | set(to_new.get(legacy, {}))
            for name in {table, legacy, self.tables["new"].get(legacy, legacy)}:
                self.known.setdefault(name, set()).update(names)

    def shape(self, catalog: dict[str, Any]) -> Side:
        """The names ``catalog`` has: new when every renamed table and column is there under its new name
        (the migrated schema, or the expanded one, which has both), legacy otherwise."""
        tables = all(t in catalog for t in self.tables["new"].values())
        columns = all(n in catalog.get(self.tables["new"].get(t, t), ()) for t, r in self.columns["new"].items()
                      for n in r.values())
        return "new" if tables and columns else "legacy"

    def names(self) -> set[str]:
        """Every table name of either side (a statement on any of them is on the schema)."""
        return set(self.known) | set(self.tables["new"]) | set(self.tables["legacy"])

    def to(self, query: str, side: Side) -> tuple[str, list[str]]:
        """``query`` with the other side's names replaced by ``side``'s, and the names mapped (``a -> b``)."""
        return _Pass(self, query, side).run()

    def forms(self, query: str) -> Forms:
        """Both forms of ``query``, whichever names it was written in; ``reason`` set when it cannot be mapped."""
        try:
            legacy, _ = self.to(query, "legacy")
            new, forward = self.to(legacy, "new")
        except Unmappable as exc:
            return Forms(reason=f"not mapped through the contract: {exc}")
        return Forms(legacy, new, tuple(forward))


class _Pass:
    """One walk over one statement, replacing the source side's names by ``side``'s."""

    def __init__(self, mapper: Mapper, query: str, side: Side) -> None:
        self.m, self.query, self.side = mapper, query, side
        self.tables = mapper.tables[side]  # source table name -> this side's
        self.renames = mapper.columns[side]  # source table name -> {source column: this side's}
        self.edits: dict[int, tuple[int, str]] = {}  # token start -> (end, replacement)
        self.mapped: list[str] = []
        try:
            self.tokens = scan(query)
            self.stmts = parse_sql(query)
        except ParseError as exc:
            raise Unmappable(f"does not parse: {exc}") from None
        self.at = {t.start: i for i, t in enumerate(self.tokens)}

    def run(self) -> tuple[str, list[str]]:
        if len(self.stmts) != 1:
            raise Unmappable(f"{len(self.stmts)} statements in one text")
        self.statement(self.stmts[0].stmt, [], {})
        text = self.query
        for start, (end, new) in sorted(self.edits.items(), reverse=True):
            text = text[:start] + new + text[end + 1:]
        return text, list(dict.fromkeys(self.mapped))

    # -- tokens -------------------------------------------------------------------------------------------

    def _replace(self, location: int, offset: int, expected: str, new: str, what: str) -> None:
        """Replace the identifier ``offset`` tokens after the one at ``location`` (a qualified name's parts)."""
        index = self.at.get(location)
        if index is None or index + offset >= len(self.tokens):
            raise Unmappable(f"cannot place {expected!r} in the text")
        token = self.tokens[index + offset]
        written = self.query[token.start:token.end + 1]
        quoted = written.startswith('"')
        if (written[1:-1] if quoted else written.lower()) != expected:
            raise Unmappable(f"cannot place {expected!r} in the text (found {written!r})")
        self.edits[token.start] = (token.end, f'"{new}"' if quoted or not SIMPLE.fullmatch(new) else new)
        self.mapped.append(f"{what} -> {new}")

    # -- statements ---------------------------------------------------------------------------------------

    def statement(self, node: Any, outer: list[list[_Entry]], ctes: dict[str, _Entry]) -> tuple[list[str] | None, dict[str, str]]:
        """Map one statement; its output column names (None: not known) and the output names it renamed."""
        if isinstance(node, ast.SelectStmt):
            return self.select(node, outer, ctes)
        if not isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
            raise Unmappable(f"a {type(node).__name__} is not a DML statement")
        ctes = self.with_(node.withClause, outer, ctes)
        target = self.relation(node.relation, ctes)
        level = [target]
        if isinstance(node, ast.InsertStmt):
            for col in node.cols or ():
                self.column_name(target, col.name, col.location)
            if node.selectStmt is not None:
                self.select(node.selectStmt, outer, ctes)
            self.on_conflict(node.onConflictClause, target, outer, ctes)
        elif isinstance(node, ast.UpdateStmt):
            for item in node.fromClause or ():
                self.from_item(item, level, outer, ctes)
            for col in node.targetList or ():
                self.column_name(target, col.name, col.location)
                self.expr(col.val, [level, *outer], ctes)
        else:
            for item in node.usingClause or ():
                self.from_item(item, level, outer, ctes)
        self.expr(getattr(node, "whereClause", None), [level, *outer], ctes)
        returning = node.returningClause
        outputs: list[str] | None = []
        renamed: dict[str, str] = {}
        if returning is not None:
            outputs, renamed = self.targets(returning.exprs, [level, *outer], ctes)
        return outputs, renamed

    def on_conflict(self, clause: Any, target: _Entry, outer: list[list[_Entry]], ctes: dict[str, _Entry]) -> None:
        if clause is None:
            return
        excluded = _Entry("excluded", target.columns, target.renames)
        scopes = [[target, excluded], *outer]
        for elem in (clause.infer.indexElems or ()) if clause.infer else ():
            if elem.name in target.renames:  # an IndexElem has no position in the text to map it at
                raise Unmappable(f"ON CONFLICT ({elem.name}) names a renamed column")
            self.expr(elem.expr, [[target], *outer], ctes)  # an expression's column references do
        if clause.infer:
            self.expr(clause.infer.whereClause, scopes, ctes)
        for col in clause.targetList or ():
            self.column_name(target, col.name, col.location)
            self.expr(col.val, scopes, ctes)
        self.expr(clause.whereClause, scopes, ctes)

    def select(self, node: Any, outer: list[list[_Entry]],
               ctes: dict[str, _Entry]) -> tuple[list[str] | None, dict[str, str]]:
        ctes = self.with_(node.withClause, outer, ctes)
        if node.op != SetOperation.SETOP_NONE:
            outputs, renamed = self.select(node.larg, outer, ctes)
            self.select(node.rarg, outer, ctes)
            result = _Entry("", set(outputs) if outputs is not None else None, renamed)
            for part in (node.sortClause, node.limitCount, node.limitOffset):
                self.expr(part, [[result], *outer], ctes)
            return outputs, renamed
        if node.valuesLists:
            self.expr(node.valuesLists, outer, ctes)
            return None, {}
        level: list[_Entry] = []
        for item in node.fromClause or ():
            self.from_item(item, level, outer, ctes)
        scopes = [level, *outer]
        outputs, renamed = self.targets(node.targetList, scopes, ctes)
        for part in (node.whereClause, node.groupClause, node.havingClause, node.windowClause, node.sortClause,
                     node.distinctClause, node.limitCount, node.limitOffset):
            self.expr(part, scopes, ctes)
        return outputs, renamed

    def targets(self, items: Any, scopes: list[list[_Entry]],
                ctes: dict[str, _Entry]) -> tuple[list[str] | None, dict[str, str]]:
        """Map a target list; its output names, and the implicit ones a renamed column changed (a subquery's
        ``SELECT meta_data`` is read as ``sub.meta_data`` outside, which must follow)."""
        outputs: list[str] | None = []
        renamed: dict[str, str] = {}
        for item in items or ():
            val: Any = item.val
            new = None
            if isinstance(val, ast.ColumnRef):
                new = self.column_ref(val, scopes)
            else:
                self.expr(val, scopes, ctes)
            if item.name:
                name = str(item.name)
            elif isinstance(val, ast.ColumnRef) and isinstance(last := (val.fields or (None,))[-1], ast.String):
                name = str(last.sval)
                if new:
                    renamed[name] = new
            elif isinstance(val, ast.ColumnRef):  # * or t.*: the columns are not listed
                outputs = None
                continue
            else:
                name = "?column?"
            if outputs is not None:
                outputs.append(name)
        return outputs, renamed

    def with_(self, clause: Any, outer: list[list[_Entry]], ctes: dict[str, _Entry]) -> dict[str, _Entry]:
        if clause is None:
            return ctes
        ctes = dict(ctes)
        for cte in clause.ctes:
            outputs, renamed = self.statement(cte.ctequery, outer, ctes)
            if cte.aliascolnames:
                outputs, renamed = [c.sval for c in cte.aliascolnames], {}
            ctes[cte.ctename] = _Entry(cte.ctename, set(outputs) if outputs is not None else None, renamed)
        return ctes

    # -- FROM ---------------------------------------------------------------------------------------------

    def relation(self, rv: Any, ctes: dict[str, _Entry]) -> _Entry:
        alias = rv.alias.aliasname if rv.alias else None
        if rv.schemaname is None and rv.relname in ctes:
            cte = ctes[rv.relname]
            return _Entry(alias or rv.relname, cte.columns, cte.renames)
        if rv.schemaname not in (None, S) or rv.catalogname:
            return _Entry(alias or rv.relname, None)
        name = rv.relname
        renamed = self.tables.get(name)
        if renamed:
            self._replace(rv.location, 2 if rv.schemaname else 0, name, renamed, name)
        return _Entry(alias or name, self.m.known.get(name), self.renames.get(name, {}), name, alias is not None,
                      renamed if not alias else None)

    def from_item(self, item: Any, level: list[_Entry], outer: list[list[_Entry]], ctes: dict[str, _Entry]) -> None:
        if isinstance(item, ast.RangeVar):
            level.append(self.relation(item, ctes))
        elif isinstance(item, ast.JoinExpr):
            if item.alias is not None or item.join_using_alias is not None:
                raise Unmappable("a join with an alias of its own")
            self.from_item(item.larg, level, outer, ctes)
            self.from_item(item.rarg, level, outer, ctes)
            for name in item.usingClause or ():  # a USING name has no position in the text to map it at
                if any(name.sval in e.renames for e in level):
                    raise Unmappable(f"USING ({name.sval}) names a renamed column")
            if item.isNatural and any(e.renames for e in level):
                raise Unmappable("a NATURAL join with a table that has renamed columns")
            self.expr(item.quals, [level, *outer], ctes)
        elif isinstance(item, ast.RangeSubselect):
            outputs, renamed = self.select(item.subquery, [level, *outer] if item.lateral else outer, ctes)
            if item.alias and item.alias.colnames:
                outputs, renamed = [c.sval for c in item.alias.colnames], {}
            level.append(_Entry(str(item.alias.aliasname) if item.alias else "",
                                set(outputs) if outputs is not None else None, renamed))
        elif isinstance(item, ast.RangeFunction):
            self.expr(item.functions, [level, *outer] if item.lateral else outer, ctes)
            cols = {c.sval for c in item.alias.colnames} if item.alias and item.alias.colnames else None
            level.append(_Entry(str(item.alias.aliasname) if item.alias else "", cols))
        else:
            raise Unmappable(f"a FROM item of kind {type(item).__name__}")

    # -- expressions --------------------------------------------------------------------------------------

    def expr(self, node: Any, scopes: list[list[_Entry]], ctes: dict[str, _Entry]) -> None:
        if node is None or isinstance(node, str | int | float | bool):
            return
        if isinstance(node, tuple | list):
            for item in node:
                self.expr(item, scopes, ctes)
        elif isinstance(node, ast.ColumnRef):
            self.column_ref(node, scopes)
        elif isinstance(node, ast.SelectStmt):
            self.select(node, scopes, ctes)
        elif isinstance(node, ast.Node):
            for name in node.__slots__:  # type: ignore[attr-defined]
                self.expr(getattr(node, name), scopes, ctes)

    def column_name(self, target: _Entry, name: str | None, location: int) -> None:
        """A column written by INSERT (columns), UPDATE SET or ON CONFLICT DO UPDATE SET."""
        if name and name in target.renames:
            self._replace(location, 0, name, target.renames[name], f"{target.table or target.name}.{name}")

    def column_ref(self, ref: Any, scopes: list[list[_Entry]]) -> str | None:
        """Map a column reference; the column's new name when it is renamed."""
        names = [str(f.sval) for f in ref.fields if isinstance(f, ast.String)]
        star = not isinstance(ref.fields[-1], ast.String)
        if not names:
            return None
        if len(names) == 1 and not star:
            return self.unqualified(ref, names[0], scopes)
        qualifier = names[-1] if star else names[-2]
        at = len(names) - (1 if star else 2)  # the qualifier's index among the fields
        schema_given = at > 0
        entry = next((e for level in scopes for e in level
                      if e.name == qualifier and (not schema_given or not e.aliased and e.table == qualifier)), None)
        if entry is None:
            return None
        if entry.rename_to:
            self._replace(ref.location, 2 * at, qualifier, entry.rename_to, qualifier)
        if star or names[-1] not in entry.renames:
            return None
        self._replace(ref.location, 2 * (at + 1), names[-1], entry.renames[names[-1]],
                      f"{entry.table or qualifier}.{names[-1]}")
        return entry.renames[names[-1]]

    def unqualified(self, ref: Any, name: str, scopes: list[list[_Entry]]) -> str | None:
        """A bare column name, resolved as PostgreSQL does: the innermost level where some relation has it."""
        if not any(name in e.renames for level in scopes for e in level):
            whole = next((e for level in scopes for e in level if e.name == name and e.rename_to
                          and name not in (e.columns or ())), None)
            if whole is not None:  # a whole-row reference to a renamed table: to_jsonb(llms_messages)
                self._replace(ref.location, 0, name, whole.rename_to or name, name)
            return None
        for level in scopes:
            has = [e for e in level if e.columns is not None and name in e.columns]
            unknown = [e for e in level if e.columns is None]
            if not has and not unknown:
                continue
            if len(has) == 1 and not unknown:
                entry = has[0]
                if name not in entry.renames:
                    return None
                self._replace(ref.location, 0, name, entry.renames[name], f"{entry.table or entry.name}.{name}")
                return entry.renames[name]
            others = ", ".join(e.name or "(a subquery)" for e in has + unknown)
            raise Unmappable(f"column {name} is not qualified and could belong to any of {others} "
                             "(one of them renames it): qualify it")
        return None
