"""Kept conversations over the API: each key's own, surviving a restart, in SQLite under the data dir."""

from __future__ import annotations

from pathlib import Path

from api_fixtures import QUESTION, components, local_client
from fastapi.testclient import TestClient

from api.app import create_app
from rag.conversations import ConversationStore
from rag.usage import UsageLog

KEYS = "k-ann reader name=ann\nk-bob reader name=bob\nk-admin admin\n"
ANN, BOB = {"Authorization": "Bearer k-ann"}, {"Authorization": "Bearer k-bob"}


def served(tmp_path: Path, keys: str = KEYS) -> TestClient:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(keys)
    built = components(tmp_path, api_keys_file=keys_file)
    return local_client(create_app(built.settings, built.workspaces, built.gate))


def test_a_conversation_keeps_every_answer_and_is_the_history_of_the_next(tmp_path: Path):
    with served(tmp_path) as client:
        kept = client.post("/v1/conversations", json={}, headers=ANN)
        assert (
            kept.status_code == 201 and kept.json()["collection"] == "api_docs" and kept.json()["turns"] == 0
        )
        cid = kept.json()["id"]
        first = client.post(
            "/v1/ask", json={"question": QUESTION, "conversation_id": cid}, headers=ANN
        ).json()
        asked = {"question": "And what about recycling?", "conversation_id": cid}
        follow = client.post("/v1/ask", json=asked, headers=ANN).json()
        assert "refining" in follow["condensed_query"].lower(), "the kept turns were the history"
        usage = {(r.key, r.collection): r for r in UsageLog(tmp_path / "data" / "usage.sqlite3").rows()}
        assert (usage["ann", "api_docs"].requests, usage["ann", "api_docs"].answers) == (3, 2), (
            "made, asked twice"
        )
        (listed,) = client.get("/v1/conversations", headers=ANN).json()["conversations"]
        assert listed["id"] == cid and listed["turns"] == 2 and listed["title"] == QUESTION
        record = client.get(f"/v1/conversations/{cid}", headers=ANN).json()
        assert [t["question"] for t in record["history"]] == [QUESTION, "And what about recycling?"]
        assert record["history"][0]["answer"] == first, "the whole Answer record, sources and quotes"
        assert record["history"][1]["answer"]["answer"] == follow["answer"]
        renamed = client.patch(f"/v1/conversations/{cid}", json={"title": "Refining"}, headers=ANN).json()
        assert renamed["title"] == "Refining"
        assert client.delete(f"/v1/conversations/{cid}", headers=ANN).status_code == 200
        assert client.get(f"/v1/conversations/{cid}", headers=ANN).status_code == 404
        assert client.get("/v1/conversations", headers=ANN).json()["conversations"] == []


def test_another_keys_conversation_does_not_exist_for_it(tmp_path: Path):
    with served(tmp_path) as client:
        cid = client.post("/v1/conversations", json={}, headers=ANN).json()["id"]
        client.post("/v1/ask", json={"question": QUESTION, "conversation_id": cid}, headers=ANN)
        missing = client.get("/v1/conversations/" + "0" * 32, headers=BOB)
        assert client.get("/v1/conversations", headers=BOB).json()["conversations"] == []
        for response in (
            client.get(f"/v1/conversations/{cid}", headers=BOB),
            client.patch(f"/v1/conversations/{cid}", json={"title": "mine now"}, headers=BOB),
            client.delete(f"/v1/conversations/{cid}", headers=BOB),
            client.post("/v1/ask", json={"question": "and then?", "conversation_id": cid}, headers=BOB),
        ):
            assert response.status_code == 404
            assert response.json()["error"]["message"] == missing.json()["error"]["message"].replace(
                "0" * 32, cid
            )
        assert client.get(f"/v1/conversations/{cid}", headers=ANN).json()["turns"] == 1, "untouched"


def test_conversations_survive_a_restart_and_go_with_lost_access(tmp_path: Path):
    with served(tmp_path) as client:
        cid = client.post("/v1/conversations", json={"title": "kept"}, headers=ANN).json()["id"]
        client.post("/v1/ask", json={"question": QUESTION, "conversation_id": cid}, headers=ANN)
    with served(tmp_path) as restarted:  # a new process over the same data dir
        assert (
            restarted.get(f"/v1/conversations/{cid}", headers=ANN).json()["history"][0]["question"]
            == QUESTION
        )
    # Ann's key now reads another collection only: her conversation in this one is out of reach.
    with served(tmp_path, KEYS.replace("k-ann reader", "k-ann reader collections=elsewhere")) as narrowed:
        assert narrowed.get(f"/v1/conversations/{cid}", headers=ANN).status_code == 404
        assert narrowed.get("/v1/conversations", headers=ANN).json()["conversations"] == []


def test_a_conversation_takes_no_second_history_or_other_collection(tmp_path: Path):
    with served(tmp_path) as client:
        cid = client.post("/v1/conversations", json={}, headers=ANN).json()["id"]
        both = {"question": QUESTION, "conversation_id": cid, "history": [{"question": "q", "answer": "a"}]}
        assert client.post("/v1/ask", json=both, headers=ANN).json()["error"]["param"] == "history"
        elsewhere = {"question": QUESTION, "conversation_id": cid, "collection": "other"}
        assert client.post("/v1/ask", json=elsewhere, headers=ANN).json()["error"]["param"] == "collection"
        unknown = client.post("/v1/conversations", json={"collection": "nope"}, headers=ANN)
        assert unknown.status_code == 404


def test_the_store_never_mixes_owners(tmp_path: Path):
    store = ConversationStore(tmp_path / "c.sqlite3", "docs")
    mine = store.create("ann")
    assert store.get("bob", mine.id) is None and store.list("bob") == []
    assert not store.rename("bob", mine.id, "x") and not store.delete("bob", mine.id)
    assert store.get("ann", mine.id) is not None
