"""Schemathesis glue: which API to test, its OpenAPI document, and the checks Schemathesis does not have.

The API under test is the reference ``synapscale.api.app`` on the migrated clone by default, or
``--synap-api=module:attr`` (an ASGI app, or a function ``database_url -> ASGI app`` that is given the
migrated clone), or ``--synap-api-url=http://host:port`` (a running server; its document is
``<url>/openapi.json`` unless the URL names a ``.json``/``.yaml`` file). ``--synap-api-header
'Name: value'`` (repeatable) is sent with every request. Like every option they come through
:class:`~synap_verify.settings.Settings` (pyproject, ini, ``SYNAP_API_HEADER`` one header per line).
Two tenants of the API (``--synap-api-tenant``) give their headers, or log in through a recipe
(``--synap-api-login``: :class:`LoginRecipe`); credentials and tokens never appear in a message or repr.

Beyond Schemathesis's own checks this module has the two that are specific to the restructure:
the cross-tenant probe (tenant A calling every operation with tenant B's ids gets 404 and changes
nothing of B's) and the backward-compatibility contract of PRD 11.2 (``meta_data`` and the old paths
of renamed tables kept as deprecated aliases).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from synap_verify.catalog import ident
from synap_verify.errors import SynapError
from synap_verify.groups import SCHEMA

if TYPE_CHECKING:
    import psycopg
    from schemathesis import Case
    from schemathesis.specs.openapi.schemas import OpenApiSchema

    from synap_verify.rls.context import TenantContext
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


DEFAULT_LOGIN_BODY = {"username": "{username}", "password": "{password}"}


@dataclass(frozen=True)
class ApiTarget:
    """What to test: an ASGI app (``app`` = 'module:attr') or a URL, plus headers for every request."""

    app: str = REFERENCE_APP
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # credentials: never in a repr
    tenants: tuple[Tenant, ...] = ()  # (A, B) of the API under test, when the user names them
    public: tuple[str, ...] = ()  # operations ('GET /health') or paths ('/docs') served without credentials
    login: LoginRecipe | None = None  # how tenants given as ``NAME=login:...`` get their token

    def is_public(self, method: str, path: str) -> bool:
        return path in self.public or f"{method.upper()} {path}" in self.public

    def describe(self) -> str:
        return self.url or self.app


@dataclass(frozen=True)
class Tenant:
    """A tenant of the API under test: the headers every request on its behalf carries, or the credentials
    it logs in with (:class:`LoginRecipe`), and its id in the API's database when known."""

    name: str
    headers: dict[str, str] = field(repr=False)
    credentials: dict[str, str] = field(default_factory=dict, repr=False)
    tenant_id: str | None = None

    @property
    def logs_in(self) -> bool:
        return bool(self.credentials) and not self.headers


@dataclass(frozen=True)
class LoginRecipe:
    """How a tenant of an API that issues tokens gets one: POST ``body`` (a JSON template whose strings take
    the tenant's credentials as ``{name}``) to ``url``, read the token at the JSON path ``token``
    (``access_token``, ``data.token``, ``tokens.0``) and send it as ``header`` (``{token}`` replaced)."""

    url: str  # absolute, or a path relative to the API
    body: Any = field(default_factory=lambda: dict(DEFAULT_LOGIN_BODY), repr=False)  # ${VAR}s expanded
    token: str = "access_token"
    header: str = "Authorization: Bearer {token}"
    tenant_id: str | None = None  # JSON path of the tenant's id in the login answer


_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_VARIABLE = re.compile(r"\$\{(\w+)\}")


