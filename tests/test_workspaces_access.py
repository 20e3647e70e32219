"""Collections as workspaces, and keys scoped to them: every role against every collection through
every endpoint (HTTP and the `openai` client), and a property test that nothing of a collection a
key may not read ever reaches it.

The expected permissions are written out here as the README's table states them, not derived
from `rag.access`, so a change to the rules there fails this test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from api_fixtures import QUESTION, components, local_client
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.app import create_app

DEFAULT = "api_docs"  # the fixture server's RAG_COLLECTION
COLLECTIONS = (DEFAULT, "alpha", "beta")
ALPHA_FACT = "The Quillon lighthouse on Brannock Point was first lit in 1871 by keeper Edda Voss."
BETA_FACT = "The Zephyr ledger in the vault of Marrowgate records 7331 silver crowns owed by Osric Fenn."
BETA_TITLE = "Marrowgate vault ledger"
# What exists only in beta: its document's id, title and text (and words of it).
BETA_SECRETS = ("zephyr-ledger", BETA_TITLE, BETA_FACT, "Zephyr", "Marrowgate", "7331", "Osric Fenn")

KEYS_FILE = """\
# key          role    scope                  name
k-default      reader
k-alpha-read   reader  collections=alpha      name=alpha-readers
k-alpha-edit   editor  collections=alpha      name=alpha-team
k-all-edit     editor  collections=*          name=all-editors
k-beta-read    reader  collections=beta       name=beta-readers
k-admin        admin
"""


@dataclass(frozen=True)
class Role:
    key: str
    reads: frozenset[str]
    writes: frozenset[str]
    manages: bool = False


ALL = frozenset(COLLECTIONS)
ROLES = {
    "default reader": Role("k-default", frozenset({DEFAULT}), frozenset()),
    "alpha reader": Role("k-alpha-read", frozenset({"alpha"}), frozenset()),
    "alpha editor": Role("k-alpha-edit", frozenset({"alpha"}), frozenset({"alpha"})),
    "editor of all": Role("k-all-edit", ALL, ALL),
    "beta reader": Role("k-beta-read", frozenset({"beta"}), frozenset()),
    "admin": Role("k-admin", ALL, ALL, manages=True),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("workspaces")
    keys = tmp / "keys.txt"
    keys.write_text(KEYS_FILE)
    built = components(tmp, api_keys_file=keys)
    for name, upload in (("alpha", ("quillon-lighthouse.txt", ALPHA_FACT)),
                         ("beta", ("zephyr-ledger.md", f"# {BETA_TITLE}\n\n{BETA_FACT}\n"))):  # fmt: skip
        built.workspaces.create(name)
        (result,) = built.workspaces.get(name).library.upload([(upload[0], upload[1].encode())])
        assert result.status == "added", result
    with local_client(create_app(built.settings, built.workspaces, built.gate)) as client:
        # A conversation only beta's readers may see, about what only beta holds.
        beta = auth(ROLES["beta reader"])
        kept = client.post("/v1/conversations", json={"collection": "beta"}, headers=beta).json()
        asked = {"question": SECRET_SEEKING[0], "conversation_id": kept["id"]}
        assert "7331" in client.post("/v1/ask", json=asked, headers=beta).json()["answer"]
        client.beta_conversation = kept["id"]
        yield client


def auth(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {role.key}"}


def call(client: TestClient, role: Role, endpoint: str, collection: str):
    """One request of `endpoint` against `collection`."""
    h = auth(role)
    match endpoint:
        case "list documents":
            return client.get("/v1/documents", params={"collection": collection}, headers=h)
        case "retrieve":
            return client.post("/v1/retrieve", json={"query": QUESTION, "collection": collection}, headers=h)
        case "ask":
            return client.post("/v1/ask", json={"question": QUESTION, "collection": collection}, headers=h)
        case "ask stream":
            body = {"question": QUESTION, "collection": collection}
            return client.post("/v1/ask/stream", json=body, headers=h)
        case "chat":
            body = {"model": collection, "messages": [{"role": "user", "content": QUESTION}]}
            return client.post("/v1/chat/completions", json=body, headers=h)
        case "upload":
            files = {"files": (f"{role.key}.txt", f"Notes uploaded with {role.key}.".encode())}
            return client.post("/v1/documents", files=files, data={"collection": collection}, headers=h)
        case "delete document":
            return client.delete(
                "/v1/documents/no-such-doc.txt", params={"collection": collection}, headers=h
            )
    raise AssertionError(endpoint)


READS = ("list documents", "retrieve", "ask", "ask stream", "chat")
WRITES = ("upload", "delete document")


@pytest.mark.parametrize("endpoint", READS + WRITES)
@pytest.mark.parametrize("role_name", ROLES)
def test_each_role_is_allowed_or_denied_exactly_as_documented(
    server: TestClient, role_name: str, endpoint: str
):
    role = ROLES[role_name]
    for collection in (*COLLECTIONS, "no-such-collection"):
        response = call(server, role, endpoint, collection)
        error = (
            response.json().get("error")
            if response.headers["content-type"].startswith("application/json")
            else None
        )
        where = f"{role_name} / {endpoint} / {collection}: {response.status_code} {response.text[:200]}"
        if collection not in role.reads:  # unknown and forbidden alike: the same 404, the same words
            param = "model" if endpoint == "chat" else "collection"
            assert response.status_code == 404, where
            assert error == {"message": f"{param}: no collection {collection!r}", "type": "not_found_error",
                             "param": param, "code": "404"}, where  # fmt: skip
        elif endpoint in WRITES and collection not in role.writes:
            assert response.status_code == 403 and error["type"] == "permission_error", where
        elif endpoint == "delete document":  # allowed: it reaches the document lookup
            assert response.status_code == 404 and error["param"] == "doc_id", where
        else:
            assert response.status_code == 200, where


@pytest.mark.parametrize("role_name", ROLES)
def test_listings_show_exactly_the_readable_collections(server: TestClient, role_name: str):
    from openai import OpenAI

    role = ROLES[role_name]
    listed = server.get("/v1/collections", headers=auth(role)).json()["collections"]
    assert {c["name"] for c in listed} == role.reads
    for c in listed:
        assert (
            c["documents"] >= 1 and c["chunks"] >= c["documents"] and c["default"] == (c["name"] == DEFAULT)
        )
    client = OpenAI(base_url=f"{server.base_url}/v1", api_key=role.key, http_client=server, max_retries=0)
    models = [m.id for m in client.models.list()]
    # The model's id stands for the default collection: listed only for keys that read it.
    assert models == (["extractive"] if DEFAULT in role.reads else []) + sorted(role.reads)


@pytest.mark.parametrize("role_name", ROLES)
def test_the_openai_client_answers_from_readable_collections_only(server: TestClient, role_name: str):
    import openai

    role = ROLES[role_name]
    client = openai.OpenAI(
        base_url=f"{server.base_url}/v1", api_key=role.key, http_client=server, max_retries=0
    )
    for collection in COLLECTIONS:
        messages = [{"role": "user", "content": "Who first lit the Quillon lighthouse?"}]
        if collection in role.reads:
            completion = client.chat.completions.create(model=collection, messages=messages)
            assert ("Edda Voss" in completion.choices[0].message.content) == (collection == "alpha")
        else:
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model=collection, messages=messages)
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model=collection, messages=messages, stream=True)
    # The model's own id is the default collection, under the same rule.
    messages = [{"role": "user", "content": QUESTION}]
    if DEFAULT in role.reads:
        answered = client.chat.completions.create(model="extractive", messages=messages)
        assert "refining" in answered.choices[0].message.content
    else:
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="extractive", messages=messages)


def test_only_admin_keys_create_and_delete_collections(server: TestClient):
    for role_name, role in ROLES.items():
        if not role.manages:
            made = server.post("/v1/collections", json={"name": "scratch"}, headers=auth(role))
            assert made.status_code == 403, role_name
            assert server.delete("/v1/collections/alpha", headers=auth(role)).status_code == 403, role_name
    admin = auth(ROLES["admin"])
    assert server.post("/v1/collections", json={"name": "scratch"}, headers=admin).status_code == 201
    again = server.post("/v1/collections", json={"name": "scratch"}, headers=admin)
    assert again.status_code == 409 and again.json()["error"]["param"] == "name"
    assert server.delete(f"/v1/collections/{DEFAULT}", headers=admin).status_code == 409, "not the default"
    assert server.delete("/v1/collections/scratch", headers=admin).status_code == 200
    assert server.delete("/v1/collections/scratch", headers=admin).status_code == 404
    names = {c["name"] for c in server.get("/v1/collections", headers=admin).json()["collections"]}
    assert names == ALL


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (
            {"method": "POST", "url": "/v1/ask", "json": {"question": QUESTION, "collection": "Bad Name!"}},
            "collection",
        ),
        ({"method": "GET", "url": "/v1/documents", "params": {"collection": "x"}}, "collection"),
        ({"method": "POST", "url": "/v1/collections", "json": {"name": "eval_sneaky"}}, "name"),
        ({"method": "POST", "url": "/v1/collections", "json": {"name": "a__state"}}, "name"),
        ({"method": "POST", "url": "/v1/collections", "json": {"name": "UPPER"}}, "name"),
    ],
)
def test_an_invalid_collection_name_is_a_422_naming_the_field(server: TestClient, request_: dict, param: str):
    response = server.request(**request_, headers=auth(ROLES["admin"]))
    assert response.status_code == 422 and response.json()["error"]["param"] == param, response.text


# -- nothing of a collection a key may not read reaches it -------------------------------------

# Questions that would find beta's document, if anything could.
SECRET_SEEKING = [
    "How many silver crowns does the ledger record?", "Who owes crowns in the vault?",
    "What is in the vault?", "ledger crowns vault", "Who first lit the lighthouse?", QUESTION,
]  # fmt: skip
NAMES = [*COLLECTIONS, "beta", "no-such-collection", "extractive", "Bad Name!", ""]
BETA_CONVERSATION = "beta's"  # stands for the id of the conversation the fixture keeps in beta


ENDPOINTS = [
    "ask", "ask stream", "retrieve", "chat", "documents", "collections", "models", "upload", "delete",
    "delete collection", "conversations", "conversation", "ask in conversation", "delete conversation",
]  # fmt: skip


@st.composite
def requests(draw) -> tuple[str, dict]:
    """(endpoint, arguments) of any call a reader of alpha could make."""
    endpoint = draw(st.sampled_from(ENDPOINTS))
    # Mostly names that exist (beta above all); sometimes anything at all.
    collection = draw(st.sampled_from(NAMES) if draw(st.integers(0, 3)) else st.text(max_size=12))
    question = draw(st.sampled_from(SECRET_SEEKING) | st.text(min_size=1, max_size=40))
    mode = draw(st.sampled_from([None, "hybrid", "dense", "bm25"]))
    conversation = draw(st.sampled_from([BETA_CONVERSATION, "0" * 32]) | st.text(min_size=1, max_size=8))
    return endpoint, {
        "collection": collection,
        "question": question,
        "mode": mode,
        "conversation": conversation,
    }


def send(client: TestClient, endpoint: str, a: dict) -> str:
    h = auth(ROLES["alpha reader"])
    conversation = client.beta_conversation if a["conversation"] == BETA_CONVERSATION else a["conversation"]
    body = {"question": a["question"], "collection": a["collection"] or None, "mode": a["mode"]}
    match endpoint:
        case "ask":
            r = client.post("/v1/ask", json=body, headers=h)
        case "ask stream":
            r = client.post("/v1/ask/stream", json=body, headers=h)
        case "retrieve":
            r = client.post("/v1/retrieve", json={"query": a["question"], "collection": body["collection"],
                                                  "mode": a["mode"]}, headers=h)  # fmt: skip
        case "chat":
            messages = [{"role": "user", "content": a["question"]}]
            r = client.post(
                "/v1/chat/completions", json={"model": a["collection"], "messages": messages}, headers=h
            )
        case "documents":
            r = client.get("/v1/documents", params={"collection": a["collection"]}, headers=h)
        case "collections":
            r = client.get("/v1/collections", headers=h)
        case "models":
            r = client.get("/v1/models", headers=h)
        case "upload":
            files = {"files": ("probe.txt", a["question"].encode() or b"x")}
            r = client.post("/v1/documents", files=files, data={"collection": a["collection"]}, headers=h)
        case "delete":
            params = {"collection": a["collection"]}
            r = client.delete("/v1/documents/uploads/zephyr-ledger.md", params=params, headers=h)
        case "conversations":
            r = client.get("/v1/conversations", headers=h)
        case "conversation":
            r = client.get(f"/v1/conversations/{quote(conversation, safe='')}", headers=h)
        case "delete conversation":
            r = client.delete(f"/v1/conversations/{quote(conversation, safe='')}", headers=h)
        case "ask in conversation":
            asked = {"question": a["question"], "conversation_id": conversation}
            r = client.post("/v1/ask", json=asked, headers=h)
        case "delete collection":
            r = client.delete(f"/v1/collections/{quote(a['collection'] or 'x', safe='')}", headers=h)
    assert r.status_code < 500, r.text
    return r.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests())
@example(("ask", {"collection": "beta", "question": SECRET_SEEKING[0], "mode": None, "conversation": ""}))
@example(("chat", {"collection": "beta", "question": SECRET_SEEKING[1], "mode": None, "conversation": ""}))
@example(
    ("conversation", {"collection": "", "question": "x", "mode": None, "conversation": BETA_CONVERSATION})
)
@example(("ask in conversation", {"collection": "", "question": "and who owes them?", "mode": None,
                                  "conversation": BETA_CONVERSATION}))  # fmt: skip
def test_no_response_to_alpha_ever_holds_what_only_beta_holds(server: TestClient, request_: tuple[str, dict]):
    endpoint, arguments = request_
    sent = json.dumps(arguments, ensure_ascii=False).lower()
    received = send(server, endpoint, arguments).lower()
    for secret in BETA_SECRETS:
        if secret.lower() not in sent:  # what the caller typed may come back, as the question
            assert secret.lower() not in received, (endpoint, arguments, secret)
