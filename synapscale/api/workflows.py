"""Workflows, their executions (with the deprecated ``meta_data`` alias), nodes and connections."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy import select

from synapscale.api.common import ERRORS, FilterText, JsonKey, apply_patch, creates, jsonb_array_has, jsonb_has
from synapscale.api.deps import CtxDep, PageDep
from synapscale.models import Workflow, WorkflowConnection, WorkflowExecution, WorkflowNode, Workspace
from synapscale.schemas import (
    ExecutionIn,
    ExecutionOut,
    Page,
    WorkflowConnectionOut,
    WorkflowIn,
    WorkflowNodeOut,
    WorkflowOut,
    WorkflowPatch,
)

router = APIRouter(tags=["workflows"], responses=ERRORS)


@router.get("/workflows", operation_id="listWorkflows", response_model=Page[WorkflowOut])
def list_workflows(ctx: CtxDep, paging: PageDep, workspace_id: uuid.UUID | None = None, status: FilterText = None,
                   tag: FilterText = None, q: FilterText = None) -> object:
    """``tag`` matches an element of the jsonb ``tags`` array."""
    stmt = select(Workflow).where(Workflow.tenant_id == ctx.tenant_id).order_by(Workflow.created_at, Workflow.id)
    if workspace_id:
        stmt = stmt.where(Workflow.workspace_id == workspace_id)
    if status:
        stmt = stmt.where(Workflow.status == status)
    if tag:
        stmt = stmt.where(jsonb_array_has(Workflow.tags, tag))
    if q:
        stmt = stmt.where(Workflow.name.icontains(q, autoescape=True))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/workflows", operation_id="createWorkflow", status_code=201, response_model=WorkflowOut,
             openapi_extra=creates("workflow_id"))
def create_workflow(ctx: CtxDep, body: WorkflowIn) -> object:
    ctx.owned(Workspace, body.workspace_id)
    return ctx.save(Workflow(tenant_id=ctx.tenant_id, user_id=ctx.acting_user(), **body.model_dump()))


@router.get("/workflows/{workflow_id}", operation_id="getWorkflow", response_model=WorkflowOut)
def get_workflow(ctx: CtxDep, workflow_id: uuid.UUID) -> object:
    return ctx.owned(Workflow, workflow_id)


@router.patch("/workflows/{workflow_id}", operation_id="updateWorkflow", response_model=WorkflowOut)
def update_workflow(ctx: CtxDep, workflow_id: uuid.UUID, body: WorkflowPatch) -> object:
    workflow = ctx.owned(Workflow, workflow_id)
    apply_patch(workflow, body)
    return ctx.save(workflow)


@router.delete("/workflows/{workflow_id}", operation_id="deleteWorkflow", status_code=204)
def delete_workflow(ctx: CtxDep, workflow_id: uuid.UUID) -> Response:
    return ctx.remove(Workflow, workflow_id)


@router.get("/workflows/{workflow_id}/executions", operation_id="listWorkflowExecutions",
            response_model=Page[ExecutionOut])
def list_executions(ctx: CtxDep, paging: PageDep, workflow_id: uuid.UUID, status: FilterText = None,
                    metadata_key: JsonKey = None, metadata_value: FilterText = None) -> object:
    """``metadata_key`` (with an optional ``metadata_value``) filters on the jsonb ``metadata``."""
    ctx.owned(Workflow, workflow_id)
    stmt = (select(WorkflowExecution)
            .where(WorkflowExecution.tenant_id == ctx.tenant_id, WorkflowExecution.workflow_id == workflow_id)
            .order_by(WorkflowExecution.created_at.desc(), WorkflowExecution.id))
    if status:
        stmt = stmt.where(WorkflowExecution.status == status)
    if metadata_key:
        stmt = stmt.where(jsonb_has(WorkflowExecution.metadata_, metadata_key, metadata_value))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/workflows/{workflow_id}/executions", operation_id="createWorkflowExecution", status_code=201,
             response_model=ExecutionOut, openapi_extra=creates("execution_id"))
def create_execution(ctx: CtxDep, workflow_id: uuid.UUID, body: ExecutionIn) -> object:
    ctx.owned(Workflow, workflow_id)
    data = body.model_dump(exclude={"meta_data", "metadata"})
    return ctx.save(WorkflowExecution(
        tenant_id=ctx.tenant_id, workflow_id=workflow_id, user_id=ctx.acting_user(), execution_id=uuid.uuid4().hex,
        metadata_=body.metadata, **data))


@router.get("/executions/{execution_id}", operation_id="getExecution", response_model=ExecutionOut)
def get_execution(ctx: CtxDep, execution_id: uuid.UUID) -> object:
    return ctx.owned(WorkflowExecution, execution_id)


@router.get("/workflows/{workflow_id}/nodes", operation_id="listWorkflowNodes", response_model=Page[WorkflowNodeOut])
def list_nodes(ctx: CtxDep, paging: PageDep, workflow_id: uuid.UUID) -> object:
    ctx.owned(Workflow, workflow_id)
    stmt = (select(WorkflowNode).where(WorkflowNode.tenant_id == ctx.tenant_id, WorkflowNode.workflow_id == workflow_id)
            .order_by(WorkflowNode.created_at, WorkflowNode.id))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.get("/workflows/{workflow_id}/connections", operation_id="listWorkflowConnections",
            response_model=Page[WorkflowConnectionOut])
def list_connections(ctx: CtxDep, paging: PageDep, workflow_id: uuid.UUID) -> object:
    ctx.owned(Workflow, workflow_id)
    stmt = (select(WorkflowConnection)
            .where(WorkflowConnection.tenant_id == ctx.tenant_id, WorkflowConnection.workflow_id == workflow_id)
            .order_by(WorkflowConnection.created_at, WorkflowConnection.id))
    return ctx.page(stmt, paging.limit, paging.offset)
