"""The UI's handlers as plain functions: real Chroma on disk, the hash embedder, fake LLMs."""

from __future__ import annotations

import html
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from app.components import Components, assemble
from rag.answer import Answerer
from rag.embeddings import hash_embedder
from rag.extractive import ExtractiveComposer
from rag.llm import Message
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import open_store
from rag.support import SupportChecker
from ui import handlers, render

QUESTION = "What does the author say about refining capacity?"
FACT = "The Zorblax turbine at Lake Quimby produces 42 megawatts of tidal power."
CITATION = re.compile(r"\[\d+\]")


class ScriptedLLM:
    """A generative backend that says what it is told, word by word."""

    backend = "scripted"
    model = "scripted-1"
    generative = True

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def stream(self, messages: Sequence[Message], question: str, passages: Sequence[str]) -> Iterator[str]:
        for word in self.reply.split(" "):
            yield word + " "


class BrokenLLM(ScriptedLLM):
    """Starts answering, then the backend dies (a dropped connection, an OOM, ...)."""

    def stream(self, messages, question, passages):
        yield "India is "
        raise RuntimeError("backend exploded")


@pytest.fixture
def make(tmp_path: Path, corpus: Path):
    def build(llm=None, ingest: bool = True) -> Components:
        # The hash embedder's cosines run lower than MiniLM's: its own refusal threshold.
        settings = Settings(
            data_dir=tmp_path / "data", collection="test_docs", embedder="hash", llm="extractive",
            answerability_threshold=0.05, _env_file=None,
        )  # fmt: skip
        embedder = hash_embedder()
        retriever = Retriever(
            open_store(settings), embedder, settings.data_dir / "bm25" / settings.collection
        )
        checker = SupportChecker(embedder, settings.support_threshold)
        components = assemble(
            settings, Answerer(retriever, llm or ExtractiveComposer(checker), checker, settings)
        )
        if ingest:
            components.library.ingestor.ingest([corpus])
            retriever.warm_up()
        return components

    return build


def ask(components: Components, question: str, exchanges=(), **kw) -> list[handlers.ChatView]:
    return list(handlers.chat(components, question, list(exchanges), **kw))


def last_message(view: handlers.ChatView) -> str:
    assert view.messages[-1]["role"] == "assistant"
    return view.messages[-1]["content"]


# -- chat ------------------------------------------------------------------------------------


def test_streamed_answer_ends_with_citations_and_the_quote_marked_in_its_chunk(make):
    views = ask(make(), QUESTION)
    first, *streaming, final = views
    # The question shows at once, before any answer text.
    assert first.messages[0] == {"role": "user", "content": QUESTION}
    assert last_message(first) == handlers.THINKING
    assert streaming and all(last_message(v).endswith("▍") for v in streaming)

    (exchange,) = final.exchanges
    answer = exchange.answer
    assert answer is not None and not answer.refused
    assert CITATION.search(last_message(final)) and "▍" not in last_message(final)
    cited = [s for s in answer.sources if s.cited]
    assert cited
    for source in cited:
        assert f"<mark>{html.escape(source.quote)}</mark>" in final.sources
        assert "refining" in source.quote
    assert html.escape(cited[0].doc_id) in final.sources
    assert f"chunk {cited[0].chunk + 1}" in final.sources


def test_follow_up_question_is_asked_with_the_history(make):
    components = make()
    first = ask(components, QUESTION)[-1]
    follow = ask(components, "and recycling?", first.exchanges)[-1]
    assert [e.question for e in follow.exchanges] == [QUESTION, "and recycling?"]
    # Without a generative model the previous question's words are carried into the query.
    assert follow.exchanges[1].answer.condensed_query == f"{QUESTION} and recycling?"
    assert len(follow.messages) == 4


def test_retrieval_mode_and_top_k_reach_the_answerer(make):
    answer = ask(make(), QUESTION, mode="bm25", top_k=2)[-1].exchanges[0].answer
    assert answer.settings["retrieval_mode"] == "bm25"
    assert answer.settings["top_k"] == 2
    assert len(answer.sources) <= 2


def test_off_topic_question_is_shown_as_a_refusal_with_the_closest_sources(make):
    final = ask(make(), "zeppelin airship helium mooring mast")[-1]
    answer = final.exchanges[0].answer
    assert answer.refused
    assert last_message(final).startswith("**Refused:** The documents don't contain an answer to that.")
    assert "answerability 0.0" in last_message(final) and "below 0.05" in last_message(final)
    assert "Closest passages" in final.sources
    assert final.sources.count('<div class="source">') == len(answer.sources) > 0
    assert "<mark>" not in final.sources, "nothing was cited, so nothing is highlighted"


