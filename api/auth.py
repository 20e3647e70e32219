"""Who may call: the API keys (`rag.access` reads them and says what each may do), their failed
attempts, and the bind rule: without any key, only this machine is served.
"""

import contextlib
import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response
from api.limits import RateLimiter
from rag.access import LOCAL, Grant
from rag.gate import Limited

log = logging.getLogger("rag.api")

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
UI_AUTH_MESSAGE = (
    "Sign in with your API key as the password and its name as the user name (`admin`, `editor` "
    "or `reader` for a key without a name)."
)
NOT_LOOPBACK = (
    "this server has no API keys, so it answers only loopback clients; set RAG_API_KEYS to serve "
    "other machines"
)


@dataclass(frozen=True)
class Caller:
    identity: str  # what the rate limit counts by: a key's hash, or the client address
    grant: Grant  # what the key may do (rag.access)


class Auth:
    """The API's dependency: `caller` checks the key, then the rate limit. What the key may do
    is its Grant's to say (`api.context.ApiContext.workspace` asks it).

    `failures` counts wrong keys per client address, for the API and the UI's sign-in alike: once
    its bucket is empty, every attempt from that address gets 429, a right key too, so the answers
    say nothing about which guess was right.
    """

    def __init__(self, keys: dict[str, Grant], limiter: RateLimiter, failures: RateLimiter) -> None:
        self.keys = keys
        self.limiter = limiter
        self.failures = failures

    def throttle(self, address: str) -> None:
        """429 while `address` has used up its failed attempts."""
        if wait := self.failures.wait(address):
            raise Limited(429, "too many wrong API keys from this address; try again later", wait)

    def failed(self, address: str, where: str) -> None:
        with contextlib.suppress(Limited):  # throttle() ran first: a race at most takes the last token
            self.failures.check(address)
        log.warning("wrong API key from %s on %s", address, where)  # the address, never the key

    def caller(self, request: Request) -> Caller:
        address = request.client.host if request.client else "?"
        if self.keys:
            self.throttle(address)
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = given or request.headers.get("x-api-key", "").strip()
            # compare_digest against every key: the time taken says nothing about which matched
            matched = [k for k in self.keys if given and hmac.compare_digest(given.encode(), k.encode())]
            if not matched:
                if given:  # a wrong key is a guess; a missing one is not
                    self.failed(address, request.url.path)
                raise ApiError(401, "invalid or missing API key", "authentication_error",
                               headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
            key = matched[0]
            who = Caller("key:" + hashlib.sha256(key.encode()).hexdigest()[:12], self.keys[key])
        else:
            who = Caller("addr:" + address, LOCAL)
        self.limiter.check(who.identity)
        return who


def bind_problem(host: str, keys: dict[str, Grant]) -> str | None:
    """Why `host` may not be bound with these keys, or None."""
    if keys or host in LOOPBACK:
        return None
    return (
        f"refusing to bind {host} without API keys: set RAG_API_KEYS or RAG_API_KEYS_FILE, or keep "
        "RAG_HOST=127.0.0.1"
    )


def _is_loopback(client: tuple[str, int] | None) -> bool:
    if not client:
        return False  # e.g. a unix socket: no address to vouch for
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d, which is_loopback does not unwrap.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class LoopbackOnly:
    """The bind rule for every entry point (`rag serve`, or uvicorn run by hand on any address):
    installed when there are no API keys, it refuses every client that is not this machine."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not _is_loopback(scope.get("client")):
            if scope["type"] == "websocket":
                # Closed before accepting: the server refuses the handshake with a 403.
                return await send({"type": "websocket.close", "code": 1008})
            return await error_response(403, NOT_LOOPBACK, "permission_error")(scope, receive, send)
        await self.app(scope, receive, send)


class LoginThrottle:
    """The UI's sign-in (`POST /login`, Gradio's) under the same failed-key count as the API:
    a refused sign-in counts as a wrong key, and a throttled address gets 429 before Gradio."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/login":
            return await self.app(scope, receive, send)
        address = scope["client"][0] if scope.get("client") else "?"
        try:
            self.auth.throttle(address)
        except Limited as exc:
            headers = {"Retry-After": str(exc.retry_after)}
            return await error_response(429, str(exc), "rate_limit_error", headers=headers)(
                scope, receive, send
            )
        status = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, sending)
        if status and status[0] in (400, 401):  # Gradio answers a wrong password with 400
            self.auth.failed(address, "/login")
