"""Shared route plumbing: error responses every operation documents, partial updates, list filters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, cast, func
from sqlalchemy.dialects.postgresql import JSONB

from synapscale.schemas import NO_NUL, Problem

# Documented on every operation, so a status the API really returns is never "undocumented".
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not JSON"},
    401: {"model": Problem, "description": "No tenant, or an unknown one"},
    403: {"model": Problem, "description": "X-User-ID is not a member of the tenant"},
    404: {"model": Problem, "description": "Not found in this tenant (another tenant's id included)"},
    409: {"model": Problem, "description": "A constraint of the database refused the change"},
}

FilterText = Annotated[str | None, Query(pattern=NO_NUL, min_length=1, max_length=200)]
JsonKey = Annotated[str | None, Query(pattern=NO_NUL, min_length=1, max_length=100)]


def creates(param: str) -> dict[str, Any]:
    """Marks a create operation with the path parameter its new ``id`` fills (OpenAPI links are built from it)."""
    return {"x-creates": param}


def apply_patch(obj: object, body: BaseModel, exclude: set[str] | None = None) -> None:
    """Write only the fields the client sent (minus ``exclude``: deprecated aliases already merged)."""
    for name, value in body.model_dump(exclude_unset=True, exclude=exclude).items():
        setattr(obj, name, value)


def jsonb_has(column: Any, key: str, value: str | None) -> ColumnElement[bool]:
    """``column @> {key: value}`` (GIN-indexable), or ``column ? key`` when no value is given."""
    if value is None:
        return column.has_key(key)  # type: ignore[no-any-return]
    return column.contains(cast(func.jsonb_build_object(key, value), JSONB))  # type: ignore[no-any-return]


def jsonb_array_has(column: Any, item: str) -> ColumnElement[bool]:
    """``column @> [item]`` for jsonb arrays such as ``workflows.tags``."""
    return column.contains(func.jsonb_build_array(item))  # type: ignore[no-any-return]

