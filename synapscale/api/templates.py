"""Workflow templates: tenant-owned after the restructure (``tenant_id`` NOT NULL, RLS), so ``is_public``
never shows a template to another tenant. Counters are kept by the database's triggers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from sqlalchemy import select

from synapscale.api.common import ERRORS, FilterText, JsonKey, apply_patch, creates, jsonb_array_has, jsonb_has
from synapscale.api.deps import CtxDep, PageDep
from synapscale.models import Workflow, WorkflowTemplate
from synapscale.schemas import Page, TemplateIn, TemplateOut, TemplatePatch

router = APIRouter(tags=["templates"], responses=ERRORS)
Template = WorkflowTemplate


def _published(template: WorkflowTemplate) -> None:
    if template.status == "active" and template.published_at is None:
        template.published_at = datetime.now(UTC)


@router.get("/templates", operation_id="listTemplates", response_model=Page[TemplateOut])
def list_templates(ctx: CtxDep, paging: PageDep, category: FilterText = None, status: FilterText = None,
                   tag: FilterText = None, q: FilterText = None, original_workflow_id: uuid.UUID | None = None,
                   default_config_key: JsonKey = None, default_config_value: FilterText = None) -> object:
    """``tag`` matches an element of the jsonb ``tags`` array; ``default_config_key`` (with an optional
    ``default_config_value``) filters on the jsonb ``default_config``."""
    stmt = select(Template).where(Template.tenant_id == ctx.tenant_id).order_by(Template.created_at, Template.id)
    if category:
        stmt = stmt.where(Template.category == category)
    if status:
        stmt = stmt.where(Template.status == status)
    if tag:
        stmt = stmt.where(jsonb_array_has(Template.tags, tag))
    if q:
        stmt = stmt.where(Template.name.icontains(q, autoescape=True))
    if original_workflow_id:
        stmt = stmt.where(Template.original_workflow_id == original_workflow_id)
    if default_config_key:
        stmt = stmt.where(jsonb_has(Template.default_config, default_config_key, default_config_value))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/templates", operation_id="createTemplate", status_code=201, response_model=TemplateOut,
             openapi_extra=creates("template_id"))
def create_template(ctx: CtxDep, body: TemplateIn) -> object:
    """The slug is unique across the whole database: a taken one is 409."""
    if body.original_workflow_id is not None:
        ctx.owned(Workflow, body.original_workflow_id)  # no tenant trigger on this FK: the API checks it
    template = Template(tenant_id=ctx.tenant_id, author_id=ctx.acting_user(), **body.model_dump())
    _published(template)
    return ctx.save(template)


@router.get("/templates/{template_id}", operation_id="getTemplate", response_model=TemplateOut)
def get_template(ctx: CtxDep, template_id: uuid.UUID) -> object:
    return ctx.owned(Template, template_id)


@router.patch("/templates/{template_id}", operation_id="updateTemplate", response_model=TemplateOut)
def update_template(ctx: CtxDep, template_id: uuid.UUID, body: TemplatePatch) -> object:
    template = ctx.owned(Template, template_id)
    apply_patch(template, body)
    _published(template)
    return ctx.save(template)


@router.delete("/templates/{template_id}", operation_id="deleteTemplate", status_code=204)
def delete_template(ctx: CtxDep, template_id: uuid.UUID) -> Response:
    return ctx.remove(Template, template_id)
