"""Server-sent events: the event text, and the response that frees its generation slot."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from rag.gate import Permit


def sse_event(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def sse_data(data: dict) -> str:
    """An unnamed event: OpenAI's streams are `data:` lines only."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def sse_response(events: Iterator[str], permit: Permit) -> StreamingResponse:
    # The background task also frees the slot when a client leaves before the stream starts.
    return StreamingResponse(
        events, media_type="text/event-stream", background=BackgroundTask(permit.release),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )  # fmt: skip