def test_refusal_after_streaming_replaces_the_streamed_text(make):
    views = ask(make(ScriptedLLM("The moon is made of green cheese.")), QUESTION)
    assert any("green cheese" in last_message(v) for v in views[:-1]), "the text streamed first"
    final = last_message(views[-1])
    assert final.startswith("**Refused:**") and "green cheese" not in final


def test_unsupported_sentence_is_flagged_and_supported_one_cited(make):
    llm = ScriptedLLM(
        "India is thinking of adding refining capacity [1]. "
        "The moon is made of green cheese and orbits Jupiter."
    )
    final = last_message(ask(make(llm), QUESTION)[-1])
    supported, invented = final.split("\n\n")[0].split(" ⚠ ")
    assert "refining capacity" in supported and CITATION.search(supported)
    assert "green cheese" in invented and invented.endswith("**(not supported by the documents)**")


def test_model_failure_is_a_friendly_message_not_a_traceback(make):
    components = make(BrokenLLM("unused"))
    final = ask(components, QUESTION)[-1]
    message = last_message(final)
    assert message.startswith("⚠ Sorry, the answer failed: RuntimeError: backend exploded")
    assert "Traceback" not in message and "India is" not in message
    assert final.exchanges[0].answer is None
    assert handlers.history(final.exchanges) == [], "a failed turn is not history for the next one"
    assert "Traceback" not in final.sources


def test_empty_question_asks_for_one_and_changes_nothing(make):
    components = make()
    before = ask(components, QUESTION)[-1].exchanges
    (view,) = ask(components, "   ", before)
    assert view.exchanges == before
    assert last_message(view) == "Please type a question first."
    assert len(view.messages) == 3


def test_too_long_question_is_refused_with_the_limit(make):
    components = make()
    (view,) = ask(components, "x" * (components.settings.max_question_chars + 1))
    assert "the limit is 4000" in last_message(view) and view.exchanges == []


def test_empty_index_says_how_to_add_documents(make):
    final = ask(make(ingest=False), QUESTION)[-1]
    assert last_message(final) == render.NO_DOCUMENTS
    assert "Documents" in last_message(final) and "rag ingest" in last_message(final)


def test_document_text_is_escaped_everywhere(make, tmp_path: Path):
    components = make()
    evil = "The <img src=x onerror=alert(1)> gadget [link](javascript:alert(2)) costs *nine* dollars."
    components.library.upload([("evil.txt", evil.encode())])
    final = ask(components, "How much does the gadget cost?")[-1]
    answer = final.exchanges[0].answer
    assert not answer.refused and any(s.cited and "gadget" in s.quote for s in answer.sources)
    for shown in (final.sources, last_message(final)):
        assert "<img" not in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown
    assert "\\[link\\](javascript:alert(2))" in last_message(final), "no clickable link from a document"


def test_clicking_a_message_shows_that_answers_sources(make):
    components = make()
    convo = ask(components, "zeppelin airship helium mooring mast")[-1].exchanges
    convo = ask(components, QUESTION, convo)[-1].exchanges
    assert convo[0].answer.refused and not convo[1].answer.refused
    assert "Refused" in handlers.sources_for(convo, 0) == handlers.sources_for(convo, 1)
    assert "<mark>" in handlers.sources_for(convo, 3) and "Refused" not in handlers.sources_for(convo, 3)
    assert "Ask a question" in handlers.sources_for(convo, 9)


# -- feedback --------------------------------------------------------------------------------


def test_feedback_is_stored_with_the_full_answer_and_the_history(make):
    components = make()
    convo = ask(components, QUESTION)[-1].exchanges
    convo = ask(components, "and recycling?", convo)[-1].exchanges
    status = handlers.feedback(components, convo, 3, "down", "  missed the point ")
    assert "not helpful" in status
    (entry,) = components.feedback.entries()
    assert entry.rating == "down" and entry.comment == "missed the point"
    assert entry.answer == convo[1].answer
    assert entry.answer.sources and entry.answer.sentences
    assert [t.model_dump() for t in entry.history] == [
        {"question": QUESTION, "answer": convo[0].answer.answer}
    ]


