"""The everyday commands: `rag ingest`, `retrieve`, `ask`, `chat`, `serve`, `collections`, `keys`:
build, call, print.

Heavy imports happen inside the functions, so `rag --help` loads none of them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from app.components import load_settings
from rag.settings import Settings

if TYPE_CHECKING:
    from index.workspaces import CollectionInfo
    from rag.usage import UsageRow

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3


def settings_for(args: argparse.Namespace, **extra: object) -> Settings:
    """Settings from the environment, with the command line's overrides (validated like the rest)."""
    overrides = {name: value for name in ("collection", "llm") if (value := getattr(args, name, None))}
    return load_settings(**(overrides | extra))


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.offline import enforce_offline

    enforce_offline()
    from app.components import build_ingestor
    from index.report import IngestLocked
    from rag.embeddings import build_embedder
    from rag.store import open_store

    settings = settings_for(args)
    ingestor = build_ingestor(settings, open_store(settings), build_embedder(settings))
    try:
        report = ingestor.ingest([Path(p) for p in args.paths], prune=args.prune)
    except FileNotFoundError as exc:
        print(f"rag ingest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except IngestLocked as exc:
        print(f"rag ingest: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    for f in report.files:
        for warning in f.warnings:
            print(f"warning: {f.path}: {warning}", file=sys.stderr)
        if f.status == "failed":
            print(f"failed: {f.path}: {f.error}", file=sys.stderr)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return EXIT_FAILED if report.count("failed") else EXIT_OK


def cmd_collections(args: argparse.Namespace) -> int:
    """`rag collections list|create|delete`: straight on the store, so no model or embedder loads."""
    from rag.offline import enforce_offline

    enforce_offline()
    from app.components import build_workspaces
    from index.report import IngestLocked
    from index.workspaces import UnknownCollection

    workspaces = build_workspaces(load_settings())
    try:
        if args.action == "create":
            created = workspaces.create(args.name)
            print(f"created collection {created.name!r}")
        elif args.action == "delete":
            doomed = workspaces.info(args.name)  # counted first: afterwards there is nothing to count
            workspaces.delete(args.name)
            print(f"deleted collection {doomed.name!r}: {doomed.documents} documents, {doomed.chunks} chunks")
        else:
            _print_collections([workspaces.info(name) for name in workspaces.names()], args.json)
    except UnknownCollection as exc:
        print(f"rag collections {args.action}: no collection {exc.args[0]!r}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # a bad name, or CollectionConflict: exists already, or the default
        print(f"rag collections {args.action}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except IngestLocked as exc:
        print(f"rag collections {args.action}: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    return EXIT_OK


def _print_collections(collections: list[CollectionInfo], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(c) for c in collections], indent=2))
        return
    width = max(len("collection"), *(len(c.name) for c in collections))
    print(f"{'collection':<{width}}  documents  chunks  default")
    for c in collections:
        print(f"{c.name:<{width}}  {c.documents:>9}  {c.chunks:>6}  {'*' if c.default else ''}".rstrip())


def cmd_keys(args: argparse.Namespace) -> int:
    """`rag keys usage|list`: the usage log and the key settings only, so nothing loads."""
    settings = load_settings()
    return _key_usage(settings, args) if args.action == "usage" else _list_keys(settings)


def _key_usage(settings: Settings, args: argparse.Namespace) -> int:
    from rag.usage import UsageLog

    rows = [
        row
        for row in UsageLog(settings.usage_path).rows()
        if args.key in (None, row.key) and args.collection in (None, row.collection)
    ]
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    elif rows:
        _print_usage(rows)
    else:
        scope = f" for key {args.key!r}" if args.key else ""
        scope += f" in collection {args.collection!r}" if args.collection else ""
        print(f"no usage recorded{scope}" if scope else "no usage recorded yet: the API server records "
              f"each key's requests by name in {settings.usage_path}")  # fmt: skip
    return EXIT_OK


def _list_keys(settings: Settings) -> int:
    from rag.access import load_grants

    try:
        grants = load_grants(settings)
    except (OSError, ValueError) as exc:  # KeysFileError names file:line
        print(f"rag keys list: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not grants:
        print("no API keys configured: the server answers loopback clients only, and they may do everything")
        return EXIT_OK
    # Keys sharing a name share their permissions (load_grants makes sure), so a name is one line.
    shared = Counter(grant.name for grant in grants.values())
    by_name = {grant.name: grant for grant in grants.values()}
    _print_table(
        ["name", "role", "keys", "collections"],
        [
            [
                name,
                grant.role,
                shared[name],
                "*" if grant.collections is None else ",".join(sorted(grant.collections)),
            ]
            for name, grant in sorted(by_name.items())
        ],
    )
    return EXIT_OK


def _print_usage(rows: list[UsageRow]) -> None:
    from rag.usage import KINDS

    def utc(stamp: str) -> str:
        return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    table: list[list[str | int]] = [
        [row.key, row.collection, *(getattr(row, kind) for kind in KINDS), utc(row.last_at)] for row in rows
    ]
    total = ["total", "", *(sum(getattr(row, kind) for row in rows) for kind in KINDS)]
    _print_table(
        ["key", "collection", *KINDS, "last used (UTC)"],
        table,
        footer=[*total, utc(max(row.last_at for row in rows))],
    )


def _print_table(
    header: list[str], rows: list[list[str | int]], footer: list[str | int] | None = None
) -> None:
    """Columns as wide as their widest cell; numbers right-aligned; the footer below a rule."""
    lines = [*rows, *([footer] if footer else [])]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    numeric = [all(isinstance(line[i], int) for line in lines) for i in range(len(header))]

    def render(cells: list[str | int]) -> str:
        return "  ".join(
            f"{cell:>{width}}" if is_number else f"{cell:<{width}}"
            for cell, width, is_number in zip(map(str, cells), widths, numeric, strict=True)
        ).rstrip()

    print(render(header))
    for row in rows:
        print(render(row))
    if footer:
        print("  ".join("-" * width for width in widths))
        print(render(footer))


def cmd_retrieve(args: argparse.Namespace) -> int:
    from rag.offline import enforce_offline

    enforce_offline()
    from app.components import checked_retriever
    from rag.embeddings import build_embedder

    settings = settings_for(args)
    retriever = checked_retriever(settings, build_embedder(settings))
    hits, timings = retriever.retrieve(
        args.query, args.mode or settings.retrieval_mode, args.top_k or settings.top_k
    )
    if args.json:
        rows = [{"score": h.score, "dense": h.dense, "bm25": h.bm25, **h.chunk.__dict__} for h in hits]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not hits:
        print("no chunks in the store: run `rag ingest PATH` first")
    for rank, hit in enumerate(hits, 1):
        c = hit.chunk
        scores = "  ".join(
            f"{name} {value:.3f}"
            for name, value in (("dense", hit.dense), ("bm25", hit.bm25))
            if value is not None
        )
        where = f"chunk {c.chunk_index + 1}/{c.n_chunks}  chars {c.char_start}-{c.char_end}"
        where += "".join(f"  {part}" for part in (c.citation()["pages"], c.section) if part)
        print(f"[{rank}] {hit.score:.3f} ({scores})  {c.doc_id}  {where}")
        print("    " + c.text.replace("\n", "\n    "))
    print(f"retrieved in {sum(timings.values()) * 1000:.0f} ms", file=sys.stderr)
    return EXIT_OK


def _print_answer(answer, streamed: str) -> None:
    """Finish what `stream` printed: a refusal notice if the streamed text was withdrawn, sources."""
    print()
    if answer.refused:  # why, and the answer itself if the stream showed something else first
        print(f"\n{answer.answer} ({answer.refusal_reason})" if streamed.strip() != answer.answer
              else f"({answer.refusal_reason})")  # fmt: skip
    unsupported = [s.text for s in answer.sentences if not s.supported]
    if unsupported and not answer.refused:
        print("\nnot supported by the documents:")
        for text in unsupported:
            print(f"  ! {text}")
    if answer.sources:
        print("\nclosest sources:" if answer.refused else "\nsources:")
    for s in answer.sources:
        if answer.refused or s.cited:
            where = f"  {s.locator()}" if s.locator() else ""
            print(f"  [{s.n}] {s.doc_id}{where}  chunk {s.chunk + 1}  chars {s.quote_start}-{s.quote_end}")
            print(f'      "{s.quote}"')
    print(f"\n({answer.backend}: {answer.model}; {answer.timings.get('total', 0):.1f} s)", file=sys.stderr)


def _stream(events) -> tuple:
    """Print text events as they come; return the final Answer and the text printed."""
    printed = []
    for event in events:
        if isinstance(event, str):
            print(event, end="", flush=True)
            printed.append(event)
        else:
            return event, "".join(printed)
    raise RuntimeError("the answer stream ended without an Answer")


def cmd_ask(args: argparse.Namespace) -> int:
    from app.components import build_answer_path

    answerer = build_answer_path(settings_for(args))
    if args.json:
        answer = answerer.ask(args.question, mode=args.mode, top_k=args.top_k)
        print(answer.model_dump_json(indent=2))
        return EXIT_OK
    answer, streamed = _stream(answerer.stream(args.question, mode=args.mode, top_k=args.top_k))
    _print_answer(answer, streamed)
    return EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    from app.components import build_answer_path
    from rag.records import Turn

    answerer = build_answer_path(settings_for(args))
    history: list[Turn] = []
    print("Ask about your documents; follow-up questions work. Ctrl-D to leave.")
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            print()
            return EXIT_OK
        if not question:
            continue
        answer, streamed = _stream(answerer.stream(question, history, mode=args.mode))
        _print_answer(answer, streamed)
        history.append(Turn(question=question, answer=answer.answer))


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from rag.offline import enforce_offline

    enforce_offline()
    # Workers are separate processes that read settings from the environment: pass overrides on.
    for name in ("host", "port", "llm", "collection"):
        if (value := getattr(args, name, None)) is not None:
            os.environ[f"RAG_{name.upper()}"] = str(value)
    settings = load_settings()
    from api.auth import bind_problem
    from rag.access import load_grants

    try:
        keys = load_grants(settings)
    except (OSError, ValueError) as exc:
        print(f"rag serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # app.server's factory checks this too; here it fails before uvicorn starts.
    if problem := bind_problem(settings.host, keys):
        print(f"rag serve: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.workers > 1 and not settings.chroma_url:
        print(
            "rag serve: --workers > 1 needs a Chroma server (RAG_CHROMA_URL); the embedded store "
            "is single-process",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.workers > 1 and settings.ui:
        os.environ["RAG_UI"] = "false"
        print("--workers > 1: serving the API only (the UI keeps chat sessions in one process)")
    if not keys:
        print("no API keys configured: serving on 127.0.0.1 only, open to local programs")
    import uvicorn

    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{host}:{settings.port}"
    ui = f"the UI is at {base}/ and " if settings.ui and args.workers == 1 else ""
    print(f"loading models; then {ui}the API at {base}/v1 (docs {base}/docs)")
    uvicorn.run(
        "app.server:app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    return EXIT_OK
