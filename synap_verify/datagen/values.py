"""Value pools: the edge-case JSON catalogue, realistic JSON shapes per column name, DST timestamps.

Everything here is built once per fill (seeded) and then only indexed, so producing a row costs a list
lookup per column instead of a call to a random generator. Pools hold COPY-escaped text.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta

# The json texts real `json` columns hold and `jsonb` normalises, rejects or loses precision on.
# name -> exact json text. Tests and other suites reuse this catalogue; keep the names stable.
JSON_EDGE_CASES: dict[str, str] = {
    "duplicate_keys": '{"a":1,"a":2}',
    "duplicate_keys_nested": '{"outer":{"k":"first","k":"second"},"outer":null}',
    "key_order": '{"zeta":1,"alpha":2,"Mid":3,"_":4}',
    "whitespace": '  {\n\t"spaced" :  [ 1 ,\t2 ,\n 3 ] ,  "x"  :  { }  }  ',
    "huge_number": '{"big":1e308}',
    "big_integer": '{"n":123456789012345678901234567890}',
    "precise_decimal": '{"p":0.1000000000000000055511151231257827}',
    "exponent": '{"e1":1E+2,"e2":2.5e-10,"e3":-0e0}',
    "negative_zero": '{"z":-0,"zf":-0.0}',
    "unicode_escape": '{"name":"caf\\u00e9","raw":"café"}',
    "surrogate_pair": '{"emoji":"\\ud83d\\ude00","flag":"\\ud83c\\uddf5\\ud83c\\uddf9"}',
    "escaped_controls": '{"s":"tab\\tnew\\nline \\"quoted\\" back\\\\slash \\/"}',
    "deep_nesting": '{"d":' * 40 + "1" + "}" * 40,
    "deep_array": "[" * 40 + "]" * 40,
    "empty_object": "{}",
    "empty_array": "[]",
    "bare_null": "null",
    "bare_string": '"just a string"',
    "bare_number": "42.50",
    "long_string": '{"text":"' + "lorem ipsum " * 200 + '"}',
}
# Rejected by jsonb ("unsupported Unicode escape sequence"): only ever placed in a few rows of `json` columns.
JSON_NUL_CASES: dict[str, str] = {
    "nul_escape": '{"note":"before\\u0000after"}',
    "nul_key": '{"\\u0000":"nul key"}',
}
ALL_JSON_CASES: dict[str, str] = {**JSON_EDGE_CASES, **JSON_NUL_CASES}

# Naive (UTC) instants that are nonexistent or ambiguous as local times in common zones: a bare
# ALTER ... TYPE timestamptz under such a session TimeZone shifts or rejects-by-guessing them.
DST_TIMESTAMPS: tuple[str, ...] = (
    "2024-03-10 02:30:00",  # America/New_York spring forward: does not exist locally
    "2024-11-03 01:30:00",  # America/New_York fall back: ambiguous
    "2024-03-31 02:30:00",  # Europe/Berlin spring forward
    "2024-10-27 02:30:00",  # Europe/Berlin fall back
    "2024-03-10 02:30:00.123456",
    "2024-12-31 23:59:59.999999",
    "2024-02-29 12:00:00",
)

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


def copy_escape(text: str) -> str:
    """A value as COPY text format wants it (backslash, tab, newline and CR escaped)."""
    return text.translate(_COPY_ESCAPES)


FIRST_NAMES = ("Ana", "Bruno", "Carla", "Diego", "Elena", "Fábio", "Grace", "Hiro", "Inês", "João", "Kai",
               "Lúcia", "Marco", "Nadia", "Otávio", "Priya", "Quentin", "Rafaela", "Søren", "Tomás",
               "Uma", "Vítor", "Wen", "Xavier", "Yara", "Zoë", "O'Brien", "Ælfred")
LAST_NAMES = ("Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Costa", "Müller", "Schmidt",
              "García", "Nguyen", "Kowalski", "Rossi", "Tanaka", "Johnson", "Dubois", "Ivanova", "Ng")
WORDS = ("data", "flow", "sync", "agent", "report", "lead", "sales", "crm", "email", "slack", "invoice",
         "chat", "summary", "pipeline", "webhook", "vector", "search", "alert", "daily", "export",
         "onboarding", "support", "billing", "insight", "campaign", "contact", "marketing", "ops")
DOMAINS = ("example.com", "acme.io", "synapscale.test", "mail.example.org", "empresa.com.br")
PROVIDERS = ("openai", "anthropic", "google", "mistral", "cohere", "azure")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "gemini-1.5-pro", "mistral-large", "command-r")
STATUSES = ("active", "active", "active", "inactive", "pending", "archived")
PERMISSION_KEYS = ("workflows.read", "workflows.write", "workflows.execute", "agents.read", "agents.write",
                   "billing.read", "billing.manage", "members.invite", "members.remove", "admin.all")


def _workflow_graph(rng: random.Random) -> object:
    n = rng.randint(2, 8)
    nodes = [{"id": f"node_{i}", "type": rng.choice(("trigger", "llm", "http", "code", "condition")),
              "position": {"x": rng.randint(0, 1200), "y": rng.randint(0, 800)},
              "data": {"label": rng.choice(WORDS).title(), "config": {"retries": rng.randint(0, 3)}}}
             for i in range(n)]
    edges = [{"id": f"e{i}", "source": f"node_{i}", "target": f"node_{i + 1}"} for i in range(n - 1)]
    return {"nodes": nodes, "edges": edges, "version": rng.randint(1, 9)}


def _llm_payload(rng: random.Random) -> object:
    return {"model": rng.choice(MODELS), "temperature": round(rng.random(), 2),
            "max_tokens": rng.choice((256, 512, 1024, 4096)),
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))}],
            "stream": rng.random() < 0.3}


def _widgets(rng: random.Random) -> object:
    return [{"id": f"w{i}", "type": rng.choice(("line", "bar", "kpi", "table", "pie")),
             "metric": rng.choice(WORDS), "x": i % 3 * 4, "y": i // 3 * 3, "w": 4, "h": 3}
            for i in range(rng.randint(1, 6))]


def _settings(rng: random.Random) -> object:
    return {"theme": rng.choice(("light", "dark")), "locale": rng.choice(("pt-BR", "en-US", "es")),
            "notifications": {"email": rng.random() < 0.7, "slack": rng.random() < 0.3},
            "limits": {"max_runs": rng.choice((100, 1000, 10000))}}


def _tag_list(rng: random.Random) -> object:
    return rng.sample(WORDS, rng.randint(0, 4))


def _permission_list(rng: random.Random) -> object:
    return rng.sample(PERMISSION_KEYS, rng.randint(1, 4))


def _execution_data(rng: random.Random) -> object:
    return {"run_id": rng.randint(1, 10**9), "status": rng.choice(("success", "error", "running")),
            "duration_ms": rng.randint(5, 90000), "items": [rng.randint(0, 99) for _ in range(rng.randint(0, 5))],
            "message": " ".join(rng.choices(WORDS, k=rng.randint(1, 6)))}


def _event_properties(rng: random.Random) -> object:
    return {"page": "/" + rng.choice(WORDS), "button": rng.choice(WORDS), "value": round(rng.random() * 100, 3),
            "utm": {"source": rng.choice(("google", "direct", "newsletter")), "campaign": rng.choice(WORDS)}}


def _schema_doc(rng: random.Random) -> object:
    props = {w: {"type": rng.choice(("string", "number", "boolean"))} for w in rng.sample(WORDS, rng.randint(1, 5))}
    return {"type": "object", "properties": props, "required": list(props)[:1]}


def _generic_doc(rng: random.Random) -> object:
    return {w: rng.choice((rng.randint(0, 1000), rng.choice(WORDS), rng.random() < 0.5, None))
            for w in rng.sample(WORDS, rng.randint(1, 6))}


# Column-name fragment -> document builder; the first fragment found in the column name wins.
JSON_SHAPES: tuple[tuple[tuple[str, ...], Callable[[random.Random], object]], ...] = (
    (("workflow_data", "nodes_data", "component_data", "connections_data", "graph"), _workflow_graph),
    (("api_request_payload", "request", "payload", "prompt"), _llm_payload),
    (("widgets", "layout", "visualization"), _widgets),
    (("permissions",), _permission_list),
    (("tags", "keywords", "use_cases", "industries", "shared_with", "screenshots", "preview_images",
      "template_ids", "capabilities", "dependencies", "dependents", "attachments", "tools"), _tag_list),
    (("input_data", "output_data", "result", "debug", "error", "cached_data", "value_json"), _execution_data),
    (("properties", "context", "event"), _event_properties),
    (("schema", "examples"), _schema_doc),
    (("settings", "config", "preferences", "variables", "filters", "options", "feature_usage"), _settings),
)


def json_builder(column: str) -> Callable[[random.Random], object]:
    """The realistic document shape for a column, chosen by its name."""
    return next((build for parts, build in JSON_SHAPES if any(p in column for p in parts)), _generic_doc)


JsonShape = tuple[str | None, dict[str, str]]  # (jsonb_typeof of the document, key -> jsonb_typeof ('' any))
_JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
_JSON_SAMPLES: dict[str, object] = {"object": {}, "array": [], "string": "x", "number": 1, "boolean": True,
                                    "null": None, "": "x"}


def json_pool(column: str, rng: random.Random, size: int = 64, shape: JsonShape = (None, {})) -> list[str]:
    """``size`` distinct realistic documents for ``column`` as compact json, COPY-escaped; with a ``shape``
    (what the column's CHECKs ask: document type, keys and their types) every document has it."""
    build = json_builder(column)
    docs = [build(rng) for _ in range(size)]
    kind, keys = shape
    if kind is not None or keys:
        docs = [_shaped(doc, kind, keys, rng) for doc in docs]
    return [copy_escape(json.dumps(doc, ensure_ascii=False, separators=(",", ":"))) for doc in docs]


def _shaped(doc: object, kind: str | None, keys: dict[str, str], rng: random.Random) -> object:
    if keys or kind == "object":
        doc = doc if isinstance(doc, dict) else {"items": doc}
        for key, typ in keys.items():
            if key not in doc or not _has_type(doc[key], typ):
                doc[key] = _json_value(typ, rng)
        return doc
    return doc if kind is None or _has_type(doc, kind) else _json_value(kind, rng)


def _json_value(typ: str, rng: random.Random) -> object:
    """A varied value of a jsonb type (an array of documents, an object of words, ...)."""
    if typ == "array":
        return [_generic_doc(rng) for _ in range(rng.randint(0, 4))]
    if typ == "object":
        return _generic_doc(rng)
    return rng.choice(WORDS) if typ in ("string", "") else rng.randint(0, 999) if typ == "number" \
        else _JSON_SAMPLES[typ]


def _has_type(value: object, typ: str) -> bool:
    if typ == "":
        return True
    if typ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES[typ]) if typ in _JSON_TYPES else False


