"""The real `openai` client reading a streamed `/v1/chat/completions`: when the support check
refuses text that already streamed, the last chunk withdraws it in `rag`, and the client parses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from api_fixtures import QUESTION, components, local_client

from api.app import create_app

UNGROUNDED = ["The moon is made of ", "green cheese [1]."]


class UngroundedLLM:
    """A model that answers from nowhere: nothing in the documents supports it."""

    backend, model, generative = "ungrounded", "ungrounded-1", True

    def stream(self, messages, question, passages) -> Iterator[str]:
        yield from UNGROUNDED


def streamed(tmp_path: Path, question: str, llm=None) -> tuple[str, dict]:
    """The text an `openai` client assembles from the stream, and the last chunk's `rag`."""
    from openai import OpenAI

    built = components(tmp_path, llm)
    with local_client(create_app(built.settings, built.workspaces, built.gate)) as http:
        client = OpenAI(base_url=f"{http.base_url}/v1", api_key="none", http_client=http, max_retries=0)
        chunks = list(
            client.chat.completions.create(
                model=built.settings.collection, messages=[{"role": "user", "content": question}], stream=True
            )
        )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    return "".join(c.choices[0].delta.content or "" for c in chunks), chunks[-1].model_extra["rag"]


def test_text_the_support_check_refused_is_withdrawn_by_the_last_chunk(tmp_path: Path):
    text, rag = streamed(tmp_path, QUESTION, UngroundedLLM())
    assert rag["withdrawn"] is True and rag["refused"] is True
    assert rag["refusal_reason"] == "no sentence is supported by the passages"
    assert rag["answer"] == "The documents don't contain an answer to that."
    # A client reading only `content` saw the ungrounded text, then the refusal after it.
    assert text == "".join(UNGROUNDED) + "\n\n" + rag["answer"]


def test_a_grounded_answer_or_a_plain_refusal_is_not_withdrawn(tmp_path: Path):
    text, rag = streamed(tmp_path / "grounded", QUESTION)
    assert rag["withdrawn"] is False and not rag["refused"] and text == rag["answer"]
    # Refused before any model ran: what streamed was the refusal itself.
    text, rag = streamed(tmp_path / "off-topic", "zeppelin airship helium mooring mast")
    assert rag["withdrawn"] is False and rag["refused"] and text == rag["answer"]
