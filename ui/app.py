"""The staff UI: chat with cited, checked answers, and the documents behind them.

`build_ui(components)` returns the Blocks; `app.server` mounts it at `/` with `mount_options()`
(Gradio 6 takes theme and CSS at mount/launch time, not in the Blocks constructor). The logic
is in `ui.handlers`; this module only lays out components and wires events to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Protocol

import gradio as gr

from index.loaders import SUPPORTED_EXTENSIONS
from index.workspaces import UnknownCollection, Workspaces
from rag.access import LOCAL, Grant
from rag.gate import GenerationGate
from rag.records import MODES
from rag.settings import Settings
from rag.usage import UsageLog
from ui import handlers, render

NOT_ALLOWED = (
    "This key may not upload or delete documents in this collection: sign in with an editor or admin key."
)
EXAMPLE = "What does the author say about refining capacity?"
CSS_PATH = Path(__file__).with_name("style.css")
SOURCES_CSS = Path(__file__).with_name("sources.css")
HELP = (
    "Ask about the ingested documents. Every sentence of an answer is checked against the "
    "passages it cites as [n]; the **Sources** panel shows each passage with the quoted span "
    "highlighted (click an answer to see its sources). Sentences the documents don't support "
    "are flagged ⚠, and when the documents hold no answer you are told so. Follow-up questions "
    "use the conversation so far. Rate answers with the thumbs under each one."
)
# System fonts only: nothing is fetched from a font service, and no font files load either.
SANS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]


def theme() -> gr.themes.Base:
    return gr.themes.Default(primary_hue="blue", neutral_hue="slate", font=SANS, font_mono=MONO)


def mount_options() -> dict:
    """What the UI adds to gr.mount_gradio_app's arguments: its look, and no run history."""
    return {
        "theme": theme(),
        "css_paths": [CSS_PATH],
        "run_history": False,  # Gradio would otherwise keep every answer in the browser's storage
    }


class UiComponents(Protocol):
    """What the UI is built over (`app.components.Components` has it)."""

    settings: Settings
    workspaces: Workspaces
    gate: GenerationGate


