"""One generation limit for the UI and the API: with RAG_MAX_GENERATIONS=1 an answer in one holds
the other back (it waits in the one queue, or is refused when that is full), and a permit frees
its slot exactly once, however many threads release it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_fixtures import QUESTION, components, local_client
from fastapi.testclient import TestClient

from api.app import create_app
from app.components import Components
from rag.gate import GenerationGate, Limited, Permit
from ui import handlers

QUEUE_FULL = "⚠ Sorry, too many questions are waiting; try again shortly."


class HoldingLLM:
    """Writes a first piece, then waits until the test lets it finish (`go_on`)."""

    backend, model, generative = "holding", "holding-1", True

    def __init__(self) -> None:
        self.go_on = threading.Event()
        self.started = threading.Semaphore(0)

    def stream(self, messages, question, passages) -> Iterator[str]:
        self.started.release()
        yield "Refining capacity "
        assert self.go_on.wait(30), "the test never let the answer finish"
        yield "is discussed [1]."


class BrokenLLM:
    backend, model, generative = "broken", "broken-1", True

    def stream(self, messages, question, passages) -> Iterator[str]:
        yield "Refining "
        raise RuntimeError("backend exploded")


def one_slot(tmp_path: Path, llm, queue: int) -> tuple[Components, TestClient]:
    built = components(tmp_path, llm, max_generations=1, max_queue=queue, queue_timeout=60)
    return built, local_client(create_app(built.settings, built.workspaces, built.gate))


def queued(c: TestClient, who: str) -> None:
    """Wait until one question waits for a slot, as /metrics reports it (a deadline against a
    hang, not a timing check)."""
    deadline = time.monotonic() + 30
    while "rag_generations_waiting 1.0" not in c.get("/metrics").text:
        assert time.monotonic() < deadline, f"the {who} question never waited for the slot"
        time.sleep(0.02)


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    return thread, result


def test_an_answer_streaming_in_the_ui_holds_back_the_api(tmp_path: Path):
    llm = HoldingLLM()
    llm.go_on.set()  # the UI's answer is held by its reader, the page, not by the model
    built, client = one_slot(tmp_path, llm, queue=1)
    with client as c:
        page = handlers.chat(built, QUESTION, [])
        next(page)  # the question shows
        assert next(page).messages[-1]["content"].startswith("Refining capacity")  # generating

        api, asked = in_thread(lambda: c.post("/v1/ask", json={"question": QUESTION}))
        queued(c, "API")  # the API question waits for the UI's slot ...
        full = c.post("/v1/ask", json={"question": QUESTION})
        assert full.status_code == 429 and "Retry-After" in full.headers  # ... and the queue is full

        page.close()  # the browser went away mid-answer: its slot comes back
        api.join(30)
        assert asked[0].status_code == 200 and asked[0].json()["answer"]


def test_an_answer_generating_for_the_api_holds_back_the_ui(tmp_path: Path):
    llm = HoldingLLM()
    built, client = one_slot(tmp_path, llm, queue=1)
    with client as c:
        api, asked = in_thread(lambda: c.post("/v1/ask", json={"question": QUESTION}))
        assert llm.started.acquire(timeout=30)  # the API's answer holds the only slot

        ui, pages = in_thread(lambda: list(handlers.chat(built, QUESTION, [])))
        queued(c, "UI")  # the UI question waits in the same queue ...
        refused = list(handlers.chat(built, QUESTION, []))[-1]
        assert refused.messages[-1]["content"] == QUEUE_FULL  # ... and the next one is turned away
        assert refused.exchanges[0].answer is None

        llm.go_on.set()
        api.join(30)
        ui.join(30)
        assert asked[0].status_code == 200
        assert pages[0][-1].exchanges[0].answer is not None, "the waiting UI question was answered"


def test_a_failed_ui_answer_gives_its_slot_back(tmp_path: Path):
    built, client = one_slot(tmp_path, BrokenLLM(), queue=0)
    with client as c:
        failed = list(handlers.chat(built, QUESTION, []))[-1]
        assert failed.messages[-1]["content"].startswith("⚠ Sorry, the answer failed")
        # With no queue, a slot still held would turn this away with 429 at once.
        assert c.post("/v1/ask/stream", json={"question": QUESTION}).status_code == 200


class SlowToRead(Permit):
    """A permit whose flag is slow to read, so other threads run between a check and a set."""

    @property
    def held(self) -> bool:
        value = self.__dict__["held"]
        time.sleep(0.001)  # other threads run between this read and the caller's set
        return value

    @held.setter
    def held(self, value: bool) -> None:
        self.__dict__["held"] = value


def test_a_permit_released_from_many_threads_frees_one_slot():
    gate = GenerationGate(slots=2, queue=0, timeout=1)
    kept, shared = gate.acquire(), gate.acquire()
    shared.__class__ = SlowToRead
    start = threading.Barrier(8)

    def release() -> None:
        start.wait()
        shared.release()

    threads = [threading.Thread(target=release) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert gate.active == 1
    gate.acquire()  # the one freed slot
    with pytest.raises(Limited):
        gate.acquire()  # and no more: `kept` and the new one fill both
    kept.release()
    assert gate.active == 1
