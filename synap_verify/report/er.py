"""ER diagrams per group, legacy and migrated, as Mermaid in Markdown, generated from two catalogs.

``synap-verify er --out docs/er`` reads the catalog of a freshly loaded legacy schema and of the same
schema migrated to head (embedded server, no rows: structure does not depend on data), and writes one
page per group plus an index. Each diagram shows primary-key, foreign-key and tenant columns and every
column the restructure touches; the changes are marked in the attribute comments (Mermaid renders
them in the box) and listed above the diagrams, so they read the same on GitHub and in plain text.
``tests/test_er.py`` regenerates into a temp folder and fails when ``docs/er`` is stale.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from synap_verify.catalog import Catalog, Table
from synap_verify.contract import Contract, load_contract
from synap_verify.errors import SynapError
from synap_verify.settings import Settings

OUT = Path("docs") / "er"
NEW_GROUP = "foundation"  # tables the migrations add that no group of the contract owns
CLASSES = ["    classDef changed fill:#fff1c2,stroke:#b7791f", "    classDef new fill:#d8f5dd,stroke:#1a7f37",
           "    classDef dropped fill:#ffdcd7,stroke:#cf222e,stroke-dasharray:4 3"]
SHORT_TYPES = {"timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
               "character varying": "varchar", "double precision": "float8", "boolean": "bool",
               "integer": "int", "bigint": "bigint", "numeric": "numeric"}


@dataclass(frozen=True)
class Schemas:
    """The two catalogs and the contract that maps one onto the other."""

    legacy: Catalog
    migrated: Catalog
    contract: Contract


def read_schemas(contract_path: Path = Settings.contract, alembic: Path = Settings.alembic) -> Schemas:
    """Legacy and migrated catalogs from two empty clones of the baseline schema on an embedded server."""
    from synap_verify.pipeline import Pipeline

    contract = load_contract(contract_path)
    pipeline = Pipeline.start(Settings.resolve({"scale": "tiny", "alembic": alembic}),
                              say=lambda line: print(line, file=sys.stderr))
    try:
        legacy, migrated = pipeline.clone("schema"), pipeline.clone("schema_head")
        return Schemas(legacy.catalog(contract.schemas), migrated.catalog(contract.schemas), contract)
    finally:
        pipeline.stop()


def _type(name: str) -> str:
    """A Mermaid attribute type is one token: shorten PostgreSQL's names and drop what does not fit."""
    base = re.sub(r"\(.*\)", "", name)
    array = base.endswith("[]")
    base = SHORT_TYPES.get(base.removesuffix("[]"), base.removesuffix("[]"))
    return re.sub(r"[^A-Za-z0-9_]", "_", base) + ("_array" if array else "")


def _quote(text: str) -> str:
    return text.replace('"', "'")


class Group:
    """One group's tables on both sides, and what changed between them."""

    def __init__(self, name: str, schemas: Schemas) -> None:
        self.name = name
        contract = schemas.contract
        specs = contract.tables_in({name})
        self.pairs: list[tuple[Table | None, Table | None]] = []  # (legacy, migrated)
        for spec in specs:
            self.pairs.append((schemas.legacy.table(spec.legacy_name or spec.name), schemas.migrated.table(spec.name)))
        if name == "backup":
            self.pairs += [(t, None) for n, t in sorted(schemas.legacy.tables.items()) if n.startswith("backup_")]
        if name == NEW_GROUP:
            known = {t.legacy_name or t.name for t in contract.tables.values()} | set(contract.tables)
            self.pairs += [(None, t) for n, t in sorted(schemas.migrated.tables.items())
                           if n not in known and n not in schemas.legacy.tables]
        self.contract = contract

    def renames(self, migrated: str) -> dict[str, str]:
        """Legacy column -> migrated column of one migrated table."""
        spec = self.contract.tables.get(migrated)
        renames = {c.legacy_name: c.name for c in spec.columns.values() if c.legacy_name} if spec else {}
        return self.contract.rules.renamed_columns | renames

    def changes(self) -> list[str]:
        """Every change of the group, one line each, for the list above the diagrams."""
        lines = []
        for old, new in self.pairs:
            if old is None and new is not None:
                lines.append(f"new table `{new.name}`")
                continue
            if new is None and old is not None:
                lines.append(f"table `{old.name}` archived and dropped" if old.name.startswith("backup_")
                             else f"table `{old.name}` dropped")
                continue
            assert old is not None and new is not None
            if old.name != new.name:
                lines.append(f"table `{old.name}` renamed `{new.name}`")
            notes = _column_notes(old, new, self.renames(new.name))
            lines += [f"`{new.name}.{col}`: {note}" for col, note in sorted(notes["migrated"].items())]
            lines += [f"`{old.name}.{col}`: {note}" for col, note in sorted(notes["legacy"].items())
                      if note.startswith("dropped")]
            for fk, (was, now) in sorted(_fk_changes(old, new, self.renames(new.name)).items()):
                lines.append(f"`{new.name}.{fk}` ON DELETE {was} → {now}")
        return lines

    def mermaid(self, side: str) -> str:
        """The erDiagram of one side ('legacy' or 'migrated')."""
        lines = ["erDiagram"]
        relations: list[str] = []
        for old, new in self.pairs:
            table = old if side == "legacy" else new
            if table is None:
                continue
            notes: dict[str, str] = {}
            if old is not None and new is not None:
                notes = _column_notes(old, new, self.renames(new.name))[side]
            elif side == "migrated":
                notes = {c.name: "new" for c in table.columns}
            label = ""
            if old is not None and new is not None and old.name != new.name:
                label = f"renamed {new.name}" if side == "legacy" else f"was {old.name}"
            elif side == "legacy" and new is None:
                label = "archived and dropped" if table.name.startswith("backup_") else "dropped"
            elif side == "migrated" and old is None:
                label = "new table"
            changed = bool(notes) or bool(old and new and _fk_changes(old, new, self.renames(new.name)))
            style = ("dropped" if side == "legacy" and new is None else "new" if side == "migrated" and old is None
                     else "changed" if label or changed else "")
            if label:
                lines.append(f"    %% {table.name}: {label}")
            lines.append(f"    {table.name}{':::' + style if style else ''} {{")
            lines += [f"        {attr}" for attr in _attributes(table, notes)]
            if label:
                lines.append(f'        note CHANGE "{_quote(label)}"')
            lines.append("    }")
            relations += _relations(table, old, new, side, self.renames(new.name) if new else {})
        return "\n".join(lines + sorted(set(relations)) + CLASSES)


