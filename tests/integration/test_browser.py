"""The staff UI end to end: `rag serve` with the real embedder, driven in Debian's chromium.

Screenshots land in test-artifacts/browser/ for a human to look at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import urlopen

import pytest

from bench.local_server import wait_until_up

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
# Chromium's own background traffic (updates, sync, QUIC probes) off: the page alone talks.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
QUESTION = "What does the author say about refining capacity?"
FACT = (
    "The Zorblax turbine at Lake Quimby produces 42 megawatts of tidal power. "
    "It was commissioned by the Quimby Water Board."
)
FACT_QUESTION = "How much power does the Zorblax turbine at Lake Quimby produce?"

# `make test` installs chromium; RAG_SKIP_BROWSER=1 is the documented way out where it can't.
pytestmark = [
    pytest.mark.skipif(bool(os.environ.get("RAG_SKIP_BROWSER")), reason="RAG_SKIP_BROWSER is set"),
    pytest.mark.timeout(240),
]


def _rag(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def _serve(tmp_path: Path, port: int, env: dict[str, str], ingests: list[list[str]]) -> Iterator[str]:
    """`rag serve` over a data dir after the given `rag ingest` runs; killed afterwards."""
    # Only this test's settings: no RAG_* from the caller, no .env (the cwd is the tmp dir).
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | env
    env |= {"RAG_DATA_DIR": str(tmp_path / "data"), "RAG_LLM": "extractive"}
    for args in ingests:
        ingest = subprocess.run(_rag("ingest", *args), cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=180)  # fmt: skip
        assert ingest.returncode == 0, ingest.stderr[-2000:]

    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        _rag("serve", "--port", str(port)), cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", proc, 120, tmp_path / "server.log")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def server(tmp_path: Path, port: int) -> Iterator[str]:
    """The sample corpus, no keys."""
    yield from _serve(tmp_path, port, {}, [[str(REPO / "index" / "samples" / "corpus")]])


def _ask(page, question: str) -> None:
    """Ask in the chat and wait until the checked answer's sources are shown for it."""
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator("#sources .question", has_text=question).wait_for(timeout=60_000)


def _last_answer(page) -> str:
    return page.locator("#chatbot [data-testid='bot']").last.inner_text()


def test_chat_with_citations_then_upload_and_ask_about_it(server: str, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.exists(), "no /usr/bin/chromium: `make test` installs it, or set RAG_SKIP_BROWSER=1"
    SHOTS.mkdir(parents=True, exist_ok=True)
    fact_file = tmp_path / "zorblax_turbine.txt"
    fact_file.write_text(FACT)
    outside: list[str] = []
    errors: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on(
                "request",
                lambda r: (
                    outside.append(r.url)
                    if urlparse(r.url).hostname not in (None, "127.0.0.1", "localhost")
                    else None
                ),
            )
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server)
            expect(page.locator("#question textarea")).to_be_visible(timeout=30_000)

            # A cited answer, with the quote highlighted in its passage.
            _ask(page, QUESTION)
            answer = _last_answer(page)
            assert re.search(r"\[\d+\]", answer), answer
            assert "refining" in answer.lower()
            quote = page.locator("#sources .cited .quote").first.inner_text().strip("“”")
            assert quote and quote in answer
            expect(page.locator("#sources .cited mark").first).to_have_text(quote)
            page.screenshot(path=str(SHOTS / "chat.png"), full_page=True)

            # Upload a file with a fact no sample document has.
            page.get_by_role("tab", name="Documents").click()
            page.locator("#upload-files input[type=file]").set_input_files(str(fact_file))
            expect(page.locator("#upload-files")).to_contain_text(fact_file.name, timeout=30_000)
            page.locator("#upload").click()
            status = page.locator("#library-status")
            expect(status).to_contain_text("1 of 1 file ingested", timeout=60_000)
            expect(status).to_contain_text(f"✓ {fact_file.name}: added")
            expect(page.locator("#documents-table")).to_contain_text(f"uploads/{fact_file.name}")

            # A new conversation, so the follow-up logic does not mix in the first question.
            page.get_by_role("tab", name="Chat").click()
            page.locator("#clear").click()
            expect(page.locator("#chatbot [data-testid='bot']")).to_have_count(0)
            _ask(page, FACT_QUESTION)
            assert "42 megawatts" in _last_answer(page)
            expect(page.locator("#sources .cited").first).to_contain_text(fact_file.name)
            page.screenshot(path=str(SHOTS / "upload-answer.png"), full_page=True)
            font = page.evaluate("getComputedStyle(document.querySelector('#question textarea')).fontFamily")
        finally:
            browser.close()

    assert outside == [], "the page must not reach outside this machine"
    assert errors == [], errors
    # The UI's use is counted like the API's: by key name (`local` without keys) and collection.
    metrics = urlopen(f"{server}/metrics", timeout=10).read().decode()
    for kind, count in (("requests", 3), ("answers", 2), ("documents", 1)):
        labels = f'collection="documents",key="local",kind="{kind}"'
        assert f"rag_usage_total{{{labels}}} {count}.0" in metrics, kind
    # System fonts: api.app passes ui.app.mount_options() to gr.mount_gradio_app (theme, CSS).
    assert font.startswith("system-ui"), f"the UI theme is not applied (font {font})"


