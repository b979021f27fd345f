"""Schemathesis glue: which API to test, its OpenAPI document, and the checks Schemathesis does not have.

The API under test is the reference ``synapscale.api.app`` on the migrated clone by default, or
``--synap-api=module:attr`` (an ASGI app, or a function ``database_url -> ASGI app`` that is given the
migrated clone), or ``--synap-api-url=http://host:port`` (a running server; its document is
``<url>/openapi.json`` unless the URL names a ``.json``/``.yaml`` file). ``--synap-api-header
'Name: value'`` (repeatable) is sent with every request. Like every option they come through
:class:`~synap_verify.settings.Settings` (pyproject, ini, ``SYNAP_API_HEADER`` one header per line).

Beyond Schemathesis's own checks this module has the two that are specific to the restructure:
the cross-tenant probe (tenant A calling every operation with tenant B's ids gets 404 and changes
nothing of B's) and the backward-compatibility contract of PRD 11.2 (``meta_data`` and the old paths
of renamed tables kept as deprecated aliases).
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synap_verify.errors import SynapError
from synap_verify.groups import SCHEMA

if TYPE_CHECKING:
    import psycopg
    from schemathesis import Case
    from schemathesis.specs.openapi.schemas import OpenApiSchema

    from synap_verify.settings import Settings

REFERENCE_APP = "synapscale.api.app:create_app"

# Renamed tables whose old resource paths must still answer, deprecated (PRD 11.2): new -> old.
RENAMED_RESOURCES = {
    "messages": "llms_messages",
    "message_feedbacks": "llms_message_feedbacks",
    "conversation_turns": "llms_conversations_turns",
}
# Renamed fields that must still be accepted and returned, deprecated: new -> old.
RENAMED_FIELDS = {"metadata": "meta_data", "provider": "model_provider"}

# The path parameters the cross-tenant probe knows how to fill: parameter -> table holding such ids.
ID_TABLES = {
    "workspace_id": "workspaces",
    "project_id": "workspace_projects",
    "workflow_id": "workflows",
    "execution_id": "workflow_executions",
    "conversation_id": "llms_conversations",
    "message_id": "messages",
    "feedback_id": "message_feedbacks",
    "component_id": "marketplace_components",
    "dashboard_id": "analytics_dashboards",
    "event_id": "analytics_events",
    "billing_event_id": "billing_events",
    "agent_id": "agents",
    "template_id": "workflow_templates",
    "tag_id": "tags",
}


@dataclass(frozen=True)
class ApiTarget:
    """What to test: an ASGI app (``app`` = 'module:attr') or a URL, plus headers for every request."""

    app: str = REFERENCE_APP
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return self.url or self.app


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` -> ``('Name', 'value')``; anything else is a usage error."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        raise SynapError(f"--synap-api-header expects 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def api_target(settings: Settings) -> ApiTarget:
    """The API the suite tests, as the settings name it (validated there: one of app or URL)."""
    headers = dict(parse_header(h) for h in settings.api_header)
    url = settings.api_url
    return ApiTarget(app=settings.api or REFERENCE_APP, url=url.rstrip("/") if url else None, headers=headers)


def load_app(spec: str, database_url: str) -> Any:
    """Import ``module:attr``; a plain function is a factory and gets the migrated database's URL."""
    module_name, _, attr = spec.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SynapError(f"cannot load the API {spec}: {exc}") from None
    if inspect.isfunction(obj):
        return obj(database_url)
    return obj


def document_url(url: str) -> str:
    return url if url.endswith((".json", ".yaml", ".yml")) else f"{url}/openapi.json"


def load_schema(target: ApiTarget, app: Any = None) -> OpenApiSchema:
    """Schemathesis's view of the API; a missing or broken OpenAPI document is one SynapError line."""
    import schemathesis
    from schemathesis.core.errors import SchemathesisError

    where = document_url(target.url) if target.url else f"{target.app} /openapi.json"
    try:
        if target.url:
            schema = schemathesis.openapi.from_url(document_url(target.url), headers=dict(target.headers), timeout=30)
        else:
            schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=dict(target.headers))
    except SchemathesisError as exc:
        raise SynapError(f"no usable OpenAPI document at {where}: {_first_line(str(exc))}") from None
    except Exception as exc:  # an app that crashes while serving its document, a refused connection, ...
        raise SynapError(f"no usable OpenAPI document at {where}: {type(exc).__name__}: {_first_line(str(exc))}") from None
    raw = schema.raw_schema
    if not isinstance(raw, Mapping) or "openapi" not in raw or not raw.get("paths"):
        raise SynapError(f"no usable OpenAPI document at {where}: not an OpenAPI 3 document with paths")
    if _has_links(raw):
        # The API states its own links: links inferred from response fields (e.g. a nullable
        # ``workspace_id``) would send requests such as ``/workspaces/None`` that test Schemathesis, not the API.
        schema.config.phases.stateful.inference.algorithms = []
    if target.url and not target.url.endswith((".json", ".yaml", ".yml")):
        schema.config.base_url = target.url  # a document URL leaves the base to the document's servers
    return schema


def _has_links(document: Mapping[str, Any]) -> bool:
    return any(response.get("links") for item in document.get("paths", {}).values() for op in item.values()
               if isinstance(op, dict) for response in op.get("responses", {}).values())


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")


# --- backward compatibility (PRD 11.2) -----------------------------------------------------------


