"""No secret setting ever reaches a response, a log line, a results file, a feedback row or the
data dir."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from api_fixtures import QUESTION, components, local_client

from api.app import create_app
from eval.gate import metadata
from rag.records import Answer
from rag.settings import Settings

CANARIES = {
    "api_keys": "canary-reader-7f3a",
    "api_admin_keys": "canary-admin-91be",
    "llm_api_key": "canary-llm-c0de",
    "judge_api_key": "canary-judge-5eed",
}


def test_every_key_setting_is_a_secret():
    assert Settings.secret_fields() == set(CANARIES)


def test_secrets_are_masked_and_left_out_of_results():
    settings = Settings(_env_file=None, **CANARIES)
    assert not any(c in repr(settings) or c in str(settings) for c in CANARIES.values())
    recorded = str(metadata(settings, mode="all"))
    assert not any(c in recorded for c in CANARIES.values())
    assert settings.api_keys.get_secret_value() == CANARIES["api_keys"]


def test_no_secret_in_responses_logs_or_files(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    reader, admin = CANARIES["api_keys"], CANARIES["api_admin_keys"]
    seen: list[str] = []
    chat = {"model": "extractive", "messages": [{"role": "user", "content": QUESTION}]}
    built = components(tmp_path, **CANARIES)
    with local_client(create_app(built.settings, built.workspaces, built.gate)) as client:
        as_reader = {"Authorization": f"Bearer {reader}"}
        calls = [
            client.post("/v1/ask", json={"question": QUESTION}, headers=as_reader),
            client.post("/v1/ask/stream", json={"question": QUESTION}, headers=as_reader),
            client.post("/v1/retrieve", json={"query": "refining"}, headers=as_reader),
            client.get("/v1/documents", headers=as_reader),
            client.get("/v1/models", headers=as_reader),
            client.post("/v1/chat/completions", headers=as_reader, json=chat),
            client.delete("/v1/documents/nope.md", headers=as_reader),  # 403: not an admin key
            client.delete("/v1/documents/nope.md", headers={"Authorization": f"Bearer {admin}"}),
            client.get("/v1/documents", headers={"Authorization": "Bearer wrong"}),  # 401
            client.get("/readyz"),
            client.get("/healthz"),
            client.get("/metrics"),
            client.get("/openapi.json"),
        ]
        assert {r.status_code for r in calls} >= {200, 401, 403}
        seen += [r.text + str(r.headers) for r in calls]
        built.feedback.add(Answer.model_validate(calls[0].json()), "up", "a feedback row")
    seen += [record.getMessage() for record in caplog.records]
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert built.feedback.path in files
    seen += [p.read_bytes().decode("utf-8", "replace") for p in files]
    leaked = [c for c in CANARIES.values() for text in seen if c in text]
    assert not leaked
