"""What the UI's buttons do, as plain functions over `UiServices`: testable without Gradio.

The conversation lives in a list of `Exchange`s (kept per browser session in a gr.State); the
chat messages are always rendered from it, so message 2i and 2i+1 belong to exchange i.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from index.library import Library
from index.report import IngestLocked
from index.workspaces import Workspace
from rag.answer import Answerer
from rag.conversations import ConversationStore
from rag.feedback import FeedbackStore
from rag.gate import GenerationGate, Limited
from rag.question import question_problem
from rag.records import Answer, Filters, Turn
from rag.settings import Settings
from ui import render

log = logging.getLogger(__name__)

LOCKED = "Another ingest is running (an upload, a delete or `rag ingest`): try again in a moment."
THINKING = "_Searching the documents…_"


class UiServices(Protocol):
    """What the handlers need: one collection's parts, the settings and the generation gate
    (`app.components.Components` is this for the default collection; `in_collection` for any)."""

    settings: Settings
    answerer: Answerer
    library: Library
    feedback: FeedbackStore
    conversations: ConversationStore
    gate: GenerationGate  # shared with the API: one limit on generations for both


@dataclass(frozen=True)
class CollectionServices:
    settings: Settings
    answerer: Answerer
    library: Library
    feedback: FeedbackStore
    conversations: ConversationStore
    gate: GenerationGate


def in_collection(settings: Settings, gate: GenerationGate, workspace: Workspace) -> CollectionServices:
    return CollectionServices(
        settings, workspace.answerer, workspace.library, workspace.feedback, workspace.conversations, gate
    )


@dataclass
class Exchange:
    question: str
    answer: Answer | None = None  # None while streaming, or when it failed
    text: str = ""  # streamed text so far
    message: str | None = None  # Markdown shown instead of the answer (errors, empty index)


class ChatView(NamedTuple):
    messages: list[dict]
    exchanges: list[Exchange]
    sources: str  # HTML of the sources panel


class LibraryView(NamedTuple):
    status: str  # Markdown
    rows: list[list]  # the documents table
    doc_ids: list[str]
    changed: int = 0  # documents this action added, updated or deleted


# -- chat ------------------------------------------------------------------------------------


def messages(exchanges: Sequence[Exchange], notice: str | None = None) -> list[dict]:
    """Chat messages (user, assistant) for each exchange; a notice is a last, unnumbered one."""
    out = []
    for ex in exchanges:
        out.append({"role": "user", "content": render.md(ex.question)})
        if ex.message is not None:
            content = ex.message
        elif ex.answer is not None:
            content = render.answer_markdown(ex.answer)
        else:
            content = f"{render.md(ex.text)} ▍" if ex.text else THINKING
        out.append({"role": "assistant", "content": content})
    if notice:
        out.append({"role": "assistant", "content": notice})
    return out


def history(exchanges: Sequence[Exchange]) -> list[Turn]:
    """Earlier turns for condensing a follow-up: every exchange that got an answer."""
    return [Turn(question=ex.question, answer=ex.answer.answer) for ex in exchanges if ex.answer is not None]


def chat(
    components: UiServices,
    question: str,
    exchanges: Sequence[Exchange],
    mode: str | None = None,
    top_k: int | None = None,
    doc_ids: Sequence[str] = (),
) -> Iterator[ChatView]:
    """Stream one answer: the question at once, then the text as it comes, then the checked
    Answer (which replaces the streamed text: a refusal withdraws it). With `doc_ids`, only
    those documents are asked."""
    done = list(exchanges)
    question = (question or "").strip()
    if problem := question_problem(question, components.settings.max_question_chars):
        notice = "Please type a question first." if not question else f"Sorry: {problem}."
        yield ChatView(messages(done, notice), done, _latest_sources(done))
        return

    current = Exchange(question)
    convo = [*done, current]
    waiting = render.sources_html(None, "Searching…")
    yield ChatView(messages(convo), convo, waiting)
    try:
        permit = components.gate.acquire()
    except Limited as exc:  # the API's questions count too: the same gate, the same refusal
        current.message = f"⚠ Sorry, {render.md(str(exc))}."
        yield ChatView(messages(convo), convo, render.sources_html(None, "No answer."))
        return
    failure = None
    try:
        stream = components.answerer.stream(
            question, history(done), mode=mode, top_k=int(top_k or 0) or None,
            filters=Filters(doc_ids=list(doc_ids)) if doc_ids else None,
        )  # fmt: skip
        with closing(stream):  # a closed page closes the model's stream too, which stops it
            for event in stream:
                if isinstance(event, Answer):
                    current.answer = event
                else:
                    current.text += event
                    yield ChatView(messages(convo), convo, waiting)
    except Exception as exc:  # a model or store failure must not reach the page as a traceback
        log.exception("answering %r failed", question)
        failure = exc
    finally:  # on every path: answered, failed, or the page went away (GeneratorExit)
        permit.release()
    if failure is not None:
        current.text = ""
        current.message = f"⚠ Sorry, the answer failed: {render.md(_short(failure))}. Please try again."
        yield ChatView(messages(convo), convo, render.sources_html(None, "No answer."))
        return
    answer = current.answer
    if answer is None:  # the stream ended early: treat as a failure, not a blank answer
        current.message = "⚠ Sorry, the answer was cut off. Please try again."
    elif (
        answer.refused and answer.refusal_reason == "nothing in the documents" and _store_is_empty(components)
    ):
        current.message = render.NO_DOCUMENTS
        yield ChatView(messages(convo), convo, render.sources_html(None, "No documents yet."))
        return
    yield ChatView(messages(convo), convo, render.sources_html(answer))


def _short(exc: Exception, limit: int = 200) -> str:
    """One line naming the error: its type and the start of its message, never a traceback."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _store_is_empty(components: UiServices) -> bool:
    try:
        return not components.library.documents()
    except Exception:
        log.exception("listing documents failed")
        return False


