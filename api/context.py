"""What the routes share: the parts of one app, the collection a request names (checked against
the caller's key), and the answer path the native and OpenAI routes both take (question check,
generation slot, metrics, errors)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import tiktoken

from api.auth import Auth, Caller
from api.errors import GENERATION_FAILED, ApiError
from api.metrics import Metrics
from api.schemas import AskRequest
from index.workspaces import UnknownCollection, Workspace, Workspaces
from rag.conversations import ConversationRecord
from rag.gate import GenerationGate, Permit
from rag.question import question_problem
from rag.records import Answer, Filters, Mode, Turn, collection_problem
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.usage import Kind, UsageLog

log = logging.getLogger("rag.api")


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    workspaces: Workspaces
    gate: GenerationGate
    metrics: Metrics
    usage: UsageLog
    auth: Auth
    encoding: tiktoken.Encoding

    @property
    def retriever(self) -> Retriever:
        """The default collection's (what /readyz reports)."""
        return self.workspaces.default.retriever

    def collection(self, who: Caller, name: str | None, param: str = "collection") -> str:
        """The collection a request names, if the caller may read it, without opening it: 404 for one
        it may not read, exactly as for one that does not exist; 422 for an invalid name."""
        name = self._named(name, param)
        try:
            self.workspaces.check(who.grant, name)
        except UnknownCollection:
            raise no_collection(name, param) from None
        return name

    def _named(self, name: str | None, param: str) -> str:
        """The name a request gives (default: RAG_COLLECTION); 422 for one no collection can have."""
        name = name or self.settings.collection
        if name != self.settings.collection and (problem := collection_problem(name)):
            raise ApiError(422, f"{param}: {problem}", param=param)
        return name

    def workspace(
        self, who: Caller, name: str | None, param: str = "collection", write: bool = False
    ) -> Workspace:
        """That collection's parts, as the caller may use them: 404 and 422 as `collection`, 403 for
        a forbidden write."""
        name = self._named(name, param)
        try:
            workspace = self.workspaces.get_for(who.grant, name)
        except UnknownCollection:
            raise no_collection(name, param) from None
        if write and not who.grant.writes(name):
            raise ApiError(403, f"this key may not change documents in {name!r}", "permission_error")
        self.count(who, name, "requests")
        return workspace

    def readable(self, who: Caller) -> list[str]:
        """The collections this caller may read."""
        return self.workspaces.readable(who.grant)

    @staticmethod
    def owner(who: Caller) -> str:
        """Whose conversations these are: the key's name (`rag.access`), as the UI knows its user."""
        return who.grant.name

    def conversation(self, who: Caller, conversation_id: str) -> tuple[Workspace, ConversationRecord]:
        """The caller's conversation and its collection, or 404 (another key's is none of its)."""
        for name in self.readable(who):
            try:
                workspace = self.workspaces.get(name)
            except UnknownCollection:  # deleted since it was listed
                continue
            if record := workspace.conversations.get(self.owner(who), conversation_id):
                return workspace, record
        raise ApiError(
            404, f"no conversation {conversation_id!r}", "not_found_error", param="conversation_id"
        )

    def asking(self, who: Caller, body: AskRequest) -> tuple[Workspace, list[Turn], Callable[[Answer], None]]:
        """Where a question is answered, with what history, and what to do with the answer: add it
        to the conversation it names (whose collection it is asked in), or nothing."""
        if body.conversation_id is None:
            return self.workspace(who, body.collection), body.history, lambda answer: None
        workspace, record = self.conversation(who, body.conversation_id)
        if body.history:
            raise ApiError(422, "history: give history or conversation_id, not both", param="history")
        if body.collection not in (None, workspace.name):
            raise ApiError(422, f"collection: the conversation is in {workspace.name!r}", param="collection")
        self.count(who, workspace.name, "requests")
        owner = self.owner(who)
        return (
            workspace,
            record.as_history(),
            lambda answer: workspace.conversations.append(owner, record.id, answer),
        )

    def manage(self, who: Caller) -> None:
        """403 unless the caller may create and delete collections (an admin key)."""
        if not who.grant.manages:
            raise ApiError(403, "only admin keys may create or delete collections", "permission_error")

    def count(self, who: Caller, collection: str, kind: Kind, n: int = 1) -> None:
        """Usage by key name (never the key) and collection, in the log /metrics reads."""
        self.usage.add(who.grant.name, collection, kind, n)

    def answered(self, who: Caller, workspace: Workspace, answer: Answer) -> None:
        self.metrics.observe(answer)
        self.count(who, workspace.name, "answers")
        if answer.refused:
            self.count(who, workspace.name, "refusals")

    def question_ok(self, text: str, param: str) -> str:
        if problem := question_problem(text, self.settings.max_question_chars):
            raise ApiError(422, f"{param}: {problem}", param=param)
        return text

    def generate(self, who: Caller, workspace: Workspace, question: str, history: list[Turn],
                 mode: Mode | None, top_k: int | None, filters: Filters | None = None) -> Answer:  # fmt: skip
        permit = self.gate.acquire()
        try:
            answer = workspace.answerer.ask(question, history, mode, top_k, filters)
        except Exception as exc:
            log.exception("answer failed")
            self.metrics.errors.labels("answer").inc()
            raise ApiError(500, GENERATION_FAILED, "server_error") from exc
        finally:
            permit.release()
        self.answered(who, workspace, answer)
        return answer

    def streamed(self, who: Caller, workspace: Workspace, question: str, history: list[Turn],
                 mode: Mode | None, top_k: int | None, permit: Permit, filters: Filters | None = None
                 ) -> Iterator[str | Answer]:  # fmt: skip
        """The answer's events; the caller turns a failure mid-stream into an error event (the
        headers are already sent)."""
        try:
            for event in workspace.answerer.stream(question, history, mode, top_k, filters):
                if isinstance(event, Answer):
                    self.answered(who, workspace, event)
                yield event
        except Exception:
            log.exception("answer stream failed")
            self.metrics.errors.labels("answer").inc()
            raise
        finally:
            permit.release()


def no_collection(name: str, param: str) -> ApiError:
    """The one answer for a collection that does not exist and one the caller may not read."""
    return ApiError(404, f"{param}: no collection {name!r}", "not_found_error", param=param)
