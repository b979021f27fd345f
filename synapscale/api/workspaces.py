"""Workspaces and what hangs off them: members, projects, the activity trail."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy import select

from synapscale.api.common import ERRORS, FilterText, apply_patch, creates
from synapscale.api.deps import CtxDep, PageDep
from synapscale.models import Workflow, Workspace, WorkspaceActivity, WorkspaceMember, WorkspaceProject
from synapscale.schemas import (
    ActivityOut,
    MemberOut,
    Page,
    ProjectIn,
    ProjectOut,
    WorkspaceIn,
    WorkspaceOut,
    WorkspacePatch,
)

router = APIRouter(tags=["workspaces"], responses=ERRORS)


@router.get("/workspaces", operation_id="listWorkspaces", response_model=Page[WorkspaceOut])
def list_workspaces(ctx: CtxDep, paging: PageDep, status: FilterText = None, q: FilterText = None) -> object:
    stmt = select(Workspace).where(Workspace.tenant_id == ctx.tenant_id).order_by(Workspace.created_at, Workspace.id)
    if status:
        stmt = stmt.where(Workspace.status == status)
    if q:
        stmt = stmt.where(Workspace.name.icontains(q, autoescape=True))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/workspaces", operation_id="createWorkspace", status_code=201, response_model=WorkspaceOut,
             openapi_extra=creates("workspace_id"))
def create_workspace(ctx: CtxDep, body: WorkspaceIn) -> object:
    return ctx.save(Workspace(tenant_id=ctx.tenant_id, owner_id=ctx.acting_user(), **body.model_dump()))


@router.get("/workspaces/{workspace_id}", operation_id="getWorkspace", response_model=WorkspaceOut)
def get_workspace(ctx: CtxDep, workspace_id: uuid.UUID) -> object:
    return ctx.owned(Workspace, workspace_id)


@router.patch("/workspaces/{workspace_id}", operation_id="updateWorkspace", response_model=WorkspaceOut)
def update_workspace(ctx: CtxDep, workspace_id: uuid.UUID, body: WorkspacePatch) -> object:
    workspace = ctx.owned(Workspace, workspace_id)
    apply_patch(workspace, body)
    return ctx.save(workspace)


@router.delete("/workspaces/{workspace_id}", operation_id="deleteWorkspace", status_code=204)
def delete_workspace(ctx: CtxDep, workspace_id: uuid.UUID) -> Response:
    return ctx.remove(Workspace, workspace_id)


@router.get("/workspaces/{workspace_id}/members", operation_id="listWorkspaceMembers", response_model=Page[MemberOut])
def list_members(ctx: CtxDep, paging: PageDep, workspace_id: uuid.UUID, role: FilterText = None) -> object:
    ctx.owned(Workspace, workspace_id)
    stmt = (select(WorkspaceMember)
            .where(WorkspaceMember.tenant_id == ctx.tenant_id, WorkspaceMember.workspace_id == workspace_id)
            .order_by(WorkspaceMember.created_at, WorkspaceMember.id))
    if role:
        stmt = stmt.where(WorkspaceMember.role == role)
    return ctx.page(stmt, paging.limit, paging.offset)


@router.get("/workspaces/{workspace_id}/projects", operation_id="listWorkspaceProjects", response_model=Page[ProjectOut])
def list_projects(ctx: CtxDep, paging: PageDep, workspace_id: uuid.UUID) -> object:
    ctx.owned(Workspace, workspace_id)
    stmt = (select(WorkspaceProject)
            .where(WorkspaceProject.tenant_id == ctx.tenant_id, WorkspaceProject.workspace_id == workspace_id)
            .order_by(WorkspaceProject.created_at, WorkspaceProject.id))
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/workspaces/{workspace_id}/projects", operation_id="createWorkspaceProject", status_code=201,
             response_model=ProjectOut, openapi_extra=creates("project_id"))
def create_project(ctx: CtxDep, workspace_id: uuid.UUID, body: ProjectIn) -> object:
    ctx.owned(Workspace, workspace_id)
    if body.workflow_id is not None:
        ctx.owned(Workflow, body.workflow_id)
    return ctx.save(WorkspaceProject(tenant_id=ctx.tenant_id, workspace_id=workspace_id, created_by=ctx.acting_user(),
                                     **body.model_dump()))


@router.get("/projects/{project_id}", operation_id="getProject", response_model=ProjectOut)
def get_project(ctx: CtxDep, project_id: uuid.UUID) -> object:
    return ctx.owned(WorkspaceProject, project_id)


@router.get("/workspaces/{workspace_id}/activities", operation_id="listWorkspaceActivities",
            response_model=Page[ActivityOut])
def list_activities(ctx: CtxDep, paging: PageDep, workspace_id: uuid.UUID, action: FilterText = None) -> object:
    ctx.owned(Workspace, workspace_id)
    stmt = (select(WorkspaceActivity)
            .where(WorkspaceActivity.tenant_id == ctx.tenant_id, WorkspaceActivity.workspace_id == workspace_id)
            .order_by(WorkspaceActivity.created_at.desc(), WorkspaceActivity.id))
    if action:
        stmt = stmt.where(WorkspaceActivity.action == action)
    return ctx.page(stmt, paging.limit, paging.offset)
