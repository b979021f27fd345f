"""Conversations, messages and message feedbacks.

``llms_messages`` and ``llms_message_feedbacks`` were renamed ``messages`` and ``message_feedbacks``;
their old paths stay as deprecated aliases of the same operations (PRD 11.2).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from sqlalchemy import select

from synapscale.api.common import ERRORS, FilterText, apply_patch, creates
from synapscale.api.deps import CtxDep, PageDep
from synapscale.models import Conversation, Message, MessageFeedback, Workspace
from synapscale.schemas import (
    ConversationIn,
    ConversationOut,
    ConversationPatch,
    FeedbackIn,
    FeedbackOut,
    MessageIn,
    MessageOut,
    Page,
)

router = APIRouter(tags=["conversations"], responses=ERRORS)


@router.get("/conversations", operation_id="listConversations", response_model=Page[ConversationOut])
def list_conversations(ctx: CtxDep, paging: PageDep, workspace_id: uuid.UUID | None = None,
                       status: FilterText = None) -> object:
    stmt = (select(Conversation).where(Conversation.tenant_id == ctx.tenant_id)
            .order_by(Conversation.created_at, Conversation.id))
    if workspace_id:
        stmt = stmt.where(Conversation.workspace_id == workspace_id)
    if status:
        stmt = stmt.where(Conversation.status == status)
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/conversations", operation_id="createConversation", status_code=201, response_model=ConversationOut,
             openapi_extra=creates("conversation_id"))
def create_conversation(ctx: CtxDep, body: ConversationIn) -> object:
    if body.workspace_id is not None:
        ctx.owned(Workspace, body.workspace_id)
    return ctx.save(Conversation(tenant_id=ctx.tenant_id, user_id=ctx.acting_user(), **body.model_dump()))


@router.get("/conversations/{conversation_id}", operation_id="getConversation", response_model=ConversationOut)
def get_conversation(ctx: CtxDep, conversation_id: uuid.UUID) -> object:
    return ctx.owned(Conversation, conversation_id)


@router.patch("/conversations/{conversation_id}", operation_id="updateConversation", response_model=ConversationOut)
def update_conversation(ctx: CtxDep, conversation_id: uuid.UUID, body: ConversationPatch) -> object:
    conversation = ctx.owned(Conversation, conversation_id)
    apply_patch(conversation, body)
    return ctx.save(conversation)


@router.delete("/conversations/{conversation_id}", operation_id="deleteConversation", status_code=204)
def delete_conversation(ctx: CtxDep, conversation_id: uuid.UUID) -> Response:
    return ctx.remove(Conversation, conversation_id)


@router.get("/conversations/{conversation_id}/messages", operation_id="listMessages", response_model=Page[MessageOut])
def list_messages(ctx: CtxDep, paging: PageDep, conversation_id: uuid.UUID, role: FilterText = None) -> object:
    ctx.owned(Conversation, conversation_id)
    stmt = (select(Message).where(Message.tenant_id == ctx.tenant_id, Message.conversation_id == conversation_id)
            .order_by(Message.created_at, Message.id))
    if role:
        stmt = stmt.where(Message.role == role)
    return ctx.page(stmt, paging.limit, paging.offset)


@router.post("/conversations/{conversation_id}/messages", operation_id="createMessage", status_code=201,
             response_model=MessageOut, openapi_extra=creates("message_id"))
def create_message(ctx: CtxDep, conversation_id: uuid.UUID, body: MessageIn) -> object:
    conversation = ctx.owned(Conversation, conversation_id)
    conversation.last_message_at = datetime.now(UTC)
    return ctx.save(Message(tenant_id=ctx.tenant_id, conversation_id=conversation_id, **body.model_dump()))


def get_message(ctx: CtxDep, message_id: uuid.UUID) -> object:
    return ctx.owned(Message, message_id)


def list_feedbacks(ctx: CtxDep, paging: PageDep, message_id: uuid.UUID) -> object:
    ctx.owned(Message, message_id)
    stmt = (select(MessageFeedback)
            .where(MessageFeedback.tenant_id == ctx.tenant_id, MessageFeedback.message_id == message_id)
            .order_by(MessageFeedback.created_at, MessageFeedback.id))
    return ctx.page(stmt, paging.limit, paging.offset)


def create_feedback(ctx: CtxDep, message_id: uuid.UUID, body: FeedbackIn) -> object:
    ctx.owned(Message, message_id)
    return ctx.save(MessageFeedback(tenant_id=ctx.tenant_id, message_id=message_id, user_id=ctx.acting_user(),
                                    **body.model_dump()))


def get_feedback(ctx: CtxDep, feedback_id: uuid.UUID) -> object:
    return ctx.owned(MessageFeedback, feedback_id)


# Each operation is served under the current path and, deprecated, under the legacy table's name.
for prefix, deprecated, suffix in (("/messages", False, ""), ("/llms_messages", True, "Legacy")):
    router.add_api_route(f"{prefix}/{{message_id}}", get_message, methods=["GET"], response_model=MessageOut,
                         operation_id=f"getMessage{suffix}", deprecated=deprecated)
    router.add_api_route(f"{prefix}/{{message_id}}/feedbacks", list_feedbacks, methods=["GET"],
                         response_model=Page[FeedbackOut], operation_id=f"listMessageFeedbacks{suffix}",
                         deprecated=deprecated)
    router.add_api_route(f"{prefix}/{{message_id}}/feedbacks", create_feedback, methods=["POST"], status_code=201,
                         response_model=FeedbackOut, operation_id=f"createMessageFeedback{suffix}",
                         deprecated=deprecated, openapi_extra=creates("feedback_id"))

for prefix, deprecated, suffix in (("/message_feedbacks", False, ""), ("/llms_message_feedbacks", True, "Legacy")):
    router.add_api_route(f"{prefix}/{{feedback_id}}", get_feedback, methods=["GET"], response_model=FeedbackOut,
                         operation_id=f"getMessageFeedback{suffix}", deprecated=deprecated)