def _column_notes(old: Table, new: Table, renames: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per side, column -> what happened to it (type change, rename, drop, new)."""
    legacy: dict[str, str] = {}
    migrated: dict[str, str] = {}
    moved = {renames.get(c.name, c.name): c for c in old.columns}
    for col in new.columns:
        before = moved.get(col.name)
        if before is None:
            migrated[col.name] = "new"
            continue
        parts = []
        if before.name != col.name:
            parts.append(f"renamed from {before.name}")
            legacy[before.name] = f"renamed to {col.name}"
        if before.type != col.type:
            parts.append(f"was {_type(before.type)}")
            legacy[before.name] = "; ".join(p for p in (legacy.get(before.name), f"becomes {_type(col.type)}") if p)
        if before.nullable and not col.nullable:
            parts.append("now NOT NULL")
        if parts:
            migrated[col.name] = ", ".join(parts)
    for col in old.columns:
        if renames.get(col.name, col.name) not in new.column_names:
            legacy[col.name] = "dropped"
    return {"legacy": legacy, "migrated": migrated}


def _fk_changes(old: Table, new: Table, renames: dict[str, str]) -> dict[str, tuple[str, str]]:
    """FK column -> (legacy ON DELETE, migrated ON DELETE) where it changed (legacy duplicates joined by '/')."""
    before: dict[str, set[str]] = {}
    for fk in old.foreign_keys:
        before.setdefault(",".join(renames.get(c, c) for c in fk.columns), set()).add(fk.on_delete)
    out = {}
    for fk in new.foreign_keys:
        key = ",".join(fk.columns)
        if key in before and before[key] != {fk.on_delete}:
            out[key] = ("/".join(sorted(before[key])), fk.on_delete)
    return out


def _attributes(table: Table, notes: dict[str, str]) -> list[str]:
    """PK, FK, tenant and changed columns, in table order: the rest would drown the diagram."""
    fk_columns = {c for fk in table.foreign_keys for c in fk.columns}
    out = []
    for col in table.columns:
        keys = [k for k, on in (("PK", col.name in table.primary_key), ("FK", col.name in fk_columns)) if on]
        if not keys and col.name not in notes and col.name != "tenant_id":
            continue
        comment = notes.get(col.name, "")
        out.append(f"{_type(col.type)} {col.name}{' ' + ','.join(keys) if keys else ''}"
                   f"{' ' + chr(34) + _quote(comment) + chr(34) if comment else ''}")
    return out


def _relations(table: Table, old: Table | None, new: Table | None, side: str, renames: dict[str, str]) -> list[str]:
    """One line per FK (duplicates joined), labelled with its column and ON DELETE; FKs to tenants left out."""
    changed = _fk_changes(old, new, renames) if old is not None and new is not None else {}
    by_key: dict[tuple[str, str], set[str]] = {}
    for fk in table.foreign_keys:
        if fk.target_table == "tenants" and fk.columns == ("tenant_id",):
            continue
        by_key.setdefault((fk.target_table, ",".join(fk.columns)), set()).add(fk.on_delete)
    out = []
    for (target, columns), actions in by_key.items():
        optional = all(c.nullable for c in table.columns if c.name in columns.split(","))
        action = "/".join(sorted(actions))
        if side == "migrated" and columns in changed:
            action += f" (was {changed[columns][0]})"
        out.append(f'    {target} {"|o" if optional else "||"}--o{{ {table.name} : "{columns} {action}"')
    return out


def pages(schemas: Schemas) -> dict[str, str]:
    """File name -> Markdown: one page per group, plus README.md as the index."""
    out: dict[str, str] = {}
    index = ["# ER diagrams of the synapscale_db restructure", "",
             "Generated by `synap-verify er --out docs/er` from the catalogs of the legacy schema",
             "(`fixtures/legacy/schema.sql`) and of the same schema migrated to head; do not edit by hand",
             "(`tests/test_er.py` fails when these pages are stale).", "",
             "Each diagram shows primary-key, foreign-key and `tenant_id` columns and every column the",
             "restructure touches. Changes are in the attribute comments (`renamed from …`, `was json`,",
             "`dropped`, `new`) and in a `CHANGE` row for renamed, new and dropped tables; relationship labels",
             "give the FK column and its ON DELETE action (`(was …)` where it changed). FKs from `tenant_id`",
             "to `tenants` are left out: every tenant table has one. Boxes: amber changed, green new, red",
             "dropped (`classDef`, Mermaid 11 or newer).", "",
             "Structure of an empty database: with data, a `tenant_id` that cannot be derived for every row",
             "stays nullable (docs/decisions.md, G5), so `now NOT NULL` is the outcome on clean data.", "",
             "SVGs are not committed (about 0.5 MB each): `synap-verify er --svg` renders them beside the",
             "pages when mermaid-cli (`mmdc`) and `chromium` are installed; GitHub renders the blocks as is.", "",
             "| group | legacy tables | migrated tables | changes |", "|---|---|---|---|"]
    for name in (*schemas.contract.groups, NEW_GROUP):
        group = Group(name, schemas)
        if not group.pairs:
            continue
        changes = group.changes()
        legacy = sum(1 for old, _ in group.pairs if old is not None)
        migrated = sum(1 for _, new in group.pairs if new is not None)
        index.append(f"| [{name}]({name}.md) | {legacy} | {migrated} | {len(changes)} |")
        out[f"{name}.md"] = "\n".join([
            f"# {name}: legacy → migrated", "", "[all groups](README.md)", "", "## Changes", "",
            *(f"- {line}" for line in changes or ["none: only the global rules apply, with no visible change here"]),
            "", "## Legacy", "", "```mermaid", group.mermaid("legacy"), "```", "",
            "## Migrated", "", "```mermaid", group.mermaid("migrated"), "```", ""])
    out["README.md"] = "\n".join(index) + "\n"
    return out


def write(files: dict[str, str], out: Path) -> list[Path]:
    """Write the pages, and remove pages of groups that no longer exist, so the folder is exactly the output."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in set(p.name for p in out.glob("*.md")) - set(files):
        (out / stale).unlink()
    written = []
    for name, text in files.items():
        (out / name).write_text(text)
        written.append(out / name)
    return written


def stale(files: dict[str, str], out: Path) -> list[str]:
    """Names of pages that differ from, are missing in, or are extra in ``out``."""
    present = {p.name: p.read_text() for p in out.glob("*.md")} if out.is_dir() else {}
    return sorted(n for n in set(files) | set(present) if files.get(n) != present.get(n))


def render_svg(files: dict[str, str], out: Path) -> list[Path]:
    """``<group>-legacy.svg`` and ``<group>-migrated.svg`` through mermaid-cli and the system Chromium.

    Optional (the Markdown is the committed source): mermaid-cli is an npm package that normally
    downloads its own browser, so it is used only when ``mmdc`` (PATH or ``SYNAP_MMDC``) and a
    ``chromium`` are both installed.
    """
    mmdc = os.environ.get("SYNAP_MMDC") or shutil.which("mmdc")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not mmdc or not browser:
        raise SynapError("--svg needs mermaid-cli (mmdc on PATH or SYNAP_MMDC) and chromium; the Markdown pages "
                         "render without it")
    written = []
    with tempfile.TemporaryDirectory(prefix="synap-er-") as tmp:
        config = Path(tmp) / "puppeteer.json"
        config.write_text(json.dumps({"executablePath": browser, "args": ["--no-sandbox", "--disable-gpu"]}))
        for name, text in sorted(files.items()):
            blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
            for side, block in zip(("legacy", "migrated"), blocks, strict=False):
                source = Path(tmp) / f"{name.removesuffix('.md')}-{side}.mmd"
                source.write_text(block)
                target = out / source.with_suffix(".svg").name
                done = subprocess.run([mmdc, "-q", "-p", str(config), "-i", str(source), "-o", str(target)],
                                      capture_output=True, text=True, timeout=180)
                if done.returncode != 0:
                    raise SynapError(f"mmdc failed on {source.name}: {(done.stderr or done.stdout).strip()[-300:]}")
                written.append(target)
    return written
