"""`rag`: the one console script. Argparse and dispatch only; the commands are in
`app.commands` and `app.eval_commands`, and packages above `app` (such as `bench`) add theirs
through the `rag.commands` entry point group, so `app` never imports them.

Nothing heavy is imported here, so `rag --help` stays instant (no torch, no chromadb).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from app.commands import (
    EXIT_USAGE,
    cmd_ask,
    cmd_chat,
    cmd_collections,
    cmd_ingest,
    cmd_keys,
    cmd_retrieve,
    cmd_serve,
)
from app.eval_commands import cmd_eval
from rag.records import MODES

COMMANDS_GROUP = "rag.commands"  # each entry point: a function taking argparse's subparsers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Grounded Q&A over your documents. Settings come from RAG_* environment "
        "variables or .env (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Options several commands share, as argparse parents.
    collection = argparse.ArgumentParser(add_help=False)
    collection.add_argument("--collection", help="Chroma collection (default: RAG_COLLECTION)")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument(
        "--llm", choices=["local", "openai", "extractive"], help="answer backend (default: RAG_LLM)"
    )

    ingest = commands.add_parser(
        "ingest",
        parents=[collection],
        help="load, clean, chunk and embed files into the store (incremental)",
        description="Sync files into the store: unchanged files are skipped, changed ones "
        "replaced. Supports .txt .md .html .htm .pdf .docx; other files are counted as skipped. "
        "Exit status: 0 all ingested, 1 some files failed, 2 usage error, 3 another ingest "
        "is running.",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    ingest.add_argument(
        "--prune",
        action="store_true",
        help="remove documents whose files are gone from the given folders",
    )
    ingest.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ingest.set_defaults(func=cmd_ingest)

    retrieve = commands.add_parser(
        "retrieve",
        parents=[collection],
        help="show the chunks retrieval finds for a query",
        description="Print the top chunks for a query with fused, dense and BM25 scores and "
        "character spans. The BM25 index is built on first use and rebuilt when the store changed.",
    )
    retrieve.add_argument("query")
    retrieve.add_argument("-k", "--top-k", type=int, help="chunks to show (default: RAG_TOP_K)")
    retrieve.add_argument("--mode", choices=MODES, help="retrieval mode (default: RAG_RETRIEVAL_MODE)")
    retrieve.add_argument("--json", action="store_true", help="print the chunks as JSON")
    retrieve.set_defaults(func=cmd_retrieve)

    ask = commands.add_parser(
        "ask",
        parents=[backend, collection],
        help="answer a question from the documents, with cited sources",
        description="Stream an answer grounded in the ingested documents, then its sources with "
        "the exact quotes. Refuses plainly when the documents don't hold the answer.",
    )
    ask.add_argument("question")
    chat = commands.add_parser(
        "chat",
        parents=[backend, collection],
        help="interactive questions with history (follow-ups work)",
        description="Ask questions in a loop; each follow-up is condensed with the conversation.",
    )
    for sub in (ask, chat):
        sub.add_argument("--mode", choices=MODES, help="retrieval mode (default: RAG_RETRIEVAL_MODE)")
    ask.add_argument("-k", "--top-k", type=int, help="passages to retrieve (default: RAG_TOP_K)")
    ask.add_argument("--json", action="store_true", help="print the whole Answer record as JSON")
    ask.set_defaults(func=cmd_ask)
    chat.set_defaults(func=cmd_chat)

    serve = commands.add_parser(
        "serve",
        parents=[backend, collection],
        help="serve the chat UI at / and the HTTP API at /v1 (one port)",
        description="Start the staff chat UI and the HTTP API (native and OpenAI-compatible) on "
        "RAG_HOST:RAG_PORT (default 127.0.0.1:7860). Without API keys it binds loopback only.",
    )
    serve.add_argument("--host", help="address to bind (default: RAG_HOST)")
    serve.add_argument("--port", type=int, help="port (default: RAG_PORT)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (default 1); more than one needs RAG_CHROMA_URL",
    )
    serve.set_defaults(func=cmd_serve)

    collections = commands.add_parser(
        "collections",
        help="list, create and delete collections (each a workspace of its own)",
        description="Each collection holds its own documents, BM25 index, uploads and feedback; "
        "`--collection NAME` points the other commands at one, and the server serves them all. "
        "Exit status: 0 done, 2 usage error (a bad or unknown name, the default collection), "
        "3 an ingest is running in the collection.",
    )
    actions = collections.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="every collection with its documents and chunks; * marks the default",
        description="List the collections with their document and chunk counts; * marks the default "
        "(RAG_COLLECTION), which is listed even before anything is ingested into it.",
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list of objects")
    create = actions.add_parser(
        "create",
        help="create an empty collection",
        description="Create an empty collection (`rag ingest --collection NAME` also creates one).",
    )
    delete = actions.add_parser(
        "delete",
        help="delete a collection with its documents, BM25 index, uploads and feedback",
        description="Delete a collection and everything of it, without asking; prints what was "
        "deleted. The default collection (RAG_COLLECTION) cannot be deleted.",
    )
    for action in (create, delete):
        action.add_argument(
            "name",
            metavar="NAME",
            help="3-63 lower-case letters, digits, - or _ (starting and ending with a letter or digit)",
        )
    collections.set_defaults(func=cmd_collections)

    keys = commands.add_parser(
        "keys",
        help="the API keys by name, role and collections, and what each has used",
        description="The keys come from RAG_API_KEYS, RAG_API_ADMIN_KEYS and RAG_API_KEYS_FILE "
        "(README, Teams); they are shown by name, never the key itself. Exit status: 0 done, "
        "2 usage error (a keys-file line that does not parse).",
    )
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    usage = key_actions.add_parser(
        "usage",
        help="requests, answers, refusals and documents changed, per key name and collection",
        description="Totals from the usage log (RAG_DATA_DIR/usage.sqlite3) that the API and the UI "
        "of every server worker add to, kept across restarts: one row per key name and collection, "
        "then a total.",
    )
    usage.add_argument("--json", action="store_true", help="print a JSON list of objects")
    usage.add_argument("--key", metavar="NAME", help="only this key name")
    usage.add_argument("--collection", metavar="NAME", help="only this collection")
    key_actions.add_parser(
        "list",
        help="each key name with its role, collections (* for all) and how many keys share it",
        description="List the configured keys by name, with role and collections (* for all); keys "
        "sharing a name share their permissions, so each name is one line. The keys are never printed.",
    )
    keys.set_defaults(func=cmd_keys)

    evaluate = commands.add_parser(
        "eval",
        parents=[backend],
        help="score retrieval and answers on a case file; compare with a baseline",
        description="Ingest the cases' corpus into its own collection, run every case, write "
        "results.json and report.md, print a summary table. Exit status 1 when --compare finds a "
        "regression or a --fail-under floor is not met.",
    )
    evaluate.add_argument(
        "cases", nargs="?", help="case file: ours (.jsonl), SQuAD-derived (.jsonl) or rag_dataset.json"
    )
    evaluate.add_argument(
        "--export-feedback",
        metavar="FILE",
        help="write the UI's thumbs-down answers as draft cases (JSONL) to FILE, and stop",
    )
    evaluate.add_argument("--corpus", help="documents to ingest (default: docs/ beside the case file)")
    evaluate.add_argument("--limit", type=int, help="sample this many cases (seeded)")
    evaluate.add_argument("--seed", type=int, default=7, help="sampling seed (default 7)")
    evaluate.add_argument("--mode", choices=[*MODES, "all"], help="retrieval mode(s)")
    evaluate.add_argument("--retrieval-only", action="store_true", help="score retrieval, skip answering")
    evaluate.add_argument(
        "--judge",
        action="store_true",
        help="also score answers with an LLM judge (RAG_JUDGE_BASE_URL, RAG_JUDGE_MODEL); off by default",
    )
    evaluate.add_argument(
        "--fit-answerability",
        action="store_true",
        help="refit the answerability model on the shipped training sets (documents held out), write "
        "it (--model-out) and its held-out report and curve (--out, default eval/reports/answerability)",
    )
    evaluate.add_argument(
        "--held-out",
        action="store_true",
        help="answer each training case with the fold model fitted without its document (after "
        "--fit-answerability): honest numbers on the data the model was fitted on",
    )
    evaluate.add_argument(
        "--pdf",
        action="store_true",
        help="the PDF evaluation: text fidelity of the shipped PDF set (ours against pypdf), the PDF "
        "penalty on SQuAD retrieval, and header/leader/glyph checks on real reports (eval/pdfs/)",
    )
    evaluate.add_argument(
        "--model-out", metavar="FILE", help="--fit-answerability: where to write the model (default: rag/)"
    )
    evaluate.add_argument("--out", help="output folder (default: RAG_DATA_DIR/eval/<timestamp>)")
    evaluate.add_argument(
        "--compare", metavar="BASELINE.json", help="fail on a drop beyond the baseline's CI"
    )
    evaluate.add_argument(
        "--fail-under",
        action="append",
        metavar="METRIC=VALUE",
        help="fail when the first mode's metric is lower",
    )
    evaluate.set_defaults(func=cmd_eval)
    for plugin in entry_points(group=COMMANDS_GROUP):  # `rag bench` (bench/) and any other plugin
        plugin.load()(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from rag.records import EmbedderMismatch, LocalModelUnavailable

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValidationError as exc:
        print(f"rag: invalid setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (EmbedderMismatch, LocalModelUnavailable) as exc:
        print(f"rag {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