def test_thumb_clicks_map_to_ratings_and_undoing_one_stores_nothing(make):
    # What Gradio's chatbot sends as LikeData.liked: True, False, and "" when a thumb is unclicked.
    assert [handlers.rating(v) for v in (True, False, "", "Like", "Dislike")] == [
        "up",
        "down",
        None,
        "up",
        "down",
    ]
    components = make()
    convo = ask(components, QUESTION)[-1].exchanges
    assert "removed" in handlers.feedback(components, convo, 1, None)
    assert components.feedback.entries() == []


def test_feedback_on_a_message_without_an_answer_stores_nothing(make):
    components = make()
    convo = ask(make(BrokenLLM("unused")), QUESTION)[-1].exchanges
    assert handlers.feedback(components, convo, 1, "up") == "There is no answer there to rate."
    assert handlers.feedback(components, convo, 7, "up") == "There is no answer there to rate."
    assert components.feedback.entries() == []


# -- documents -------------------------------------------------------------------------------


def test_upload_reports_each_file_and_the_good_one_becomes_answerable(make, tmp_path: Path):
    components = make()
    broken_pdf = b"%PDF-1.4\n" + random.Random(1).randbytes(2000)
    progress = []
    view = handlers.upload(
        components,
        [("turbines.txt", FACT.encode()), ("broken.pdf", broken_pdf)],
        lambda done, total, name: progress.append((done, total, name)),
    )
    assert "1 of 2 files ingested" in view.status
    good, bad = view.status.split("\n\n")[1].splitlines()
    assert good.startswith("- ✓ **turbines.txt**: added, 1 chunk")
    assert bad.startswith("- ✗ **broken.pdf**: failed: unreadable PDF")
    assert progress == [(0, 2, "turbines.txt"), (1, 2, "broken.pdf"), (2, 2, "")]
    assert "uploads/turbines.txt" in view.doc_ids
    row = next(r for r in view.rows if r[0] == "uploads/turbines.txt")
    assert row[1] == "turbines" and row[2] == 1 and row[4] == "yes"

    answer = ask(components, "How much power does the Zorblax turbine produce?")[-1].exchanges[0].answer
    assert not answer.refused
    assert "42 megawatts" in answer.answer
    assert any(s.doc_id == "uploads/turbines.txt" and s.cited for s in answer.sources)


def test_upload_name_with_a_path_lands_inside_the_upload_dir(make, tmp_path: Path):
    components = make()
    view = handlers.upload(components, [("../../evil.txt", FACT.encode())])
    assert "✓ **evil.txt**" in view.status
    uploads = tmp_path / "data" / "workspaces" / "test_docs" / "uploads"
    assert (uploads / "evil.txt").read_text() == FACT
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    assert "uploads/evil.txt" in view.doc_ids


def test_upload_while_another_ingest_runs_says_try_again(make, tmp_path: Path):
    components = make()
    with components.library.ingestor.store.state.take().kept():  # as another process's ingest would
        view = handlers.upload(components, [("turbines.txt", FACT.encode())])
        deleted = handlers.delete(components, view.doc_ids[0])
    assert view.status == handlers.LOCKED == deleted.status
    assert "try again" in view.status
    assert "uploads/turbines.txt" not in view.doc_ids


def test_delete_removes_the_document_and_its_answers(make):
    components = make()
    handlers.upload(components, [("turbines.txt", FACT.encode())])
    view = handlers.delete(components, "uploads/turbines.txt")
    assert view.status.startswith("Deleted **uploads/turbines.txt** (1 chunks)")
    assert "uploads/turbines.txt" not in view.doc_ids
    assert all(row[0] != "uploads/turbines.txt" for row in view.rows)
    answer = ask(components, "How much power does the Zorblax turbine produce?")[-1].exchanges[0].answer
    assert "42 megawatts" not in answer.answer
    assert handlers.delete(components, "uploads/turbines.txt").status.startswith("No document")
    assert handlers.delete(components, None).status == "Choose a document to delete first."


def test_documents_table_lists_id_title_chunks_and_ingest_time(make):
    view = handlers.documents(make())
    assert view.doc_ids == ["corpus/000_6aae78438c92dd18.txt", "corpus/004_dd6e77b3f402edf5.txt"]
    doc_id, title, chunks, ingested_at, uploaded = view.rows[0]
    assert doc_id == view.doc_ids[0] and title and chunks > 1 and uploaded == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", ingested_at)


def test_empty_documents_list_says_how_to_add_some(make):
    view = handlers.documents(make(ingest=False))
    assert view.status == render.NO_DOCUMENTS and view.rows == [] and view.doc_ids == []