def json_fits(text: str, kind: str | None, keys: dict[str, str]) -> bool:
    """Does the json text have the shape (as jsonb reads it: the last duplicate key wins)?"""
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    if kind is not None and not _has_type(doc, kind):
        return False
    return not keys or isinstance(doc, dict) and all(k in doc and _has_type(doc[k], t) for k, t in keys.items())


def timestamp_pool(rng: random.Random, size: int = 4096) -> list[str]:
    """Sorted naive UTC timestamps over 2023-01..2025-06 plus every DST edge, as text."""
    start = datetime(2023, 1, 1)
    span = int(timedelta(days=900).total_seconds())
    values = [(start + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6))).isoformat(" ")
              for _ in range(size - len(DST_TIMESTAMPS))]
    return sorted(values + list(DST_TIMESTAMPS))


def _slugify(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def text_pool(column: str, rng: random.Random, size: int = 256) -> list[str]:
    """Plausible raw (unescaped) text for a column by name hint; key-like values come from the generator."""
    c = column
    if "email" in c:
        return [f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}{i}@{rng.choice(DOMAINS)}".lower()
                for i in range(size)]
    if c in ("full_name", "author_name", "display_name") or c.endswith("_name") and "user" in c:
        return [f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" for _ in range(size)]
    if c in ("first_name",):
        return list(FIRST_NAMES)
    if c in ("last_name",):
        return list(LAST_NAMES)
    if "slug" in c:
        return [_slugify(f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}") for i in range(size)]
    if c == "tags" or c.endswith("_tags"):  # legacy comma-separated text
        return [",".join(rng.sample(WORDS, rng.randint(1, 4))) for _ in range(size)]
    if "status" in c or c == "state":
        return list(STATUSES)
    if "provider" in c:
        return list(PROVIDERS)
    if c in ("model", "model_name", "llm_model") or c.endswith("_model"):
        return list(MODELS)
    if "url" in c or "uri" in c or "webhook" in c:
        return [f"https://{rng.choice(DOMAINS)}/{rng.choice(WORDS)}/{i}" for i in range(size)]
    if "currency" in c:
        return ["USD", "BRL", "EUR"]
    if "version" in c:
        return [f"{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}" for _ in range(size)]
    if "locale" in c or "language" in c:
        return ["pt-BR", "en-US", "es-ES", "de-DE"]
    if "timezone" in c or c == "tz":
        return ["UTC", "America/Sao_Paulo", "America/New_York", "Europe/Berlin"]
    if "color" in c:
        return [f"#{rng.randrange(16**6):06x}" for _ in range(size)]
    if c == "ip" or c.endswith("_ip") or "ip_address" in c:
        return [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(size)]
    if "hash" in c or "token" in c or "secret" in c or "key" in c:
        return [f"{rng.getrandbits(128):032x}" for _ in range(size)]
    if "phone" in c:
        return [f"+55 11 9{rng.randrange(10**8):08d}" for _ in range(size)]
    if c in ("role", "role_name"):
        return ["owner", "admin", "member", "viewer"]
    if c in ("type", "kind", "category") or c.endswith("_type"):
        return list(WORDS[:8])
    if "description" in c or "content" in c or "body" in c or "message" in c or "notes" in c or "text" in c:
        return [copy_escape(" ".join(rng.choices(WORDS, k=rng.randint(4, 40))).capitalize() + ".")
                for _ in range(size)]
    if "name" in c or "title" in c or "label" in c:
        return [f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {rng.randint(1, 999)}"
                for _ in range(size)]
    return [copy_escape(" ".join(rng.choices(WORDS, k=rng.randint(1, 4)))) for _ in range(size)]
