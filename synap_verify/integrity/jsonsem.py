"""JSON compared by meaning: what ``old_json::jsonb = new_jsonb`` decides, without a server round trip.

``json`` keeps text verbatim; ``jsonb`` keeps meaning: key order, whitespace and number formatting
go, and of duplicate keys only the last survives. Two texts are equivalent when they parse to the
same value under those rules (numbers compared as exact decimals, so ``1E+2`` equals ``100`` and
``0.1000000000000000055511151231257827`` is not ``0.1``). Duplicate keys are counted, because
jsonb drops the earlier values: that is a loss the report must show even when nothing differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

# Text jsonb may reject (a superset, checked cheaply in SQL before trying a cast): NUL escapes, lone
# surrogate escapes, exponents beyond numeric's range.
SUSPECT = r"\\u0000|\\u[dD][89a-fA-F]|[eE][+-]?[0-9]{5,}"


@dataclass(frozen=True)
class Parsed:
    value: Any
    duplicate_keys: int


class _Objects:
    """object_pairs_hook that keeps the last value of a duplicated key (as jsonb does) and counts them."""

    def __init__(self) -> None:
        self.duplicates = 0

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                self.duplicates += 1
                del out[key]  # jsonb keeps the last value
            out[key] = value
        return out


def _number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - json only hands over valid number text
        raise ValueError(f"not a number: {text}") from None


def parse(text: str) -> Parsed:
    """Parse json text with exact numbers; raises ValueError on text that is not JSON."""
    hook = _Objects()
    value = json.loads(text, object_pairs_hook=hook, parse_float=_number, parse_int=_number,
                       parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"{c} is not JSON")))
    return Parsed(value, hook.duplicates)


def equivalent(old: str | None, new: str | None) -> bool:
    """Whether ``old`` (json text) and ``new`` (jsonb text) hold the same document by jsonb's rules."""
    if old is None or new is None:
        return old is new
    try:
        return _same(parse(old).value, parse(new).value)
    except ValueError:
        return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return type(a) is type(b) and a == b


def duplicate_keys(text: str) -> int:
    """How many object members jsonb would drop from this json text (0 when it is not JSON)."""
    try:
        return parse(text).duplicate_keys
    except ValueError:
        return 0


def abbreviate(text: str | None, width: int = 60) -> str:
    """A value short enough for a finding message, with control characters visible."""
    if text is None:
        return "NULL"
    shown = json.dumps(text, ensure_ascii=True)[1:-1]
    return shown if len(shown) <= width else shown[: width - 1] + "…"