def _latest_sources(exchanges: Sequence[Exchange]) -> str:
    return render.sources_html(next((ex.answer for ex in reversed(exchanges) if ex.answer), None))


def sources_for(exchanges: Sequence[Exchange], message_index: int) -> str:
    """The sources panel for the answer a clicked chat message belongs to."""
    i = message_index // 2
    answer = exchanges[i].answer if 0 <= i < len(exchanges) else None
    return render.sources_html(answer)


def rating(liked: bool | str | None) -> str | None:
    """Gradio's LikeData.liked as a rating; clicking a thumb again to undo it sends ""."""
    if liked is True or liked == "Like":
        return "up"
    if liked is False or liked == "Dislike":
        return "down"
    return None


def feedback(
    components: UiServices,
    exchanges: Sequence[Exchange],
    message_index: int,
    rating: str | None,
    comment: str = "",
) -> str:
    """Store a thumbs up/down with the whole Answer and the conversation before it."""
    i = message_index // 2
    if not 0 <= i < len(exchanges) or exchanges[i].answer is None:
        return "There is no answer there to rate."
    if rating is None:
        return "Rating removed here; one already sent stays on record."
    components.feedback.add(exchanges[i].answer, rating, comment or "", history=history(exchanges[:i]))
    word = "helpful" if rating == "up" else "not helpful"
    return f"Thanks: “{render.md(exchanges[i].question)}” rated {word}, with the full answer record."


# -- kept conversations ----------------------------------------------------------------------


def chat_choices(components: UiServices, owner: str) -> list[tuple[str, str]]:
    """(title, id) of the owner's kept chats in this collection, the most recent first."""
    return [(c.title or "Untitled chat", c.id) for c in components.conversations.list(owner)]


def keep(components: UiServices, owner: str, conversation_id: str, exchanges: Sequence[Exchange]) -> str:
    """Store the newest answer in the kept chat (started with the first answer); returns its id.
    Failed turns are not kept, as they are not history either."""
    answered = [ex.answer for ex in exchanges if ex.answer is not None]
    if not answered:
        return conversation_id
    store = components.conversations
    record = store.get(owner, conversation_id) if conversation_id else None
    if record is None:
        record = store.create(owner)
    if record.turns < len(answered):
        store.append(owner, record.id, answered[-1])
    return record.id


def reopen(components: UiServices, owner: str, conversation_id: str) -> ChatView:
    """A kept chat as it was: its messages, and the sources of its last answer."""
    record = components.conversations.get(owner, conversation_id) if conversation_id else None
    exchanges = [Exchange(t.question, t.answer) for t in record.history] if record else []
    return ChatView(messages(exchanges), exchanges, _latest_sources(exchanges))


# -- documents -------------------------------------------------------------------------------


def documents(components: UiServices, status: str = "") -> LibraryView:
    docs = components.library.documents()
    if not status and not docs:
        status = render.NO_DOCUMENTS
    return LibraryView(status, render.document_rows(docs), [d.doc_id for d in docs])


def read_files(paths: Sequence[str | Path]) -> list[tuple[str, bytes]]:
    """(original name, bytes) of files Gradio saved: it keeps the client's name as the base name."""
    return [(Path(p).name, Path(p).read_bytes()) for p in paths]


def upload(
    components: UiServices,
    files: Sequence[tuple[str, bytes]],
    progress: Callable[[int, int, str], None] | None = None,
) -> LibraryView:
    """Ingest uploaded files; one status line per file."""
    if not files:
        return documents(components, "Choose one or more files first.")
    try:
        results = components.library.upload(list(files), progress)
    except IngestLocked:
        return documents(components, LOCKED)
    changed = sum(r.changed for r in results)
    return documents(components, render.upload_markdown(results))._replace(changed=changed)


def delete(components: UiServices, doc_id: str | None) -> LibraryView:
    if not doc_id:
        return documents(components, "Choose a document to delete first.")
    try:
        removed = components.library.delete(doc_id)
    except IngestLocked:
        return documents(components, LOCKED)
    if not removed:
        return documents(components, f"No document {render.md(doc_id)}: it may already be deleted.")
    return documents(components, f"Deleted **{render.md(doc_id)}** ({removed} chunks).")._replace(changed=1)
