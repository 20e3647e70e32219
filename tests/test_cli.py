"""The `rag` command: instant help, exit codes, JSON report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys, contextlib, io\n"
        "from app.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "heavy = [m for m in ('torch', 'chromadb', 'llama_index', 'transformers') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "argv",
    [
        *(
            [cmd, "--help"]
            for cmd in ("ingest", "retrieve", "ask", "chat", "serve", "collections", "keys", "eval", "bench")
        ),
        *(["collections", action, "--help"] for action in ("list", "create", "delete")),
        *(["keys", action, "--help"] for action in ("usage", "list")),
    ],
)
def test_subcommand_help_explains_itself(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    assert "usage: rag" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["collections", "keys"])
def test_grouped_commands_need_an_action(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command])
    assert exited.value.code == 2
    assert "the following arguments are required: ACTION" in capsys.readouterr().err


@pytest.fixture
def hash_env(tmp_path: Path) -> dict:
    return {**os.environ, "RAG_EMBEDDER": "hash", "RAG_DATA_DIR": str(tmp_path / "data")}


def test_ingest_json_report_and_exit_codes(corpus: Path, hash_env: dict):
    first = _run("ingest", str(corpus), "--json", env=hash_env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    for key in ("added", "updated", "unchanged", "removed", "failed"):
        assert isinstance(report[key], int), key
    assert (report["added"], report["failed"]) == (2, 0)

    (corpus / "empty.txt").write_bytes(b"")
    second = _run("ingest", str(corpus), "--json", env=hash_env)
    assert second.returncode == 1
    assert json.loads(second.stdout)["unchanged"] == 2
    # One clear line naming the file and the reason.
    assert f"failed: {corpus / 'empty.txt'}: empty file" in second.stderr.splitlines()


def test_usage_errors_exit_2(tmp_path: Path, hash_env: dict):
    assert _run("ingest", str(tmp_path / "nope"), env=hash_env).returncode == 2
    assert _run("ingest", env=hash_env).returncode == 2
    bad_setting = _run("ingest", str(tmp_path), env={**hash_env, "RAG_CHUNK_SIZE": "many"})
    assert bad_setting.returncode == 2
    assert "chunk_size" in bad_setting.stderr
    too_big = _run("ask", "q", env={**hash_env, "RAG_LLM": "local", "RAG_CONTEXT_TOKENS": "4000"})
    assert too_big.returncode == 2
    assert "RAG_LLM_CONTEXT_WINDOW" in too_big.stderr


def test_summary_line_without_json(corpus: Path, hash_env: dict):
    out = _run("ingest", str(corpus), env=hash_env)
    assert out.returncode == 0
    assert out.stdout.startswith("documents: 2 added, 0 updated, 0 unchanged, 0 removed, 0 failed")
    assert "file/s" not in out.stderr, "progress bars are for terminals, not pipes"


def test_retrieve_prints_top_chunks(corpus: Path, hash_env: dict):
    assert _run("ingest", str(corpus), env=hash_env).returncode == 0
    out = _run("retrieve", "refining capacity", "-k", "2", env=hash_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("corpus/") == 2
    assert "refining" in out.stdout


def test_ask_json_prints_the_answer_record(corpus: Path, hash_env: dict):
    assert _run("ingest", str(corpus), env=hash_env).returncode == 0
    env = {**hash_env, "RAG_ANSWERABILITY_THRESHOLD": "0.05"}
    out = _run(
        "ask", "What does the author say about refining capacity?", "--llm", "extractive", "--json", env=env
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    for key in ("answer", "refused", "sources", "sentences", "timings", "settings"):
        assert key in answer, key
    assert answer["refused"] is False
    assert all({"path", "chunk", "quote", "score", "dense", "bm25"} <= s.keys() for s in answer["sources"])


def test_ask_streams_then_lists_sources(corpus: Path, hash_env: dict):
    assert _run("ingest", str(corpus), env=hash_env).returncode == 0
    env = {**hash_env, "RAG_ANSWERABILITY_THRESHOLD": "0.05", "RAG_LLM": "extractive"}
    out = _run("ask", "What does the author say about refining capacity?", env=env)
    assert out.returncode == 0, out.stderr
    assert "refining capacity" in out.stdout.split("sources:")[0]
    assert "sources:" in out.stdout and "000_6aae78438c92dd18.txt" in out.stdout
    refused = _run("ask", "zeppelin airship helium mooring mast", env=env)
    assert refused.stdout.startswith("The documents don't contain an answer to that.")
    assert "closest sources:" in refused.stdout
    assert "(answerability " in refused.stdout, "a refusal says why"


def test_chat_answers_follow_ups_until_end_of_input(corpus: Path, hash_env: dict):
    assert _run("ingest", str(corpus), env=hash_env).returncode == 0
    env = {**hash_env, "RAG_ANSWERABILITY_THRESHOLD": "0.05", "RAG_LLM": "extractive"}
    chat = subprocess.run(
        [sys.executable, "-m", "app.cli", "chat"],
        input="What does the author say about refining capacity?\nand recycling?\n",
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.count("sources:") == 2, chat.stdout
    # The follow-up alone shares no word with the corpus; carried over, it finds the recycling line.
    assert "recycling" in chat.stdout.split("\n> ")[2]


def test_serve_refuses_unsafe_setups_before_loading_anything(tmp_path: Path, hash_env: dict):
    exposed = _run("serve", "--host", "0.0.0.0", env=hash_env)
    assert exposed.returncode == 2 and "without API keys" in exposed.stderr
    workers = _run("serve", "--workers", "2", env=hash_env)
    assert workers.returncode == 2 and "RAG_CHROMA_URL" in workers.stderr
    bad_keys = tmp_path / "keys"
    bad_keys.write_text("k1 owner\n")
    keys_file = _run("serve", env={**hash_env, "RAG_API_KEYS_FILE": str(bad_keys)})
    assert keys_file.returncode == 2 and f"{bad_keys}:1" in keys_file.stderr


def test_eval_exports_thumbs_down_answers_as_draft_cases(tmp_path: Path, hash_env: dict):
    from eval.cases import read_cases
    from rag.feedback import FeedbackStore
    from rag.records import Answer, Turn
    from rag.settings import Settings

    store = FeedbackStore(Settings(_env_file=None, data_dir=tmp_path / "data").feedback_path)
    answer = Answer(question="Who runs the mill?", condensed_query="Who runs the mill?", answer="Nobody [1].",
                    refused=False, backend="extractive", model="extractive")  # fmt: skip
    store.add(answer, "up")
    history = [Turn(question="Is there a mill?", answer="Yes.")]
    store.add(answer, "down", "wrong person", history=history)
    out = tmp_path / "drafts.jsonl"
    run = _run("eval", "--export-feedback", str(out), env=hash_env)
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["review"] == {"rejected_answer": "Nobody [1].", "refused": False,
                                    "comment": "wrong person", "cited": [],
                                    "created_at": records[0]["review"]["created_at"]}  # fmt: skip
    (case,) = read_cases(out)
    assert (case.question, case.history[0].question) == ("Who runs the mill?", "Is there a mill?")
    assert "needs-review" in case.tags


def test_ask_and_retrieve_name_the_pages_of_a_pdf_citation(tmp_path: Path, hash_env: dict):
    from pdf_fixtures import turbine_report

    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "harbour.pdf").write_bytes(turbine_report())
    assert _run("ingest", str(folder), env=hash_env).returncode == 0
    env = {**hash_env, "RAG_ANSWERABILITY_THRESHOLD": "0.05", "RAG_LLM": "extractive"}
    out = _run("ask", "How much power does the Zorblax turbine produce?", env=env)
    assert out.returncode == 0, out.stderr
    cited = [line for line in out.stdout.split("sources:")[1].splitlines() if "reports/harbour.pdf" in line]
    assert cited and all(" p. " in line or " pp. " in line for line in cited)
    assert any("2 Turbines" in line for line in cited)
    listed = _run("retrieve", "Zorblax turbine", "-k", "1", env=hash_env)
    assert "reports/harbour.pdf" in listed.stdout and ("p. 2" in listed.stdout or "pp. 1–2" in listed.stdout)


def test_collections_create_list_and_delete(corpus: Path, hash_env: dict):
    for name in ("team-a", "team-b"):
        created = _run("collections", "create", name, env=hash_env)
        assert created.returncode == 0, created.stderr
    assert _run("ingest", "--collection", "team-a", str(corpus), env=hash_env).returncode == 0
    listed = _run("collections", "list", "--json", env=hash_env)
    assert listed.returncode == 0, listed.stderr
    counts = {c["name"]: (c["documents"], c["chunks"] > 0, c["default"]) for c in json.loads(listed.stdout)}
    assert counts == {"documents": (0, False, True), "team-a": (2, True, False), "team-b": (0, False, False)}

    deleted = _run("collections", "delete", "team-a", env=hash_env)
    assert deleted.returncode == 0, deleted.stderr
    assert "'team-a'" in deleted.stdout and "2 documents" in deleted.stdout
    table = _run("collections", "list", env=hash_env).stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in table[1:]}
    assert rows == {"documents": ["0", "0", "*"], "team-b": ["0", "0"]}


def test_collections_load_no_model_and_usage_errors_name_the_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    # In-process: these fail before touching a document, and a subprocess each would cost seconds.
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))

    def no_model(settings):
        raise AssertionError("managing collections loads no embedder or model")

    monkeypatch.setattr("app.components.build_answer_path", no_model)
    assert main(["collections", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["documents", "0", "0", "*"]
    for argv, named in (
        (["create", "Bad!"], "'Bad!' is not a collection name"),
        (["delete", "nope"], "no collection 'nope'"),
        (["delete", "documents"], "'documents' is the server's default collection"),
    ):
        assert main(["collections", *argv]) == 2, argv
        (line,) = capsys.readouterr().err.splitlines()
        assert named in line, argv


def test_collections_delete_waits_for_a_running_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    from app.commands import EXIT_LOCKED
    from app.components import load_settings
    from rag.store import open_store

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    assert main(["collections", "create", "team-a"]) == 0
    with open_store(load_settings(), "team-a").state.take().kept():  # as a running `rag ingest` would
        assert main(["collections", "delete", "team-a"]) == EXIT_LOCKED
    assert "ingest is running" in capsys.readouterr().err
    assert main(["collections", "delete", "team-a"]) == 0, "the collection was left whole"


@pytest.fixture
def keys_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process `rag keys` over a fresh data dir and no keys but the test's own; the data dir."""
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    for name in ("RAG_API_KEYS", "RAG_API_ADMIN_KEYS", "RAG_API_KEYS_FILE", "RAG_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def test_keys_usage_totals_per_key_and_collection_and_filters(keys_env: Path, capsys: pytest.CaptureFixture):
    from rag.settings import Settings
    from rag.usage import UsageLog

    log = UsageLog(Settings(_env_file=None, data_dir=keys_env).usage_path)
    for key, collection, kind, count in (
        ("team-a", "team-a", "requests", 5), ("team-a", "team-a", "answers", 4),
        ("team-a", "team-a", "refusals", 1), ("team-a", "team-a", "requests", 2),
        ("ops", "team-a", "documents", 3), ("ops", "documents", "requests", 1),
    ):  # fmt: skip
        log.add(key, collection, kind, count)

    def usage(*argv: str) -> list[dict]:
        assert main(["keys", "usage", "--json", *argv]) == 0
        return json.loads(capsys.readouterr().out)

    counts = {(r["key"], r["collection"]): (r["requests"], r["answers"], r["refusals"], r["documents"])
              for r in usage()}  # fmt: skip
    assert counts == {
        ("ops", "documents"): (1, 0, 0, 0),
        ("ops", "team-a"): (0, 0, 0, 3),
        ("team-a", "team-a"): (7, 4, 1, 0),
    }
    assert all(r["last_at"].endswith("+00:00") for r in usage())
    assert [(r["key"], r["collection"]) for r in usage("--key", "ops")] == [
        ("ops", "documents"),
        ("ops", "team-a"),
    ]
    assert [r["key"] for r in usage("--collection", "team-a")] == ["ops", "team-a"]
    assert [r["requests"] for r in usage("--key", "team-a", "--collection", "team-a")] == [7]
    assert usage("--key", "nobody") == []

    assert main(["keys", "usage"]) == 0
    header, *rows, rule, total = capsys.readouterr().out.splitlines()
    columns = ["key", "collection", "requests", "answers", "refusals", "documents", "last used (UTC)"]
    assert re.split(r"\s{2,}", header) == columns
    assert [row.split()[:6] for row in rows] == [
        ["ops", "documents", "1", "0", "0", "0"],
        ["ops", "team-a", "0", "0", "0", "3"],
        ["team-a", "team-a", "7", "4", "1", "0"],
    ]
    assert set(rule.replace(" ", "")) == {"-"}
    assert total.split()[:5] == ["total", "8", "4", "1", "3"]
    assert main(["keys", "usage", "--key", "ops"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[:5] == ["total", "1", "0", "0", "3"]


def test_keys_usage_says_plainly_when_nothing_is_recorded(keys_env: Path, capsys: pytest.CaptureFixture):
    assert main(["keys", "usage"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("no usage recorded yet")
    assert main(["keys", "usage", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert not keys_env.exists(), "reading the usage log creates nothing"


def test_keys_list_shows_names_roles_and_collections_never_the_keys(
    tmp_path: Path, keys_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    secrets = (
        "sk-live-7Qx2Lm4Kp8Rw1Hs6",
        "sk-live-9Lm4Qx2Kp8Rw1Hs7",
        "sk-admin-8Vn3Tz5Yb2Qc4",
        "sk-env-5Rw1Hs6",
    )
    keys = tmp_path / "keys.txt"
    keys.write_text(
        f"{secrets[0]} reader collections=team-a name=team-a\n"
        f"{secrets[1]} reader collections=team-a name=team-a  # a second key, same permissions\n"
        f"{secrets[2]} admin name=ops\n"
    )
    monkeypatch.setenv("RAG_API_KEYS_FILE", str(keys))
    monkeypatch.setenv("RAG_API_KEYS", secrets[3])
    assert main(["keys", "list"]) == 0
    out = capsys.readouterr()
    # The RAG_API_KEYS key, unnamed, is named after its role: beside an admin, a reader of the default.
    assert [line.split() for line in out.out.splitlines()] == [
        ["name", "role", "keys", "collections"],
        ["ops", "admin", "1", "*"],
        ["reader", "reader", "1", "documents"],
        ["team-a", "reader", "2", "team-a"],
    ]
    assert not [s for s in secrets if s in out.out + out.err], "the keys themselves are never printed"

    keys.write_text(f"{secrets[0]} reader collections=team-a\n{secrets[1]} owner\n")
    assert main(["keys", "list"]) == 2
    out = capsys.readouterr()
    assert f"{keys}:2: 'owner' is not understood" in out.err and out.out == ""
    monkeypatch.delenv("RAG_API_KEYS_FILE")
    monkeypatch.delenv("RAG_API_KEYS")
    assert main(["keys", "list"]) == 0
    assert capsys.readouterr().out.startswith("no API keys configured")
