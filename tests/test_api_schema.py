"""Schemathesis over the app's own OpenAPI spec: generated requests (valid and not) never get a
5xx, and every response matches the spec (status code documented, body schema, content type)."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from api_fixtures import app
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):
    served = app(tmp_path_factory.mktemp("schema"), max_file_mb=0.05)

    async def from_loopback(scope, receive, send) -> None:
        # Schemathesis calls as "testclient", no loopback address: a keyless app would refuse it.
        if "client" in scope:
            scope = {**scope, "client": ("127.0.0.1", 50000)}
        await served(scope, receive, send)

    return schemathesis.openapi.from_asgi("/openapi.json", from_loopback)


ROUTES = ["/v1/ask", "/v1/ask/stream", "/v1/retrieve", "/v1/chat/completions", "/v1/documents",
          "/v1/documents/{doc_id}", "/v1/models", "/healthz", "/readyz", "/metrics"]  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
def test_no_server_errors_and_responses_match_the_spec(api_schema, route: str):
    # The Python API, not schemathesis' pytest plugin (it breaks on this pytest version).
    operations = [r.ok() for r in api_schema.get_all_operations() if r.ok().path == route]
    assert operations
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            # Schema-valid requests may still get 422 for what a schema can't say (the last chat
            # message must be the user's; the question length is a setting).
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()


def test_spec_documents_every_route_with_examples(tmp_path: Path):
    spec = app(tmp_path).openapi()
    assert set(ROUTES) <= set(spec["paths"])
    assert spec["components"]["schemas"]["AskRequest"]["examples"]
    assert spec["components"]["schemas"]["ChatCompletionRequest"]["examples"]
    assert "401" in spec["paths"]["/v1/ask"]["post"]["responses"]


def test_the_spec_names_no_server_and_refers_only_to_itself(tmp_path: Path):
    """The spec the docs pages read points nowhere else: no `servers`, every `$ref` internal."""
    spec = app(tmp_path).openapi()

    def refs(node) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    assert "servers" not in spec
    found = refs(spec)
    assert found and all(ref.startswith("#/") for ref in found), [r for r in found if not r.startswith("#/")]