def test_a_key_signs_in_to_its_own_collections_only(tmp_path: Path, port: int):
    from playwright.sync_api import expect, sync_playwright

    team = tmp_path / "team"
    team.mkdir()
    (team / "zorblax_turbine.txt").write_text(FACT)
    keys = tmp_path / "keys.txt"
    keys.write_text("k-team editor collections=turbines name=turbine-team\nk-admin admin\n")
    ingests = [[str(REPO / "index" / "samples" / "corpus")], ["--collection", "turbines", str(team)]]
    served = _serve(tmp_path, port, {"RAG_API_KEYS_FILE": str(keys)}, ingests)
    url = next(served)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                page.get_by_label("username").fill("turbine-team")
                page.get_by_label("password").fill("k-team")
                page.get_by_role("button", name="Login").click()
                expect(page.locator("#question textarea")).to_be_visible(timeout=30_000)
                picker = page.locator("#collection input")
                expect(picker).to_have_value("turbines", timeout=30_000)
                picker.click()
                options = page.get_by_role("option")
                expect(options).to_have_count(1)
                assert [t.split()[-1] for t in options.all_inner_texts()] == ["turbines"], (
                    "only the key's own"
                )
                page.keyboard.press("Escape")
                _ask(page, FACT_QUESTION)
                assert "42 megawatts" in _last_answer(page)
                page.get_by_role("tab", name="Documents").click()
                table = page.locator("#documents-table")
                expect(table).to_contain_text("team/zorblax_turbine.txt")
                expect(table).not_to_contain_text("corpus/")
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / "team-collection.png"), full_page=True)
            finally:
                browser.close()
    finally:
        served.close()


def test_a_kept_chat_survives_a_reload_and_a_server_restart(tmp_path: Path, port: int):
    from playwright.sync_api import expect, sync_playwright

    corpus = [[str(REPO / "index" / "samples" / "corpus")]]
    served = _serve(tmp_path, port, {}, corpus)
    url = next(served)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            expect(page.locator("#question textarea")).to_be_visible(timeout=30_000)
            _ask(page, QUESTION)
            answer = _last_answer(page)
            expect(page.locator("#chats")).to_contain_text(QUESTION[:40], timeout=30_000)

            def shows_the_kept_chat(shot: str) -> None:
                expect(page.locator("#chatbot [data-testid='bot']")).to_have_count(1, timeout=30_000)
                assert _last_answer(page) == answer
                expect(page.locator("#sources .cited mark").first).to_be_visible()
                expect(page.locator("#chats")).to_contain_text(QUESTION[:40])
                page.screenshot(path=str(SHOTS / shot), full_page=True)

            SHOTS.mkdir(parents=True, exist_ok=True)
            page.reload()
            shows_the_kept_chat("kept-chat-after-reload.png")
            served.close()  # the server stops; its data dir stays
            served = _serve(tmp_path, port, {}, [])
            next(served)
            page.reload()
            shows_the_kept_chat("kept-chat-after-restart.png")

            # A new chat empties the screen; the kept one reopens from the sidebar.
            page.locator("#new-chat").click()
            expect(page.locator("#chatbot [data-testid='bot']")).to_have_count(0)
            page.locator("#chats label", has_text=QUESTION[:40]).click()
            expect(page.locator("#chatbot [data-testid='bot']")).to_have_count(1, timeout=30_000)
            page.locator("#delete-chat").click()
            expect(page.locator("#chats")).not_to_contain_text(QUESTION[:40], timeout=30_000)
        finally:
            browser.close()
            served.close()


def test_nothing_the_server_serves_reaches_outside_the_machine(tmp_path: Path, port: int):
    """Every request of the UI, /docs and /redoc is routed: any to another host fails the test,
    named. The docs must render their operations offline, with API keys on."""
    from playwright.sync_api import expect, sync_playwright

    keys = tmp_path / "keys.txt"
    keys.write_text("k-admin admin\n")
    served = _serve(
        tmp_path, port, {"RAG_API_KEYS_FILE": str(keys)}, [[str(REPO / "index" / "samples" / "corpus")]]
    )
    url = next(served)
    outside: list[str] = []

    def route(request_route) -> None:
        if urlparse(request_route.request.url).hostname in (None, "127.0.0.1", "localhost"):
            request_route.continue_()
        else:
            outside.append(request_route.request.url)
            request_route.abort()

    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.route("**/*", route)
                page = context.new_page()
                page.goto(url)
                page.get_by_label("username").fill("admin")
                page.get_by_label("password").fill("k-admin")
                page.get_by_role("button", name="Login").click()
                expect(page.locator("#question textarea")).to_be_visible(timeout=30_000)
                _ask(page, QUESTION)
                page.get_by_role("tab", name="Documents").click()
                expect(page.locator("#documents-table")).to_contain_text("corpus/", timeout=30_000)

                assert outside == [], f"the UI asked other hosts for: {outside}"

                def visit(path: str) -> None:
                    page.goto(f"{url}{path}", wait_until="networkidle")
                    assert outside == [], f"{path} asked other hosts for: {outside}"

                visit("/docs")
                ask = page.locator(".opblock-post .opblock-summary-path[data-path='/v1/ask']")
                expect(ask).to_be_visible(timeout=30_000)
                page.screenshot(path=str(SHOTS / "docs-offline.png"), full_page=False)

                visit("/redoc")
                summary = page.get_by_role("heading", name="Answer a question, with sources and exact quotes")
                expect(summary).to_be_visible(timeout=30_000)
            finally:
                browser.close()
    finally:
        served.close()
    assert outside == [], f"requests to other hosts: {outside}"
