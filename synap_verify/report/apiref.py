"""docs/api-reference.md from the reference app's OpenAPI document, so the reference cannot drift from
the API: ``python -m synap_verify.report.apiref`` rewrites it, ``tests/test_report.py`` fails when stale.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

OUT = Path("docs") / "api-reference.md"
APP = "synapscale.api.app:app"
METHODS = ("get", "post", "put", "patch", "delete")


def openapi(spec: str = APP) -> dict[str, Any]:
    """The document the app serves at /openapi.json (built without a database connection)."""
    import importlib

    module, _, attr = spec.partition(":")
    return dict(getattr(importlib.import_module(module), attr).openapi())


def _type(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " \\| ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    text = str(schema.get("type", "any"))
    return f"{text} ({schema['format']})" if "format" in schema else text


def _cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def render(doc: Mapping[str, Any]) -> str:
    """Operations grouped by tag, then every schema with its fields; deprecated items say so."""
    info = doc["info"]
    lines = [f"# {info['title']} {info['version']}: API reference", "",
             "Generated from the OpenAPI document of `synapscale.api.app:app` by",
             "`python -m synap_verify.report.apiref`; do not edit by hand (`tests/test_report.py` fails when it",
             "is stale). The running app serves the same document at `/openapi.json` and `/docs`.", "",
             info.get("description", "").strip(), "", "## Operations", ""]
    by_tag: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for path, ops in doc["paths"].items():
        for method in METHODS:
            if method in ops:
                op = ops[method]
                by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    for tag, ops in by_tag.items():
        lines += [f"### {tag}", "", "| operation | summary | parameters | body | responses |", "|---|---|---|---|---|"]
        for method, path, op in ops:
            params = ", ".join(f"`{p['name']}` ({p['in']}{', required' if p.get('required') else ''})"
                               for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            responses = ", ".join(
                f"{code}" + (f" {_type(r['content']['application/json']['schema'])}"
                             if "application/json" in r.get("content", {}) else "")
                for code, r in op.get("responses", {}).items())
            summary = op.get("summary", "") + (" **(deprecated)**" if op.get("deprecated") else "")
            lines.append(f"| `{method.upper()} {path}` | {_cell(summary)} | {_cell(params)} | "
                         f"{_type(body) if body else ''} | {_cell(responses)} |")
        lines.append("")
    lines += ["## Schemas", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", "", _cell(schema.get("description", "")), ""] if schema.get("description") \
            else [f"### {name}", ""]
        required = set(schema.get("required", []))
        props = schema.get("properties", {})
        if props:
            lines += ["| field | type | required | notes |", "|---|---|---|---|"]
            lines += [f"| `{field}` | {_type(p)} | {'yes' if field in required else ''} | "
                      f"{_cell(('**deprecated** ' if p.get('deprecated') else '') + p.get('description', ''))} |"
                      for field, p in props.items()]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    OUT.write_text(render(openapi()))
    print(f"synap-verify: {OUT}", file=sys.stderr)
    sys.exit(0)