def build_ui(components: UiComponents, grant_of: Callable[[str | None], Grant | None] = lambda user: LOCAL,
             browser_secret: str | None = None) -> gr.Blocks:  # fmt: skip
    """`grant_of(signed-in user name)` is what that user may do (`rag.access`): the collections
    offered, and whether upload and delete are allowed. `browser_secret` seals each browser's id
    in its storage; one that outlives the process lets a browser find its chats after a restart
    (Gradio's default is new each start)."""
    settings = components.settings
    workspaces = components.workspaces
    llm = workspaces.default.answerer.llm  # one model answers in every collection

    def readable(request: gr.Request) -> list[str]:
        grant = grant_of(request.username)
        return workspaces.readable(grant) if grant is not None else []

    def services(name: str, request: gr.Request) -> handlers.CollectionServices:
        """The collection's parts, if this user may read it; else the same error as for none."""
        grant = grant_of(request.username)
        try:
            if grant is None:
                raise UnknownCollection(name)
            workspace = workspaces.get_for(grant, name)
        except UnknownCollection:
            raise gr.Error(f"No collection {name!r}: choose another.") from None
        return handlers.in_collection(settings, components.gate, workspace)

    def may_write(name: str, request: gr.Request) -> bool:
        grant = grant_of(request.username)
        return grant is not None and grant.writes(name)

    usage = UsageLog(settings.usage_path)

    def counted(name: str, request: gr.Request, **counts: int) -> None:
        """The UI's use, by the signed-in key's name (`local` without keys), as the API counts its."""
        grant = grant_of(request.username)
        for kind, count in {"requests": 1, **counts}.items():
            usage.add(grant.name if grant else "?", name, kind, count)

    def owner(browser: str, request: gr.Request) -> str:
        """Whose kept chats: the signed-in key's name (as the API keeps them), else this browser's."""
        grant = grant_of(request.username)
        if request.username is None or grant is None:
            return f"browser:{browser}"
        return grant.name

    with gr.Blocks(title="Grounded Q&A", analytics_enabled=False) as demo:
        exchanges = gr.State([])
        pending = gr.State("")  # the question being answered: the textbox is cleared at once
        kept = gr.State("")  # the id of the kept chat on screen ("" until its first answer)
        # Without keys, a browser's chats are its own: a random id kept in its local storage.
        browser = gr.BrowserState("", storage_key="rag-browser-id", secret=browser_secret)

        with gr.Sidebar(label="Chats", open=True, elem_id="chats-sidebar"):
            new_chat = gr.Button("New chat", variant="primary", elem_id="new-chat")
            chats = gr.Radio([], label="Kept chats", elem_id="chats", info="kept on the server, newest first")
            title = gr.Textbox(label="Rename this chat", max_lines=1, elem_id="chat-title")
            with gr.Row():
                rename = gr.Button("Rename", size="sm", elem_id="rename-chat")
                forget = gr.Button("Delete chat", size="sm", variant="stop", elem_id="delete-chat")

        gr.Markdown(f"# Ask your documents\n{HELP}", elem_id="intro")
        collection = gr.Dropdown(
            [settings.collection],
            value=settings.collection,
            label="Collection",
            info="the documents you ask and manage; your key decides which you see",
            elem_id="collection",
        )
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=420):
                    chatbot = gr.Chatbot(
                        elem_id="chatbot",
                        label="Conversation",
                        height=560,
                        placeholder="Ask a question about the ingested documents.",
                        latex_delimiters=[],
                        buttons=["copy"],
                        feedback_options=("Like", "Dislike"),
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            elem_id="question",
                            placeholder="Ask a question, then press Enter",
                            show_label=False,
                            scale=5,
                            max_lines=6,
                            max_length=settings.max_question_chars,
                        )
                        ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                    gr.Examples([[EXAMPLE]], inputs=[question], label="Example")
                    with gr.Row():
                        comment = gr.Textbox(
                            label="Comment sent with your next thumbs up / down (optional)",
                            scale=4,
                            max_lines=2,
                            elem_id="comment",
                        )
                        clear = gr.Button("New chat", scale=1, min_width=120, elem_id="clear")
                    feedback_status = gr.Markdown(elem_id="feedback-status")
                with gr.Column(scale=2, min_width=320):
                    with gr.Accordion("Settings", open=True, elem_id="settings"):
                        mode = gr.Radio(
                            list(MODES),
                            value=settings.retrieval_mode,
                            label="Retrieval mode",
                            info="hybrid = meaning + keywords; dense = meaning; bm25 = keywords",
                        )
                        top_k = gr.Slider(
                            1,
                            max(20, settings.top_k),
                            value=settings.top_k,
                            step=1,
                            label="Passages retrieved (top k)",
                        )
                        only = gr.Dropdown(
                            [],
                            multiselect=True,
                            label="Ask only these documents",
                            info="none chosen: every document of the collection",
                            elem_id="only-docs",
                        )
                        gr.Markdown(f"**Answer model:** `{llm.backend}` · `{llm.model}` (set by `RAG_LLM`)")
                    gr.Markdown("### Sources")
                    sources = gr.HTML(
                        render.sources_html(None), elem_id="sources", css_template=SOURCES_CSS.read_text()
                    )

            with gr.Tab("Documents", id="documents"):
                gr.Markdown(
                    "Upload files to make them answerable (supported: "
                    f"{' '.join(sorted(SUPPORTED_EXTENSIONS))}; up to {settings.max_file_mb:g} MB each). "
                    "A file with the same name replaces its earlier upload."
                )
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        files = gr.File(
                            file_count="multiple",
                            file_types=sorted(SUPPORTED_EXTENSIONS),
                            type="filepath",
                            label="Files to upload",
                            elem_id="upload-files",
                        )
                        upload = gr.Button("Upload and ingest", variant="primary", elem_id="upload")
                    with gr.Column(scale=2):
                        library_status = gr.Markdown(elem_id="library-status")
                        with gr.Row():
                            doomed = gr.Dropdown(
                                [], label="Document to delete", scale=3, elem_id="delete-doc"
                            )
                            delete = gr.Button(
                                "Delete", variant="stop", scale=1, min_width=80, elem_id="delete"
                            )
                table = gr.Dataframe(
                    headers=["Document", "Title", "Chunks", "Last ingested (UTC)", "Uploaded"],
                    datatype=["str", "str", "number", "str", "str"],
                    interactive=False,
                    label="Ingested documents",
                    elem_id="documents-table",
                )
                refresh = gr.Button("Refresh list", size="sm")

        # -- chat ----------------------------------------------------------------------------
        def answer(text, convo, mode_value, k, name, doc_ids, request: gr.Request):
            chosen = services(name, request)
            # Closed explicitly when Gradio drops this stream, so the generation slot comes back.
            answered = None
            with closing(handlers.chat(chosen, text, convo, mode_value, k, doc_ids)) as views:
                for view in views:
                    answered = view.exchanges[-1].answer if view.exchanges else None
                    yield view.messages, view.exchanges, view.sources
            if answered is not None and answered.question == (text or "").strip():
                counted(name, request, answers=1, refusals=int(answered.refused))

        # Each answer is kept at once: a reload or a restart finds the chat as it was.
        def chat_list(chosen: handlers.UiServices, who: str, current: str) -> tuple:
            choices = handlers.chat_choices(chosen, who)
            titles = dict((i, t) for t, i in choices)
            return gr.Radio(choices=choices, value=current or None), titles.get(current, "")

        def keep_answer(convo, current, name, browser_id, request: gr.Request):
            chosen, who = services(name, request), owner(browser_id, request)
            current = handlers.keep(chosen, who, current, convo)
            return current, *chat_list(chosen, who, current)

        # Asking is locked while an answer streams: a second question would read the conversation
        # (and the pending question) before the first answer is in it.
        def lock(text):
            return gr.Textbox(value="", interactive=False), gr.Button(interactive=False), text

        def unlock():
            return gr.Textbox(interactive=True), gr.Button(interactive=True)

        # No Gradio limit on answers: `handlers.chat` takes a slot from the gate the API shares, so
        # RAG_MAX_GENERATIONS counts UI and API answers together, and one queue (RAG_MAX_QUEUE)
        # holds both. A Gradio limit would be a second queue the gate and its metrics never see.
        for trigger in (question.submit, ask.click):
            trigger(lock, [question], [question, ask, pending], queue=False).then(
                answer,
                [pending, exchanges, mode, top_k, collection, only],
                [chatbot, exchanges, sources],
                concurrency_limit=None,
            ).then(unlock, None, [question, ask], queue=False).then(
                keep_answer, [exchanges, kept, collection, browser], [kept, chats, title]
            )
        # A new chat: the screen empties; the kept chats stay in the sidebar.
        reset = (
            lambda: ([], [], render.sources_html(None), "", "", gr.Radio(value=None), ""),
            None,
            [chatbot, exchanges, sources, feedback_status, kept, chats, title],
        )
        clear.click(*reset, queue=False)
        new_chat.click(*reset, queue=False)
        chatbot.clear(*reset, queue=False)

        # -- kept chats ----------------------------------------------------------------------
        def open_chat(chosen_id, name, browser_id, request: gr.Request):
            chosen, who = services(name, request), owner(browser_id, request)
            view = handlers.reopen(chosen, who, chosen_id or "")
            return (
                view.messages,
                view.exchanges,
                view.sources,
                chosen_id or "",
                *chat_list(chosen, who, chosen_id),
            )

        opened = [chatbot, exchanges, sources, kept, chats, title]
        chats.input(open_chat, [chats, collection, browser], opened, queue=False)

        def rename_chat(current, new_title, name, browser_id, request: gr.Request):
            chosen, who = services(name, request), owner(browser_id, request)
            if current and new_title.strip():
                chosen.conversations.rename(who, current, new_title)
            return chat_list(chosen, who, current)

        rename.click(rename_chat, [kept, title, collection, browser], [chats, title], queue=False)
        title.submit(rename_chat, [kept, title, collection, browser], [chats, title], queue=False)

        def delete_chat(current, name, browser_id, request: gr.Request):
            chosen, who = services(name, request), owner(browser_id, request)
            if current:
                chosen.conversations.delete(who, current)
            return chat_list(chosen, who, "")[0]

        forget.click(delete_chat, [kept, collection, browser], [chats], queue=False).then(*reset, queue=False)

        def show_sources(convo, event: gr.SelectData):
            return handlers.sources_for(convo, event.index)

        chatbot.select(show_sources, [exchanges], [sources])

        def rate(convo, note, name, event: gr.LikeData, request: gr.Request):
            rating = handlers.rating(event.liked)
            return handlers.feedback(services(name, request), convo, event.index, rating, note), ""

        chatbot.like(rate, [exchanges, comment, collection], [feedback_status, comment])

        # -- documents -----------------------------------------------------------------------
        def library_outputs(view: handlers.LibraryView):
            # The picker keeps what is chosen that still exists.
            return (
                view.status,
                view.rows,
                gr.Dropdown(choices=view.doc_ids, value=None),
                gr.Dropdown(choices=view.doc_ids),
            )

        # Gradio injects the progress tracker through this default: it must be a call here.
        def on_upload(paths, name, request: gr.Request, progress=gr.Progress()):  # noqa: B008
            chosen = services(name, request)
            if not may_write(name, request):
                return (*library_outputs(handlers.documents(chosen, NOT_ALLOWED)), None)

            def report(done: int, total: int, name: str) -> None:
                progress((done, total), desc=f"Ingesting {name}" if name else "Done", unit="files")

            view = handlers.upload(chosen, handlers.read_files(paths or []), report)
            counted(name, request, documents=view.changed)
            return (*library_outputs(view), None)

        upload.click(
            on_upload,
            [files, collection],
            [library_status, table, doomed, only, files],
            concurrency_limit=1,
            concurrency_id="ingest",
        )

        def on_delete(doc_id, name, request: gr.Request):
            chosen = services(name, request)
            if not may_write(name, request):
                return library_outputs(handlers.documents(chosen, NOT_ALLOWED))
            view = handlers.delete(chosen, doc_id)
            counted(name, request, documents=view.changed)
            return library_outputs(view)

        delete.click(
            on_delete,
            [doomed, collection],
            [library_status, table, doomed, only],
            concurrency_limit=1,
            concurrency_id="ingest",
        )

        def listed(name, request: gr.Request):
            return library_outputs(handlers.documents(services(name, request)))

        refresh.click(listed, [collection], [library_status, table, doomed, only])

        # The collections this user may read; the default chosen when it is one of them.
        def offered(request: gr.Request):
            names = readable(request)
            return gr.Dropdown(choices=names, value=settings.collection if settings.collection in names
                               else next(iter(names), None))  # fmt: skip

        # On (re)load: this browser's id, the collections offered, their documents, and the most
        # recent kept chat reopened as it was, sources and quotes too.
        def identify(browser_id: str) -> str:
            return browser_id or uuid.uuid4().hex

        def latest(name, browser_id, request: gr.Request):
            chosen, who = services(name, request), owner(browser_id, request)
            choices = handlers.chat_choices(chosen, who)
            return open_chat(choices[0][1] if choices else "", name, browser_id, request)

        demo.load(identify, [browser], [browser], queue=False).then(
            offered, None, [collection], queue=False
        ).then(listed, [collection], [library_status, table, doomed, only]).then(
            latest, [collection, browser], opened
        )
        # Another collection: its documents, and its latest kept chat.
        collection.input(listed, [collection], [library_status, table, doomed, only]).then(
            latest, [collection, browser], opened
        )
    return demo
