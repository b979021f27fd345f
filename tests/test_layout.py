"""The code's shape: no import circles in the harness, and the reference restructure stands alone.

Read from the source (the import statements that run when a module loads), so the checks need no
database and name the offending modules.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _load_time_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports at module level, outside ``if TYPE_CHECKING:`` (imports inside functions run later, on call)."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return found


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules ``name`` (at ``path``) loads when it is imported, packages' ``__init__`` included."""
    targets: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _load_time_imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])])
        targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}
    parts = name.split(".")
    ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}  # already loading when this module runs
    loaded = targets & known
    for target in targets:  # importing a.b.c runs a/__init__ and a/b/__init__ first
        steps = target.split(".")
        loaded |= ({".".join(steps[:i]) for i in range(1, len(steps))} - ancestors) & known
    return loaded - {name}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def graph_of(package: str) -> dict[str, set[str]]:
    found = modules(package)
    return {name: imported(path, name, set(found)) for name, path in found.items()}


def test_no_import_circles_in_the_harness() -> None:
    graph = graph_of("synap_verify")
    assert len(graph) > 50 and "synap_verify.stash" in graph["synap_verify.plugin"]  # the reader sees imports
    assert cycle(graph) is None, " -> ".join(cycle(graph) or [])


def test_cycle_finder_finds_a_circle() -> None:
    """The finder itself, on the circle the stash module ended (plugin <-> report collector)."""
    assert cycle({"plugin": {"collect"}, "collect": {"stash", "plugin"}, "stash": set()}) == ["collect", "plugin",
                                                                                              "collect"]
    assert cycle({"plugin": {"stash"}, "collect": {"stash"}, "stash": set()}) is None


def test_reference_never_imports_the_harness() -> None:
    """synapscale is the restructure under test's reference: it must run where the harness is not installed."""
    offenders = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in sorted((ROOT / "synapscale").rglob("*.py"))
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Import | ast.ImportFrom)
                 and any(n.split(".")[0] == "synap_verify" for n in
                         ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]))]
    assert not offenders, offenders
    text_mentions = [str(p.relative_to(ROOT)) for p in (ROOT / "synapscale").rglob("*.py") if "synap_verify" in p.read_text()]
    assert not text_mentions, text_mentions


def _schema_literals(package: str, home: str) -> list[str]:
    """Strings using the schema (as a name, a qualifier or an SQL literal) outside its one home; prose may name it."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if path.relative_to(ROOT).as_posix() == home or "/versions/" in path.as_posix():
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        found += [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
                  and re.search(r"^synapscale_db$|synapscale_db\.|'synapscale_db'", n.value)]
    return found


def test_the_schema_is_named_in_one_place() -> None:
    """The harness takes the schema from synap_verify.groups.SCHEMA, the reference from synapscale.models.SCHEMA."""
    assert not _schema_literals("synap_verify", "synap_verify/groups.py")
    assert not _schema_literals("synapscale", "synapscale/models.py")
    # seeded: with no home, the one place that names the schema is itself reported
    assert any(hit.startswith("synap_verify/groups.py:") for hit in _schema_literals("synap_verify", ""))