def test_gradio_upload_paths_keep_the_client_file_name(tmp_path: Path):
    saved = tmp_path / "gradio" / "3f2a" / "report.txt"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"hello")
    assert handlers.read_files([str(saved)]) == [("report.txt", b"hello")]


# -- rendering and the app -------------------------------------------------------------------


def test_markdown_from_documents_is_shown_literally():
    assert (
        render.md("*bold* [x](javascript:1) `code` <b>")
        == "\\*bold\\* \\[x\\](javascript:1) \\`code\\` &lt;b&gt;"
    )
    assert render.md("1. first\n- second") == "1\\. first\n\\- second"
    assert render.md("well-known 2.5 m.") == "well-known 2.5 m.", "ordinary prose stays clean to copy"


def test_the_ui_mounts_offline_and_serves_its_page(make):
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from ui.app import build_ui, mount_options

    components = make()
    # As app.server.mount_ui mounts it, without the sign-in.
    app = gr.mount_gradio_app(
        FastAPI(),
        build_ui(components),
        path="/",
        footer_links=[],
        max_file_size=25_000_000,
        **mount_options(),
    )
    with TestClient(app) as client:
        page = client.get("/")
        config = client.get("/config").json()
        theme_css = client.get("/theme.css").text
    assert page.status_code == 200
    # System fonts, no font files or font services, no analytics.
    assert "system-ui" in theme_css and "@font-face" not in theme_css and "googleapis" not in theme_css
    assert config["stylesheets"] == [] and config["analytics_enabled"] is False
    assert "#chatbot" in config["css"], "ui/style.css is applied"
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {
        "Conversation",
        "Retrieval mode",
        "Files to upload",
        "Ingested documents",
        "Ask only these documents",
        "Collection",
        "Kept chats",
    } <= labels
    shown = " ".join(str(c.get("props", {}).get("value")) for c in config["components"])
    assert "`extractive` · `extractive`" in shown, "the answer backend and model are shown"


def test_a_pdf_citation_shows_its_page_and_section(make):
    from pdf_fixtures import TURBINE_FACT, turbine_report

    components = make()
    handlers.upload(components, [("harbour.pdf", turbine_report())], lambda *_: None)
    view = ask(components, "How much power does the Zorblax turbine produce?")[-1]
    answer = view.exchanges[0].answer
    (source,) = [s for s in answer.sources if s.cited and s.doc_id == "uploads/harbour.pdf"]
    assert source.quote in TURBINE_FACT and source.quote_page == 2
    assert source.section.endswith("2 Turbines")
    assert f"harbour.pdf, {source.pages}" in last_message(view)
    card = render.sources_html(answer)
    assert f"({'p. 2'})" in card and html.escape(source.locator()) in card


def test_each_answer_is_kept_once_and_a_kept_chat_reopens_as_it_was(make):
    components = make()
    first = ask(components, QUESTION)[-1]
    kept = handlers.keep(components, "browser:a", "", first.exchanges)
    assert handlers.keep(components, "browser:a", kept, first.exchanges) == kept, "no second copy"
    failed = [*first.exchanges, handlers.Exchange("and then?", message="⚠ Sorry, the answer failed")]
    assert handlers.keep(components, "browser:a", kept, failed) == kept
    assert components.conversations.get("browser:a", kept).turns == 1, "a failed turn is not kept"
    second = ask(components, "And what about recycling?", first.exchanges)[-1]
    handlers.keep(components, "browser:a", kept, second.exchanges)
    reopened = handlers.reopen(components, "browser:a", kept)
    assert [ex.question for ex in reopened.exchanges] == [QUESTION, "And what about recycling?"]
    assert reopened.messages == second.messages and reopened.sources == second.sources
    assert handlers.chat_choices(components, "browser:a") == [(QUESTION, kept)]
    assert (
        handlers.chat_choices(components, "browser:b") == []
        and handlers.reopen(components, "browser:b", kept).exchanges == []
    )


def test_the_document_picker_asks_only_the_chosen_documents(make):
    components = make()
    docs = handlers.documents(components).doc_ids
    everywhere = ask(components, QUESTION)[-1].exchanges[0].answer
    refining_doc = next(s.doc_id for s in everywhere.sources if s.cited)
    other = next(d for d in docs if d != refining_doc)
    only_other = ask(components, QUESTION, doc_ids=[other])[-1].exchanges[0].answer
    assert only_other.filters.doc_ids == [other]
    assert {s.doc_id for s in only_other.sources} <= {other}, "nothing from the documents not chosen"
