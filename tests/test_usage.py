"""Usage per key and collection: in /metrics by the key's name (never the key), and in the usage
log every worker adds to."""

from __future__ import annotations

from pathlib import Path

from api_fixtures import QUESTION, components, local_client

from api.app import create_app
from rag.usage import UsageLog, UsageRow

KEYS = "secret-team-key-1 editor collections=api_docs,alpha name=team\nsecret-admin-key-2 admin\n"


def test_requests_answers_refusals_and_documents_are_counted_per_key_name(tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text(KEYS)
    built = components(tmp_path, api_keys_file=keys)
    built.workspaces.create("alpha")
    team, admin = (
        {"Authorization": "Bearer secret-team-key-1"},
        {"Authorization": "Bearer secret-admin-key-2"},
    )
    with local_client(create_app(built.settings, built.workspaces, built.gate)) as client:
        assert not client.post("/v1/ask", json={"question": QUESTION}, headers=team).json()["refused"]
        off_topic = {"question": "zeppelin airship helium mooring mast"}
        assert client.post("/v1/ask", json=off_topic, headers=team).json()["refused"]
        files = {"files": ("note.txt", b"The Quillon lighthouse was first lit in 1871.")}
        assert client.post(
            "/v1/documents", files=files, data={"collection": "alpha"}, headers=team
        ).is_success
        assert client.post(
            "/v1/retrieve", json={"query": "lighthouse", "collection": "alpha"}, headers=team
        ).is_success
        assert client.get("/v1/documents", params={"collection": "nope"}, headers=team).status_code == 404
        chat = {"model": "alpha", "messages": [{"role": "user", "content": "When was the lighthouse lit?"}]}
        assert client.post("/v1/chat/completions", json=chat, headers=admin).is_success
        metrics = client.get("/metrics").text
    counted = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("rag_usage_total{")
    }
    assert counted == {
        'rag_usage_total{collection="api_docs",key="team",kind="requests"}': 2.0,
        'rag_usage_total{collection="api_docs",key="team",kind="answers"}': 2.0,
        'rag_usage_total{collection="api_docs",key="team",kind="refusals"}': 1.0,
        'rag_usage_total{collection="alpha",key="team",kind="requests"}': 2.0,
        'rag_usage_total{collection="alpha",key="team",kind="documents"}': 1.0,
        'rag_usage_total{collection="alpha",key="admin",kind="requests"}': 1.0,
        'rag_usage_total{collection="alpha",key="admin",kind="answers"}': 1.0,
    }, "a refused request (404) is no usage of a collection"
    assert "secret-" not in metrics, "keys are labelled by name, never by the key"
    rows = {(r.key, r.collection): r for r in UsageLog(built.settings.usage_path).rows()}
    assert rows[("team", "api_docs")] == UsageRow(
        "team", "api_docs", 2, 2, 1, 0, rows[("team", "api_docs")].last_at
    )
    assert (rows[("team", "alpha")].requests, rows[("team", "alpha")].documents) == (2, 1)
    assert (rows[("admin", "alpha")].requests, rows[("admin", "alpha")].answers) == (1, 1)
    assert "secret-" not in built.settings.usage_path.read_bytes().decode("utf-8", "replace")