def compat_problems(document: Mapping[str, Any]) -> list[str]:
    """What the OpenAPI document lacks of the deprecated aliases the PRD requires; empty when complete."""
    problems: list[str] = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        properties = schema.get("properties", {})
        for new, old in RENAMED_FIELDS.items():
            if new not in properties:
                continue
            if old not in properties:
                problems.append(f"schema {name}: field {new!r} has no deprecated alias {old!r}")
            elif not properties[old].get("deprecated"):
                problems.append(f"schema {name}: alias {old!r} is not marked deprecated")
    paths = document.get("paths", {})
    for path, item in paths.items():
        segments = path.strip("/").split("/")
        old_path = RENAMED_RESOURCES.get(segments[0])
        if old_path is None:
            continue
        legacy = "/" + "/".join([old_path, *segments[1:]])
        for method in item:
            legacy_op = paths.get(legacy, {}).get(method)
            if legacy_op is None:
                problems.append(f"{method.upper()} {path}: the old path {legacy} is gone")
            elif not legacy_op.get("deprecated"):
                problems.append(f"{method.upper()} {legacy}: old path not marked deprecated")
    return problems


def alias_mismatches(body: Any, where: str = "$") -> list[str]:
    """Objects of a response body that carry a renamed field without its old name (or with another value)."""
    found: list[str] = []
    if isinstance(body, dict):
        for new, old in RENAMED_FIELDS.items():
            if new in body and (old not in body or body[old] != body[new]):
                found.append(f"{where}: {new!r} returned without an equal deprecated {old!r}")
        for key, value in body.items():
            found.extend(alias_mismatches(value, f"{where}.{key}"))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            found.extend(alias_mismatches(value, f"{where}[{i}]"))
    return found


def legacy_aliases_returned(ctx: Any, response: Any, case: Case) -> bool | None:
    """Schemathesis check: every object of a 2xx body with ``metadata`` also returns it as ``meta_data``."""
    if not 200 <= response.status_code < 300:
        return None  # error bodies echo the request, which need not carry the alias
    try:
        body = response.json()
    except Exception:
        return None
    problems = alias_mismatches(body)
    if problems:
        raise AssertionError("renamed field without its deprecated alias: " + "; ".join(problems[:3]))
    return True


# --- the cross-tenant probe ----------------------------------------------------------------------


@dataclass
class Probe:
    """One operation called by tenant A with tenant B's ids."""

    operation: str
    status: int | None = None
    problem: str | None = None  # None: 404 and nothing of B's changed
    skipped: str | None = None


def tenant_ids(conn: psycopg.Connection, tables: Iterable[str] = ID_TABLES.values()) -> dict[str, dict[str, str]]:
    """For each tenant, one id per table it has rows in: ``{tenant: {table: id}}``."""
    found: dict[str, dict[str, str]] = {}
    for table in dict.fromkeys(tables):
        rows = conn.execute(
            f'SELECT DISTINCT ON (tenant_id) tenant_id::text, id::text FROM {SCHEMA}."{table}" '
            "WHERE tenant_id IS NOT NULL ORDER BY tenant_id, id").fetchall()
        for tenant, id_ in rows:
            found.setdefault(tenant, {})[table] = id_
    return found


def pick_tenants(ids: Mapping[str, Mapping[str, str]]) -> tuple[str, str]:
    """Tenant B: the one whose ids cover the most tables (so most operations get probed); A: the next one."""
    ranked = sorted(ids, key=lambda t: (-len(ids[t]), t))
    if len(ranked) < 2:
        raise SynapError("the cross-tenant probe needs two tenants with data in the migrated database")
    return ranked[1], ranked[0]


def fingerprint(conn: psycopg.Connection, tenant: str, tables: Iterable[str] = ID_TABLES.values()) -> dict[str, str]:
    """A digest of every row a tenant has in ``tables``: equal before and after means nothing changed."""
    digest = {}
    for table in dict.fromkeys(tables):
        row = conn.execute(
            f'SELECT count(*)::text || \':\' || coalesce(md5(string_agg(t::text, \',\' ORDER BY t.id)), \'\') '
            f'FROM {SCHEMA}."{table}" t WHERE tenant_id = %s', (tenant,)).fetchone()
        digest[table] = row[0] if row else ""
    return digest


def probe_cross_tenant(schema: OpenApiSchema, conn: psycopg.Connection, headers_a: dict[str, str],
                       ids_b: Mapping[str, str], tenant_b: str) -> list[Probe]:
    """Call every operation that takes an id as tenant A with tenant B's ids; each must be 404 and leave B as it was."""
    import hypothesis
    from schemathesis import GenerationMode

    results = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid operation raises here, as it should
        probe = Probe(operation.label)
        results.append(probe)
        names = [p.name for p in operation.path_parameters]
        if not names:
            continue
        unknown = [n for n in names if n not in ID_TABLES]
        missing = [n for n in names if n in ID_TABLES and ID_TABLES[n] not in ids_b]
        if unknown or missing:
            probe.skipped = (f"unknown id parameter {', '.join(unknown)}" if unknown
                             else f"tenant B has no rows in {', '.join(ID_TABLES[n] for n in missing)}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hypothesis.errors.NonInteractiveExampleWarning)
            case = operation.as_strategy(generation_mode=GenerationMode.POSITIVE).example()
        case.path_parameters = {n: ids_b[ID_TABLES[n]] for n in names}
        before = fingerprint(conn, tenant_b)
        response = case.call(headers=dict(headers_a))
        probe.status = response.status_code
        changed = [t for t, digest in fingerprint(conn, tenant_b).items() if digest != before[t]]
        if response.status_code != 404:
            probe.problem = f"answered {response.status_code} to another tenant's id (expected 404)"
        if changed:
            probe.problem = (probe.problem + "; " if probe.problem else "") + f"changed tenant B's {', '.join(changed)}"
    return [p for p in results if p.status is not None or p.skipped]


Check = Callable[[Any, Any, Any], "bool | None"]
EXTRA_CHECKS: list[Check] = [legacy_aliases_returned]
