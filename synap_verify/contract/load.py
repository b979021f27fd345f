"""Load and validate a contract file; every mistake is one line naming ``file:line`` and what was expected.

The YAML is composed (not just parsed) so each value keeps the line it came from; ``extends:`` merges a
base contract under the file (mappings merge key by key, lists and scalars replace), and each line
number still points into the file that wrote the value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from synap_verify.contract.model import (
    MANUAL,
    ON_DELETE_ACTIONS,
    RULE_IDS,
    TENANT_MODES,
    CheckSpec,
    ColumnSpec,
    Contract,
    CounterSpec,
    DropSpec,
    FkDefault,
    ForeignKeySpec,
    MoveSpec,
    Rules,
    TableSpec,
    Unlisted,
)
from synap_verify.errors import SynapError
from synap_verify.groups import GROUPS, SCHEMA
from synap_verify.rules import rule

Path_ = tuple[str, ...]
Lines = dict[Path_, tuple[Path, int]]

# libyaml's parser when PyYAML has it (the contract of the reference: 0.14 s a read in Python, read several times a run)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TYPE_ALIASES = {
    "timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone", "int": "integer",
    "int4": "integer", "int8": "bigint", "bool": "boolean", "varchar": "character varying",
}
TABLE_KEYS = {"legacy_name", "tenant", "jsonb", "timestamptz", "columns", "renamed", "dropped", "foreign_keys",
              "on_delete", "gin", "checks", "counters", "tenant_parents", "shared", "indexes", "tenant_keys"}


def load_contract(path: Path | str) -> Contract:
    """Read, merge (``extends``) and validate a contract file."""
    path = Path(path).expanduser().resolve()
    data, lines = _read_with_bases(path, ())
    return _Validator(lines, path).contract(data)


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], Lines]:
    if path in seen:
        raise SynapError(f"{path}: 'extends' loops back to itself ({' -> '.join(p.name for p in (*seen, path))})")
    data, lines = _compose(path)
    base = data.pop("extends", None)
    if base is None:
        return data, lines
    if not isinstance(base, str):
        raise SynapError(f"{path}:{lines[('extends',)][1]}: extends: expected a file path")
    base_path = (path.parent / base).resolve()
    if not base_path.is_file():
        raise SynapError(f"{path}:{lines[('extends',)][1]}: extends: {base_path} does not exist")
    base_data, base_lines = _read_with_bases(base_path, (*seen, path))
    return _merge(base_data, data), {**base_lines, **lines}


def _compose(path: Path) -> tuple[dict[str, Any], Lines]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SynapError(f"cannot read contract {path}: {exc.strerror}") from None
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SynapError(f"{path}:1: the contract is empty; expected 'rules' and 'groups'")
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise SynapError(f"{path}:{line}: invalid YAML: {exc.problem or exc.context}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SynapError(f"{path}:1: expected a mapping with 'rules' and 'groups' at the top level")
    lines: Lines = {}
    _walk(node, (), path, lines)
    return data, lines


def _walk(node: yaml.Node, at: Path_, path: Path, lines: Lines) -> None:
    """Record the line of every value, and refuse duplicate keys (YAML would silently keep the last)."""
    lines[at] = (path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in keys:
                raise SynapError(f"{path}:{key_node.start_mark.line + 1}: duplicate key '{key}'")
            keys.add(key)
            _walk(value_node, (*at, key), path, lines)
            lines[(*at, key)] = (path, key_node.start_mark.line + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*at, str(i)), path, lines)


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) if k in base else v for k, v in over.items()}}
    return over


class _Validator:
    """Turns the merged plain data into a :class:`Contract`, failing on the first mistake."""

    def __init__(self, lines: Lines, path: Path) -> None:
        self.lines = lines
        self.path = path

    def fail(self, at: Path_, message: str) -> SynapError:
        for n in range(len(at), -1, -1):
            if at[:n] in self.lines:
                file, line = self.lines[at[:n]]
                break
        else:
            file, line = self.path, 1
        where = ".".join(at)
        return SynapError(f"{file}:{line}: {where + ': ' if where else ''}{message}")

    # -- shapes -------------------------------------------------------------------------------
    def mapping(self, value: Any, at: Path_, allowed: Iterable[str] | None = None, what: str = "key") -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(at, f"expected a mapping, got {_kind(value)}")
        if allowed is not None:
            known = sorted(allowed)
            for key in value:
                if str(key) not in known:
                    close = difflib.get_close_matches(str(key), known, n=1)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    raise self.fail((*at, str(key)), f"unknown {what} '{key}'{hint} (expected one of: {', '.join(known)})")
        return {str(k): v for k, v in value.items()}

    def string(self, value: Any, at: Path_) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(at, f"expected a non-empty string, got {_kind(value)}")
        return value.strip()

    def strings(self, value: Any, at: Path_) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(at, f"expected a list of names, got {_kind(value)}")
        return tuple(self.string(v, (*at, str(i))) for i, v in enumerate(value))

    def boolean(self, value: Any, at: Path_) -> bool:
        if not isinstance(value, bool):
            raise self.fail(at, f"expected true or false, got {_kind(value)}")
        return value

    def choice(self, value: Any, at: Path_, choices: Iterable[str], what: str) -> str:
        text = self.string(value, at)
        options = list(choices)
        if text not in options:
            close = difflib.get_close_matches(text, options, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise self.fail(at, f"unknown {what} '{text}'{hint} (expected one of: {', '.join(options)})")
        return text

    def pattern(self, value: Any, at: Path_) -> str:
        text = self.string(value, at)
        try:
            re.compile(text)
        except re.error as exc:
            raise self.fail(at, f"not a valid regular expression: {exc}") from None
        return text

    def type_name(self, value: Any, at: Path_) -> str:
        text = " ".join(self.string(value, at).lower().split())
        return TYPE_ALIASES.get(text, text)

    # -- the document -------------------------------------------------------------------------
    def contract(self, data: dict[str, Any]) -> Contract:
        top = self.mapping(data, (), {"version", "schemas", "rules", "groups", "unlisted", "moves"})
        if top.get("version", 1) != 1:
            raise self.fail(("version",), f"unsupported contract version {top['version']!r} (expected 1)")
        schemas = self.strings(top.get("schemas"), ("schemas",)) or (SCHEMA,)
        rules = self.rules(top.get("rules"))
        tables: dict[str, TableSpec] = {}
        groups = self.mapping(top.get("groups"), ("groups",), GROUPS, "group")
        legacy_owner: dict[str, str] = {}
        for group, body in groups.items():
            for name, raw in self.mapping(body, ("groups", group)).items():
                at = ("groups", group, name)
                if name in tables:
                    raise self.fail(at, f"table '{name}' is already listed in group '{tables[name].group}'")
                spec = self.table(name, group, raw, at, rules)
                for old in filter(None, (spec.legacy_name,)):
                    if old in legacy_owner or old in tables:
                        raise self.fail((*at, "legacy_name"), f"'{old}' is already the name of another table")
                    legacy_owner[old] = name
                tables[name] = spec
        clash = next((n for n in tables if n in legacy_owner), None)
        if clash:
            at = ("groups", tables[clash].group, clash)
            raise self.fail(at, f"'{clash}' is also the legacy name of '{legacy_owner[clash]}'")
        unlisted = None
        if top.get("unlisted") is not None:
            body = self.mapping(top["unlisted"], ("unlisted",), {"group", "tenant"})
            if "group" not in body:
                raise self.fail(("unlisted",), "expected 'group: <group>' (the group unlisted tables are judged in)")
            unlisted = Unlisted(self.choice(body["group"], ("unlisted", "group"), GROUPS, "group"),
                                self.choice(body.get("tenant", "required"), ("unlisted", "tenant"), TENANT_MODES,
                                            "tenant mode"))
        moves = {group: self.move(group, body, tables) for group, body in self.mapping(top.get("moves"), ("moves",),
                                                                                      groups, "group of the contract").items()}
        return Contract(self.path, schemas, rules, tables, tuple(groups), unlisted, moves)

    def move(self, group: str, raw: Any, tables: dict[str, TableSpec]) -> MoveSpec:
        at = ("moves", group)
        body = self.mapping(raw, at, {"file", "settles"})
        if "file" not in body or not body.get("settles"):
            raise self.fail(at, "expected 'file: <path in the migrations folder>' and 'settles: [table.column, ...]'")
        file = self.string(body["file"], (*at, "file"))
        if Path(file).is_absolute() or ".." in Path(file).parts or not file.endswith(".py"):
            raise self.fail((*at, "file"), f"expected a .py file inside the migrations folder, got '{file}'")
        settles = []
        for i, item in enumerate(self.strings(body["settles"], (*at, "settles"))):
            table, _, column = item.partition(".")
            if not column or tables.get(table) is None or tables[table].group != group:
                raise self.fail((*at, "settles", str(i)), f"expected <table>.<column> of a table of group '{group}', "
                                                          f"got '{item}'")
            settles.append((table, column))
        return MoveSpec(group, file, tuple(settles))

    def rules(self, raw: Any) -> Rules:
        rules = self.mapping(raw, ("rules",), RULE_IDS, "rule id")
        params: dict[str, Any] = {}
        enabled = set(RULE_IDS)
        for rule_id, body in rules.items():
            at = ("rules", rule_id)
            if body is False:
                enabled.discard(rule_id)
                continue
            values = self.mapping(body, at, {*rule(rule_id).params, "enabled"}, f"parameter of {rule_id}")
            if "enabled" in values and not self.boolean(values.pop("enabled"), (*at, "enabled")):
                enabled.discard(rule_id)
            params.update(self.rule_params(rule_id, values, at))
        defaults = Rules()
        classes = params.get("action_classes", defaults.action_classes)
        targets = {t: self.action(a, ("rules", "G4", "targets", t), classes) for t, a in params.pop("raw_targets", {}).items()}
        defaults_at = ("rules", "G4", "defaults")
        raw_defaults = params.pop("raw_defaults", None) or []
        if not isinstance(raw_defaults, list):
            raise self.fail(defaults_at, "expected a list of {action, column, references, nullable}, "
                                         f"got {_kind(raw_defaults)}")
        fk_defaults = tuple(self.fk_default(d, (*defaults_at, str(i)), classes) for i, d in enumerate(raw_defaults))
        return Rules(enabled=frozenset(enabled), **params, target_actions=targets, fk_defaults=fk_defaults)

    def fk_default(self, raw: Any, at: Path_, classes: dict[str, str]) -> FkDefault:
        body = self.mapping(raw, at, {"action", "column", "references", "nullable"})
        if "action" not in body:
            raise self.fail(at, f"expected 'action: <ON DELETE action, class or {MANUAL}>'")
        action = self.choice(body["action"], (*at, "action"), (*ON_DELETE_ACTIONS, *classes, MANUAL),
                             "ON DELETE action, class or manual")
        return FkDefault(classes.get(action, action),
                         self.string(body["column"], (*at, "column")) if "column" in body else None,
                         self.string(body["references"], (*at, "references")) if "references" in body else None,
                         self.boolean(body["nullable"], (*at, "nullable")) if "nullable" in body else None)

    def rule_params(self, rule_id: str, values: dict[str, Any], at: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        get = values.get
        if rule_id in ("G1", "G2"):
            prefix = "json" if rule_id == "G1" else "naive"
            if "forbidden_types" in values:
                where = (*at, "forbidden_types")
                out[f"{prefix}_types"] = tuple(self.type_name(v, (*where, str(i)))
                                               for i, v in enumerate(self.strings(get(where[-1]), where)))
            if "expected_type" in values:
                out[f"{prefix}_expected"] = self.type_name(get("expected_type"), (*at, "expected_type"))
        elif rule_id == "G3" and "renamed_columns" in values:
            renames = self.mapping(get("renamed_columns"), (*at, "renamed_columns"))
            out["renamed_columns"] = {k: self.string(v, (*at, "renamed_columns", k)) for k, v in renames.items()}
        elif rule_id == "G4":
            if "allowed_actions" in values:
                where = (*at, "allowed_actions")
                out["allowed_actions"] = tuple(self.choice(v, (*where, str(i)), ON_DELETE_ACTIONS, "ON DELETE action")
                                               for i, v in enumerate(self.strings(get(where[-1]), where)))
            classes = self.mapping(get("classes"), (*at, "classes"))
            out["action_classes"] = {k: self.choice(v, (*at, "classes", k), ON_DELETE_ACTIONS, "ON DELETE action")
                                     for k, v in classes.items()}
            out["raw_targets"] = self.mapping(get("targets"), (*at, "targets"))
            out["raw_defaults"] = get("defaults")
        elif rule_id == "G5":
            for key in ("tenant_settings", "tenant_functions"):
                if key in values:
                    out[key] = self.strings(get(key), (*at, key))
            if "tenant_column" in values:
                out["tenant_column"] = self.string(get("tenant_column"), (*at, "tenant_column"))
            if "app_role" in values:
                out["app_role"] = None if get("app_role") is None else self.string(get("app_role"), (*at, "app_role"))
        elif rule_id == "G6" and "method" in values:
            out["index_method"] = self.string(get("method"), (*at, "method"))
        elif rule_id in ("G7", "G8"):
            if "trigger_pattern" in values:
                key = "parent_trigger_pattern" if rule_id == "G7" else "counter_trigger_pattern"
                out[key] = self.pattern(get("trigger_pattern"), (*at, "trigger_pattern"))
            if rule_id == "G7" and "drift_visible_to_child" in values:
                out["drift_visible_to_child"] = self.boolean(get("drift_visible_to_child"), (*at, "drift_visible_to_child"))
        elif rule_id == "G9":
            if "table_pattern" in values:
                out["backup_pattern"] = self.pattern(get("table_pattern"), (*at, "table_pattern"))
            if "group" in values:
                out["backup_group"] = self.choice(get("group"), (*at, "group"), GROUPS, "group")
        return out

    def action(self, value: Any, at: Path_, classes: dict[str, str]) -> str:
        name = self.choice(value, at, (*ON_DELETE_ACTIONS, *classes), "ON DELETE action or class")
        return classes.get(name, name)

    def table(self, name: str, group: str, raw: Any, at: Path_, rules: Rules) -> TableSpec:
        body = self.mapping(raw, at, TABLE_KEYS)
        columns: dict[str, ColumnSpec] = {}
        for col, spec in self.mapping(body.get("columns"), (*at, "columns")).items():
            cat = (*at, "columns", col)
            values = self.mapping(spec, cat, {"type", "nullable"})
            columns[col] = ColumnSpec(
                col,
                self.type_name(values["type"], (*cat, "type")) if "type" in values else None,
                self.boolean(values["nullable"], (*cat, "nullable")) if "nullable" in values else None,
            )
        for key, type_name in (("jsonb", "jsonb"), ("timestamptz", "timestamp with time zone")):
            for i, col in enumerate(self.strings(body.get(key), (*at, key))):
                old = columns.get(col, ColumnSpec(col))
                if old.type not in (None, type_name):
                    raise self.fail((*at, key, str(i)), f"column '{col}' is also declared as {old.type}")
                columns[col] = ColumnSpec(col, type_name, old.nullable)
        for new, old_name in self.mapping(body.get("renamed"), (*at, "renamed")).items():
            legacy = self.string(old_name, (*at, "renamed", new))
            base = columns.get(new, ColumnSpec(new))
            columns[new] = ColumnSpec(new, base.type, base.nullable, legacy)
        dropped = {}
        for col, spec in self.mapping(body.get("dropped"), (*at, "dropped")).items():
            values = self.mapping(spec, (*at, "dropped", col), {"moved_to", "note"})
            if col in columns:
                raise self.fail((*at, "dropped", col), f"column '{col}' is both expected and dropped")
            dropped[col] = DropSpec(col, values.get("moved_to"), values.get("note"))
        classes = rules.action_classes
        fks = {}
        for col, spec in self.mapping(body.get("foreign_keys"), (*at, "foreign_keys")).items():
            fat = (*at, "foreign_keys", col)
            values = self.mapping(spec, fat, {"references", "on_delete"})
            if "references" not in values or "on_delete" not in values:
                raise self.fail(fat, "expected both 'references: <table>' and 'on_delete: <action>'")
            fks[col] = ForeignKeySpec(col, self.string(values["references"], (*fat, "references")),
                                      self.action(values["on_delete"], (*fat, "on_delete"), classes))
        counters = {}
        for col, spec in self.mapping(body.get("counters"), (*at, "counters")).items():
            cat = (*at, "counters", col)
            values = self.mapping(spec, cat, {"source", "aggregate", "via"})
            source = self.string(values["source"], (*cat, "source")) if "source" in values else None
            if source is None and ("aggregate" in values or "via" in values):
                raise self.fail(cat, "'aggregate' and 'via' need 'source: <table>' (the rows the counter counts)")
            counters[col] = CounterSpec(
                col, source, self.string(values["aggregate"], (*cat, "aggregate")) if "aggregate" in values else "count(*)",
                self.string(values["via"], (*cat, "via")) if "via" in values else None)
        checks = []
        raw_checks = body.get("checks") or []
        if not isinstance(raw_checks, list):
            raise self.fail((*at, "checks"), f"expected a list of {{columns: [...]}}, got {_kind(raw_checks)}")
        for i, spec in enumerate(raw_checks):
            values = self.mapping(spec, (*at, "checks", str(i)), {"columns"})
            cols = self.strings(values.get("columns"), (*at, "checks", str(i), "columns"))
            if not cols:
                raise self.fail((*at, "checks", str(i)), "expected 'columns: [...]' naming what the CHECK constrains")
            checks.append(CheckSpec(cols))
        return TableSpec(
            name=name, group=group,
            legacy_name=self.string(body["legacy_name"], (*at, "legacy_name")) if "legacy_name" in body else None,
            tenant=self.choice(body["tenant"], (*at, "tenant"), TENANT_MODES, "tenant mode") if "tenant" in body else "required",
            columns=columns, dropped=dropped, foreign_keys=fks,
            on_delete=self.action(body["on_delete"], (*at, "on_delete"), classes) if "on_delete" in body else None,
            gin=self.strings(body.get("gin"), (*at, "gin")), checks=tuple(checks), counters=counters,
            tenant_parents=self.strings(body.get("tenant_parents"), (*at, "tenant_parents")),
            shared=self.boolean(body["shared"], (*at, "shared")) if "shared" in body else False,
            indexes=self.strings(body.get("indexes"), (*at, "indexes")),
            tenant_keys=self.strings(body.get("tenant_keys"), (*at, "tenant_keys")),
        )


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"'{value}'", bool: str(value).lower()}.get(type(value), repr(value))
