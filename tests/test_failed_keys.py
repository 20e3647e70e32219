"""Wrong API keys are throttled per client address, over the API and the UI's sign-in together."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from api_fixtures import components, local_client

from api.app import create_app
from api.limits import RateLimiter
from rag.access import load_grants

GOOD = {"Authorization": "Bearer good-key"}
WRONG = {"Authorization": "Bearer guess-0001"}


def test_an_address_that_guesses_too_often_gets_429_even_with_the_right_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    built = components(tmp_path, api_keys="good-key", failed_keys_per_minute=3)
    api = create_app(built.settings, built.workspaces, built.gate)
    caplog.set_level(logging.WARNING, "rag.api")
    with local_client(api, "203.0.113.7") as guesser, local_client(api, "203.0.113.8") as other:
        assert [guesser.get("/v1/documents").status_code for _ in range(4)] == [401] * 4, "no key, no guess"
        assert [guesser.get("/v1/documents", headers=WRONG).status_code for _ in range(3)] == [401] * 3
        throttled = guesser.get("/v1/documents", headers=WRONG)
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
        assert throttled.json()["error"]["type"] == "rate_limit_error"
        assert guesser.get("/v1/documents", headers=GOOD).status_code == 429, "a right key says nothing"
        assert other.get("/v1/documents", headers=GOOD).status_code == 200, "other addresses unaffected"
    logged = [r.getMessage() for r in caplog.records if "wrong API key" in r.getMessage()]
    assert len(logged) == 3 and all("203.0.113.7" in line for line in logged)
    assert not any("guess-0001" in r.getMessage() or "good-key" in r.getMessage() for r in caplog.records)


def test_ui_sign_in_failures_count_with_the_api_ones(tmp_path: Path):
    from app.server import mount_ui

    built = components(tmp_path, api_keys="good-key", failed_keys_per_minute=3)
    api = create_app(built.settings, built.workspaces, built.gate)
    served = mount_ui(api, built.settings, built, load_grants(built.settings))
    with local_client(served, "203.0.113.9") as c:

        def login(key: str) -> int:
            return c.post("/login", data={"username": "ann", "password": key}).status_code

        assert [login("wrong-1"), login("wrong-2")] == [400, 400]
        assert c.get("/v1/documents", headers=WRONG).status_code == 401
        assert login("good-key") == 429, "the third failure was the API's: the sign-in is throttled"
        assert c.get("/v1/documents", headers=GOOD).status_code == 429


def test_failed_attempts_come_back_at_the_set_rate():
    now = [0.0]
    failures = RateLimiter(per_minute=3, clock=lambda: now[0])
    for _ in range(3):
        assert failures.wait("a") == 0
        failures.check("a")
    assert failures.wait("a") == pytest.approx(20.0)
    now[0] = 19.0
    assert failures.wait("a") == pytest.approx(1.0)
    now[0] = 20.0
    assert failures.wait("a") == 0


def test_zero_turns_the_throttle_off(tmp_path: Path):
    built = components(tmp_path, api_keys="good-key", failed_keys_per_minute=0)
    with local_client(create_app(built.settings, built.workspaces, built.gate)) as c:
        assert {c.get("/v1/documents", headers=WRONG).status_code for _ in range(8)} == {401}