def expand_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """``${VAR}`` -> the variable's value, so credentials need not be written on the command line."""
    env = os.environ if env is None else env

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in env:
            raise SynapError(f"${{{match.group(1)}}} is not set: export it before the run (it holds a credential "
                             "of --synap-api-tenant or --synap-api-login-body)")
        return env[match.group(1)]

    return _VARIABLE.sub(value, text)


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` -> ``('Name', 'value')``; anything else is a usage error (naming the header, not its value)."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        raise SynapError(f"--synap-api-header expects 'Name: value', got {_first_word(text)!r}… (the rest not shown)")
    return name.strip(), expand_env(value.strip())


def parse_tenants(texts: Iterable[str], ids: Iterable[str] = ()) -> tuple[Tenant, ...]:
    """``NAME=Name: value`` or ``NAME=login:key=value,...`` entries -> tenants in order of first mention; a name
    repeated adds a header or credentials. ``ids``: ``NAME=ID`` entries, the tenants' ids in the API's database."""
    headers: dict[str, dict[str, str]] = {}
    credentials: dict[str, dict[str, str]] = {}
    for text in texts:
        name, sep, rest = (part.strip() for part in text.partition("="))
        if rest.startswith("login:"):
            pairs = [pair.partition("=") for pair in rest.removeprefix("login:").split(",") if pair.strip()]
            if not sep or not name or not pairs or not all(eq and key.strip() for key, eq, _ in pairs):
                raise SynapError(f"--synap-api-tenant expects NAME=login:key=value,... (e.g. alice=login:username="
                                 f"alice,password=${{ALICE_PASSWORD}}), got {_first_word(text)!r}… (the rest not shown)")
            credentials.setdefault(name, {}).update({k.strip(): expand_env(v.strip()) for k, _, v in pairs})
            headers.setdefault(name, {})
            continue
        if not sep or not name or ":" not in rest:
            raise SynapError(f"--synap-api-tenant expects NAME=Header: value or NAME=login:key=value,..., "
                             f"got {_first_word(text)!r}… (the rest not shown)")
        key, value = parse_header(rest)
        headers.setdefault(name, {})[key] = value
    both = [name for name in headers if headers[name] and credentials.get(name)]
    if both:
        raise SynapError(f"--synap-api-tenant {both[0]} gives both a header and a login: give one (a login's token "
                         "is sent as --synap-api-login-header)")
    if headers and len(headers) != 2:
        raise SynapError(f"--synap-api-tenant names {len(headers)} tenants ({', '.join(headers)}): give exactly two, "
                         "the first acts, the second owns the probed objects")
    known = {}
    for text in ids:
        name, sep, value = (part.strip() for part in text.partition("="))
        if not sep or not value or name not in headers:
            raise SynapError(f"--synap-api-tenant-id expects NAME=ID for a tenant named by --synap-api-tenant "
                             f"({', '.join(headers) or 'none named'}), got {text!r}")
        known[name] = value
    return tuple(Tenant(n, h, credentials.get(n, {}), known.get(n)) for n, h in headers.items())


def _first_word(text: str) -> str:
    """What an error may quote of an option that can hold a credential: its first word (a name, never a value)."""
    return re.split(r"[\s:=]", text.strip(), maxsplit=1)[0][:40]


def login_recipe(settings: Settings) -> LoginRecipe | None:
    """The settings' login recipe, its body template parsed (and ``${VAR}`` expanded) once."""
    if not settings.api_login:
        return None
    body: Any = DEFAULT_LOGIN_BODY
    if settings.api_login_body:
        try:
            body = json.loads(settings.api_login_body)
        except json.JSONDecodeError as exc:
            raise SynapError(f"--synap-api-login-body is not JSON ({exc.msg} at character {exc.pos}): give a JSON "
                             'object such as {"email": "{username}", "password": "{password}"}') from None
    header = settings.api_login_header or LoginRecipe.header
    if "{token}" not in header:
        raise SynapError(f"--synap-api-login-header must place the token: 'Name: ... {{token}}', got {header!r}")
    parse_header(header)
    return LoginRecipe(url=settings.api_login, body=_fill(body, expand_env), token=settings.api_login_token
                       or LoginRecipe.token, header=header, tenant_id=settings.api_login_tenant_id)


def api_target(settings: Settings) -> ApiTarget:
    """The API the suite tests, as the settings name it (validated there: one of app or URL); tenants that
    log in have no headers yet (:func:`log_in`)."""
    headers = dict(parse_header(h) for h in settings.api_header)
    tenants = parse_tenants(settings.api_tenant, settings.api_tenant_id)
    login = login_recipe(settings)
    logging_in = [t.name for t in tenants if t.logs_in]
    if logging_in and login is None:
        raise SynapError(f"tenant {logging_in[0]} logs in but no --synap-api-login names where: give the login URL "
                         "(or a path relative to the API), e.g. --synap-api-login=/auth/login")
    if login is not None and not logging_in:
        raise SynapError("--synap-api-login is given but no tenant logs in: --synap-api-tenant "
                         "'NAME=login:username=...,password=${VAR}' for each tenant")
    if tenants and not headers:
        headers = dict(tenants[0].headers)  # tenant A is who the suite acts as
    url = settings.api_url
    return ApiTarget(app=settings.api or REFERENCE_APP, url=url.rstrip("/") if url else None, headers=headers,
                     tenants=tenants, public=settings.api_public, login=login)


def log_in(target: ApiTarget, app: Any = None) -> ApiTarget:
    """The target with every tenant that logs in given its token header (and its tenant id when the recipe
    names where the answer holds it). ``app``: the in-process API, for a login path relative to it."""
    recipe = target.login
    if recipe is None or not any(t.logs_in for t in target.tenants):
        return target
    import httpx
    from schemathesis.python import asgi

    absolute = recipe.url.startswith(("http://", "https://"))
    # in-process: the client the suite's own calls go through (it runs the app's lifespan)
    client: httpx.Client | asgi.ASGIClient = (httpx.Client(base_url="" if absolute else target.url or "", timeout=30)
                                              if absolute or target.url else asgi.get_client(app))
    with client:
        tenants = tuple(_log_in(client, recipe, t, target.describe()) if t.logs_in else t for t in target.tenants)
    return replace(target, tenants=tenants, headers=target.headers or dict(tenants[0].headers))


def _log_in(client: Any, recipe: LoginRecipe, tenant: Tenant, api: str) -> Tenant:
    """One tenant's login; every failure is one line with the fix, and none shows a credential or the token."""
    import httpx
    import requests

    def credential(key: str) -> str:
        if key not in tenant.credentials:
            raise SynapError(f"--synap-api-login-body uses {{{key}}} but tenant {tenant.name} gives no {key}=: "
                             f"--synap-api-tenant '{tenant.name}=login:{key}=...' (or change the body template)")
        return tenant.credentials[key]

    body = _fill(recipe.body, lambda text: _PLACEHOLDER.sub(lambda m: credential(m.group(1)), text))
    where = f"login of tenant {tenant.name} at {recipe.url}"
    try:
        response = client.post(recipe.url, json=body)
    except (httpx.HTTPError, requests.RequestException) as exc:
        raise SynapError(f"{where}: unreachable ({type(exc).__name__}): check --synap-api-login and that {api} "
                         "is running") from None
    if not 200 <= response.status_code < 300:
        first = _redact(_first_line(response.text), tenant.credentials.values())[:160]
        raise SynapError(f"{where} answered {response.status_code}: {first}: check the tenant's credentials "
                         "(--synap-api-tenant NAME=login:...) and --synap-api-login-body")
    try:
        answer = response.json()
    except ValueError:
        raise SynapError(f"{where} answered {response.status_code} without JSON: point --synap-api-login at the "
                         "endpoint that issues tokens") from None
    token = json_path(answer, recipe.token)
    if not isinstance(token, str | int) or token == "":
        keys = ", ".join(map(str, answer)) if isinstance(answer, dict) else type(answer).__name__
        raise SynapError(f"{where} answered {response.status_code} without a token at {recipe.token!r} (the answer "
                         f"has: {keys}): set --synap-api-login-token to the token's JSON path, e.g. data.token")
    name, value = parse_header(recipe.header)
    tenant_id = tenant.tenant_id
    if tenant_id is None and recipe.tenant_id:
        found = json_path(answer, recipe.tenant_id)
        if found is None:
            raise SynapError(f"{where}: no tenant id at {recipe.tenant_id!r} in the answer: set "
                             "--synap-api-login-tenant-id to its JSON path, or give --synap-api-tenant-id NAME=ID")
        tenant_id = str(found)
    return replace(tenant, headers={name: value.replace("{token}", str(token))}, tenant_id=tenant_id)


def json_path(document: Any, path: str) -> Any:
    """The value at a dotted path (``data.token``, ``tokens.0``) of a JSON document; None when absent."""
    for part in path.split("."):
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return None
    return document


def _fill(template: Any, text: Callable[[str], str]) -> Any:
    """A JSON template with ``text`` applied to every string (keys stay as written)."""
    if isinstance(template, str):
        return text(template)
    if isinstance(template, dict):
        return {key: _fill(value, text) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, text) for value in template]
    return template


def _redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced (an error body may echo the request it refused)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


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


def allow_lists_the_documented_methods(ctx: Any, response: Any, case: Case) -> bool | None:
    """Schemathesis check: a 405 for a method the document does not give the path names in ``Allow`` every
    method it does give (RFC 9110), as Schemathesis's own check does for OPTIONS.

    Schemathesis's 405 check asks only that the header be there, and takes an empty one; a client that reads
    ``Allow`` to learn what the resource takes must find all of it (FastAPI alone lists one method). A 405 for
    a documented method (a state the operation refuses) is the operation's own answer, not judged here."""
    if response.status_code != 405:
        return None
    from schemathesis.core.transport import HTTP_METHODS_SCHEMA
    from schemathesis.specs.openapi.checks import IMPLICIT_METHODS  # HEAD, OPTIONS: answered around routing

    documented = {m.lower() for m in case.operation.schema[case.operation.path]} & HTTP_METHODS_SCHEMA
    if case.method.lower() in documented:
        return None
    allowed = {m.strip().lower() for value in response.headers.get("allow", []) for m in value.split(",") if m.strip()}
    missing = sorted(documented - allowed - IMPLICIT_METHODS)
    if missing:
        raise AssertionError(f"{case.method.upper()} {case.operation.path} answered 405 with Allow "
                             f"{', '.join(sorted(m.upper() for m in allowed)) or '(empty)'}: the document also gives "
                             f"it {', '.join(m.upper() for m in missing)}")
    return True


# --- the cross-tenant probe ----------------------------------------------------------------------


PASS, LEAK, SERVER_ERROR, INCONCLUSIVE = "pass", "LEAK", "server error", "inconclusive"

PROBE_LEAK = "API-LEAK"
"""Tenant A got tenant B's object or id in a 2xx, or changed B's data: the API crosses the tenant boundary; filter by tenant."""

PROBE_SERVER_ERROR = "API-5XX"
"""Another tenant's id made the API fail (5xx): not a leak, but an unknown id must be a 404; fix the handler."""


@dataclass
class Probe:
    """One operation called by tenant A with tenant B's ids, and its verdict."""

    operation: str
    status: int | None = None
    verdict: str | None = None  # PASS, LEAK, SERVER_ERROR, INCONCLUSIVE; None when skipped
    reason: str = ""
    skipped: str | None = None

    @property
    def problem(self) -> str | None:
        """The leak, if this probe found one (the only verdict that fails the probe as a crossing)."""
        return self.reason if self.verdict == LEAK else None


def judge(status: int, body: str, ids_b: Mapping[str, str]) -> tuple[str, str]:
    """The verdict on A's answer: 403/404 pass; 2xx holding one of B's ids leaks; 2xx without is B-free (an
    empty list); 5xx is a server error; 400/422 (and any other refusal) say nothing about tenancy."""
    if status in (403, 404):
        return PASS, ""
    if 200 <= status < 300:
        held = [f"{name} {value}" for name, value in ids_b.items() if value in body]
        return (LEAK, f"answered {status} with tenant B's {', '.join(held)}") if held else (PASS, "")
    first = _first_line(body)[:160]
    if status >= 500:
        return SERVER_ERROR, f"answered {status} to another tenant's id: {first}"
    return INCONCLUSIVE, f"answered {status} before reaching the object, so tenancy was not tested: {first}"


def tenant_ids(conn: psycopg.Connection, tables: Iterable[str] = ID_TABLES.values(),
               column: str = "tenant_id") -> dict[str, dict[str, str]]:
    """For each tenant, one id per table it has rows in: ``{tenant: {table: id}}``."""
    found: dict[str, dict[str, str]] = {}
    for table in dict.fromkeys(tables):
        rows = conn.execute(
            f'SELECT DISTINCT ON ({ident(column)}) {ident(column)}::text, id::text FROM {SCHEMA}.{ident(table)} '
            f"WHERE {ident(column)} IS NOT NULL ORDER BY {ident(column)}, id").fetchall()
        for tenant, id_ in rows:
            found.setdefault(tenant, {})[table] = id_
    return found


def ids_from_database(dsn: str, tenant: str, params: Iterable[str], column: str = "tenant_id",
                      context: TenantContext | None = None) -> dict[str, str]:
    """Tenant B's ids, by path parameter, from the database the API serves: one row of B's per table that has
    the tenant column and takes a parameter (:data:`ID_TABLES`, else the parameter's plural: ``x_id`` -> ``xs``).

    Read only, in one transaction that also makes B the tenant (``context``: rows under RLS stay visible to an
    application role). For an API that lists nothing of B's and can create nothing.
    """
    import psycopg

    from synap_verify.catalog import read_catalog

    with psycopg.connect(dsn) as conn:
        conn.read_only = True
        if context is not None:
            conn.execute(context.set_local(tenant))
        catalog = read_catalog(conn)
        tables = {param: ID_TABLES.get(param, param.removesuffix("_id") + "s") for param in params}
        held = {param: table for param, table in tables.items()
                if (t := catalog.table(table)) is not None and t.column(column) is not None and t.column("id")}
        ids = tenant_ids(conn, held.values(), column).get(tenant, {})
    return {param: ids[table] for param, table in held.items() if table in ids}


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


def param_ids(table_ids: Mapping[str, str]) -> dict[str, str]:
    """Ids by table (from a database) -> ids by the path parameter that takes them."""
    return {param: table_ids[table] for param, table in ID_TABLES.items() if table in table_ids}


def _operations(schema: OpenApiSchema) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def _call(operation: Any, headers: Mapping[str, str], path: Mapping[str, str]) -> Any:
    """One request with the given path parameters and a valid generated rest (body, query)."""
    import hypothesis
    from schemathesis import GenerationMode

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hypothesis.errors.NonInteractiveExampleWarning)
        case = operation.as_strategy(generation_mode=GenerationMode.POSITIVE).example()
    case.path_parameters = dict(path)
    # only the caller's credentials: generated security headers (a random X-Tenant-ID beside a real bearer
    # token) or optional ones (a random X-User-ID) would be refused before the object is reached
    required = {p.name.lower() for p in operation.headers if p.is_required}
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() in required}
    return case.call(headers=dict(headers))


def ids_from_api(schema: OpenApiSchema, headers_b: Mapping[str, str]) -> dict[str, str]:
    """Tenant B's ids as B itself lists them: for ``/x/{x_id}``, B's ``GET /x`` gives the first item's id.

    A parameter ``y_id`` is also listed by any collection ending in ``/ys`` (``/x/{x_id}/ys``), once its
    parents' ids are known. When no listing shows one, B creates one through the collection's POST
    (a body Schemathesis generates from the document). Ids never come from the harness's own database,
    which an API other than the reference has never seen.
    """
    operations = _operations(schema)
    gets = {op.path: op for op in operations if op.method.upper() == "GET"}
    posts = {op.path: op for op in operations if op.method.upper() == "POST"}
    params = dict.fromkeys(p.name for op in operations for p in op.path_parameters)
    listed: dict[str, list[str]] = {}  # every id of B's a listing showed, by parameter: parents to try in turn
    for create in (False, True):  # creating writes into the API: only for what no listing shows
        progress = True
        while progress:
            progress = False
            for param in (p for p in params if p not in listed):
                for path in _collections(param, gets.keys() | posts.keys()):
                    needed = [p.name for p in (gets.get(path) or posts[path]).path_parameters]
                    if not all(n in listed for n in needed):
                        continue
                    values = _list_ids(gets[path], needed, listed, param, headers_b) if path in gets else []
                    if not values and create and path in posts:
                        values = _create_id(posts[path], {n: listed[n][0] for n in needed}, param, headers_b)
                    if values:
                        listed[param] = values
                        progress = True
                        break
    return {param: values[0] for param, values in listed.items()}


def owner_ids(schema: OpenApiSchema, owner: Tenant, dsn: str | None = None, column: str = "tenant_id",
              context: TenantContext | None = None) -> dict[str, str]:
    """Tenant B's ids by path parameter: listed or created by B through the API (:func:`ids_from_api`); those
    the API gives none for, from the database it serves (``dsn``) when B's tenant id there is known."""
    ids = ids_from_api(schema, owner.headers)
    missing = dict.fromkeys(p.name for op in _operations(schema) for p in op.path_parameters if p.name not in ids)
    if missing and dsn and owner.tenant_id:
        ids |= ids_from_database(dsn, owner.tenant_id, missing, column, context)
    return ids


def _collections(param: str, paths: Iterable[str]) -> list[str]:
    """The collection paths that hold ``param``'s objects: the path before ``/{param}``, or any ending in its plural."""
    plural = "/" + param.removesuffix("_id") + "s"
    marker = "/{" + param + "}"
    direct = {p.split(marker)[0] for p in paths if marker in p}
    return sorted(p for p in paths if p in direct or p.endswith(plural))


def _create_id(post: Any, path: dict[str, str], param: str, headers: Mapping[str, str], tries: int = 5) -> list[str]:
    """B creates one object through ``post`` with generated valid bodies; its id, or nothing after ``tries``."""
    for _ in range(tries):
        response = _call(post, headers, path)
        if 200 <= response.status_code < 300:
            body = response.json()
            value = body.get("id", body.get(param)) if isinstance(body, dict) else None
            if value is not None:
                return [str(value)]
    return []


def _list_ids(listing: Any, needed: list[str], listed: dict[str, list[str]], param: str,
              headers: Mapping[str, str], tries: int = 10) -> list[str]:
    """The ids a listing gives, trying up to ``tries`` of B's parents (the first may have no children);
    the parent that had some moves first, so the ids returned for both stay consistent."""
    parent = needed[0] if len(needed) == 1 else None
    for candidate in listed[parent][:tries] if parent else [None]:
        path = {n: listed[n][0] for n in needed} | ({parent: candidate} if parent and candidate else {})
        response = listing.Case(path_parameters=path).call(headers=dict(headers))
        if 200 <= response.status_code < 300 and (values := _ids(response.json(), param)):
            if parent and candidate:
                listed[parent].remove(candidate)
                listed[parent].insert(0, candidate)
            return values
    return []


def _ids(body: Any, param: str) -> list[str]:
    """The ids of a listing's objects (``id``, else ``param``), whether the list is the body or inside it.

    ``id`` first: an object's field named like the parameter may be another key (a workflow execution's
    ``execution_id`` is a business key, not the id its path takes).
    """
    items = body if isinstance(body, list) else next((v for v in body.values() if isinstance(v, list)), []) \
        if isinstance(body, dict) else []
    values = [item.get("id", item.get(param)) for item in items if isinstance(item, dict)]
    return [str(v) for v in values if v is not None]


def api_state(schema: OpenApiSchema, headers_b: Mapping[str, str], ids_b: Mapping[str, str]) -> Callable[[], dict[str, str]]:
    """B's objects as B reads them: every GET whose ids are B's, status and body. Equal before and after = unchanged."""
    gets = [op for op in _operations(schema) if op.method.upper() == "GET" and op.path_parameters
            and all(p.name in ids_b for p in op.path_parameters)]

    def state() -> dict[str, str]:
        out = {}
        for op in gets:
            response = op.Case(path_parameters={p.name: ids_b[p.name] for p in op.path_parameters}).call(
                headers=dict(headers_b))
            out[op.label] = f"{response.status_code}:{response.text}"
        return out

    return state


def database_state(conn: psycopg.Connection, tenant: str) -> Callable[[], dict[str, str]]:
    """B's rows as the database holds them (the reference API on the harness's own clone)."""
    return lambda: fingerprint(conn, tenant)


def probe_cross_tenant(schema: OpenApiSchema, headers_a: dict[str, str], ids_b: Mapping[str, str],
                       state_b: Callable[[], dict[str, str]]) -> list[Probe]:
    """Call every operation that takes an id as tenant A with tenant B's ids (by path parameter); judge each
    answer (:func:`judge`) and, after every write, check through ``state_b`` that B's objects are unchanged."""
    results = []
    # an answer may echo the caller's credentials ("invalid token …"): its reasons are printed without them
    secrets = {part for value in headers_a.values() for part in (value, value.split()[-1] if value else "")
               if len(part) >= 8}
    before = state_b()
    for operation in _operations(schema):
        probe = Probe(operation.label)
        results.append(probe)
        names = [p.name for p in operation.path_parameters]
        if not names:
            continue
        missing = [n for n in names if n not in ids_b]
        if missing:
            probe.skipped = f"no id of tenant B for {', '.join(missing)}"
            continue
        response = _call(operation, headers_a, {n: ids_b[n] for n in names})
        probe.status = response.status_code
        probe.verdict, reason = judge(response.status_code, response.text, {n: ids_b[n] for n in names})
        probe.reason = _redact(reason, secrets)
        if operation.method.upper() in ("GET", "HEAD"):
            continue
        after = state_b()
        changed = [t for t, digest in after.items() if digest != before.get(t)]
        if changed:
            probe.verdict = LEAK
            probe.reason = (probe.reason + "; " if probe.reason else "") + f"changed tenant B's {', '.join(changed)}"
        before = after
    return [p for p in results if p.status is not None or p.skipped]


FAILURE_KINDS = {"ServerError": "server error", "UndefinedStatusCode": "undocumented status code",
                 "JsonSchemaError": "schema violation", "IgnoredAuth": "authentication not enforced"}


def failure_kind(failure: Exception) -> str:
    """A Schemathesis failure as one line of the summary: server errors, undocumented statuses and schema
    violations are different problems with different owners, never one count."""
    return FAILURE_KINDS.get(type(failure).__name__, str(getattr(failure, "title", type(failure).__name__)).lower())


Check = Callable[[Any, Any, Any], "bool | None"]
EXTRA_CHECKS: list[Check] = [legacy_aliases_returned, allow_lists_the_documented_methods]
