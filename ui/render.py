"""Answers, sources and ingest results as chat Markdown and panel HTML.

Document text is untrusted: every piece of it (and of the question and the model's answer,
which quotes documents) is escaped before it reaches the browser.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import PurePath

from index.library import DocumentInfo
from index.report import FileResult
from rag.records import Answer, Source

NO_DOCUMENTS = "No documents are ingested yet: upload some in the **Documents** tab or run `rag ingest`."
# Markdown a document could smuggle into the chat (links, images, emphasis, code, headings,
# tables; lists at a line start). HTML's own characters are escaped by html.escape instead.
# Only these are escaped, so copied answers keep their full stops and hyphens clean.
_INLINE = re.compile(r"([\\`*_\[\]#|~])")
_LINE_START = re.compile(r"^(\s*)(\d+[.)]|[-+=])", re.M)


def md(text: str) -> str:
    """Untrusted text shown literally inside chat Markdown."""
    escaped = _INLINE.sub(r"\\\1", html.escape(text, quote=False))
    return _LINE_START.sub(lambda m: f"{m[1]}{m[2][:-1]}\\{m[2][-1]}", escaped)


def answer_markdown(answer: Answer) -> str:
    """The chat message for a finished answer: cited sentences, unsupported ones flagged."""
    if answer.refused:
        reason = f" _({md(answer.refusal_reason)})_" if answer.refusal_reason else ""
        closest = " The closest passages are in the sources panel." if answer.sources else ""
        return f"**Refused:** {md(answer.answer)}{reason}{closest}"
    if not answer.sentences:
        return md(answer.answer)
    parts = []
    for sentence in answer.sentences:
        cites = "".join(f" [{n}]" for n in sentence.citations)
        if sentence.supported:
            parts.append(f"{md(sentence.text)}{cites}")
        else:
            parts.append(f"⚠ _{md(sentence.text)}_ **(not supported by the documents)**")
    cited = [s for s in answer.sources if s.cited]
    footer = "; ".join(
        f"[{s.n}] {md(_file_name(s))}" + (f", {md(s.pages)}" if s.pages else "") for s in cited
    )
    return " ".join(parts) + (f"\n\nSources: {footer}" if footer else "")


def _file_name(source: Source) -> str:
    return PurePath(source.path).name or source.doc_id


def highlighted(source: Source) -> str:
    """The chunk's text, escaped, with the quoted span inside <mark> when it was cited."""
    text = source.text
    start = source.quote_start - source.char_start
    if not source.cited or text[start : start + len(source.quote)] != source.quote:
        # Offsets are exact by construction; a search is the fallback for old records.
        start = text.find(source.quote) if source.cited else -1
    if start < 0:
        return html.escape(text)
    end = start + len(source.quote)
    return f"{html.escape(text[:start])}<mark>{html.escape(text[start:end])}</mark>{html.escape(text[end:])}"


def _source_card(source: Source) -> str:
    parts = {"score": source.score, "dense": source.dense, "bm25": source.bm25, "rerank": source.rerank}
    scores = " · ".join(f"{name} {value:.3f}" for name, value in parts.items() if value is not None)
    page = f" (p. {source.quote_page_label or source.quote_page})" if source.quote_page else ""
    quote = f'<div class="quote">“{html.escape(source.quote)}”{page}</div>' if source.cited else ""
    return (
        f'<div class="source{" cited" if source.cited else ""}">'
        f'<div class="head"><span class="n">[{source.n}]</span> '
        f'<span class="file">{html.escape(_file_name(source))}</span> '
        + (f'<span class="where">{html.escape(source.locator())}</span> ' if source.locator() else "")
        + f'<span class="meta">chunk {source.chunk + 1} · {scores}</span></div>'
        f'<div class="doc">{html.escape(source.doc_id)} · '
        f"characters {source.char_start}–{source.char_end}</div>"
        f"{quote}"
        f'<div class="chunk">{highlighted(source)}</div>'
        "</div>"
    )


def sources_html(answer: Answer | None, message: str = "") -> str:
    """The sources panel for one answer: cited passages first, the quote marked in its chunk."""
    if answer is None or not answer.sources:
        note = message or "Ask a question: the passages behind the answer appear here."
        return f'<div class="sources empty">{html.escape(note)}</div>'
    question = f'<div class="question">For: {html.escape(answer.question)}</div>'
    if answer.refused:
        why = html.escape(answer.refusal_reason or "no reason given")
        intro = f'<div class="refused">Refused ({why}). Closest passages:</div>'
        cards = "".join(_source_card(s) for s in answer.sources)
        return f'<div class="sources">{question}{intro}{cards}</div>'
    cited = [s for s in answer.sources if s.cited]
    other = [s for s in answer.sources if not s.cited]
    body = "".join(_source_card(s) for s in cited)
    if other:
        body += (
            f"<details><summary>{len(other)} more retrieved passage{'s' if len(other) > 1 else ''}, "
            f"not cited</summary>{''.join(_source_card(s) for s in other)}</details>"
        )
    return f'<div class="sources">{question}{body}</div>'


def document_rows(documents: Sequence[DocumentInfo]) -> list[list]:
    # ISO times are stored in UTC ("2025-01-02T03:04:05+00:00"); the column header says UTC.
    return [
        [
            d.doc_id,
            d.title,
            d.chunks,
            d.ingested_at.replace("T", " ").removesuffix("+00:00"),
            "yes" if d.uploaded else "",
        ]
        for d in documents
    ]


def upload_markdown(results: Sequence[FileResult]) -> str:
    """One line per uploaded file: what happened to it, and why when it failed."""
    lines = []
    for r in results:
        name = md(PurePath(r.path).name)
        if r.status == "failed":
            lines.append(f"- ✗ **{name}**: failed: {md(r.error or 'unknown error')}")
        else:
            verb = {"unchanged": "already ingested, unchanged"}.get(r.status, r.status)
            line = f"- ✓ **{name}**: {verb}, {r.chunks} chunk{'s' if r.chunks != 1 else ''}"
            line += "".join(f" (warning: {md(w)})" for w in r.warnings)
            lines.append(line)
    ok = sum(r.status != "failed" for r in results)
    return f"**{ok} of {len(results)} file{'s' if len(results) != 1 else ''} ingested.**\n\n" + "\n".join(
        lines
    )
