"""Tokens to text deltas (stop strings cut, partial characters held back), and the server-sent-event response: a
client that disconnects closes the event source, which cancels its generations."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from longkit.serve.batching import Sampling, ServingEngine
from longkit.serve.wire import FinishReason, WireModel


@dataclass
class Delta:
    """New text of one choice; `finish_reason` is set on its last delta."""

    text: str
    finish_reason: FinishReason | None = None
    token_ids: list[int] = field(default_factory=list)


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index of the earliest stop string in text, or None."""
    hits = [i for i in (text.find(s) for s in stops if s) if i != -1]
    return min(hits) if hits else None


async def text_deltas(
    engine: ServingEngine, prompt_ids: list[int], sampling: Sampling, stops: Sequence[str]
) -> AsyncGenerator[Delta, None]:
    """Generate and yield text as it becomes final: a stop string ends the choice (and is not in the text), text
    that could still be the start of a stop string and an incomplete UTF-8 character are held back."""
    hold = max((len(s) for s in stops), default=1) - 1
    emitted = 0
    async with contextlib.aclosing(engine.stream(prompt_ids, sampling)) as steps:
        async for step in steps:
            text = engine.decode(step.token_ids)
            cut = find_stop(text, stops)
            if cut is not None:
                yield Delta(text[emitted:cut], "stop", step.token_ids)
                return  # closing `steps` cancels the request in the engine
            if step.finished:
                yield Delta(text[emitted:], "stop" if step.hit_eos else "length", step.token_ids)
                return
            safe = len(text.rstrip("\ufffd")) - hold
            if safe > emitted:
                yield Delta(text[emitted:safe], None, step.token_ids)
                emitted = safe


def sse(data: WireModel | str) -> bytes:
    """One server-sent event: a response object (see wire.py) or a bare string such as "[DONE]"."""
    payload = data if isinstance(data, str) else json.dumps(data.dump(), ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


class EventStream(Response):
    """An ASGI response that sends server-sent events from an async iterator and, when the client disconnects,
    closes the iterator at once (so its generations are cancelled) instead of at its next write."""

    def __init__(self, events: AsyncGenerator[bytes, None], on_disconnect: Callable[[], None] | None = None):
        # a Response subclass so that FastAPI sends it as it is; its own __call__ does the sending
        self.events = events
        self.on_disconnect = on_disconnect
        self.background = None
        self.status_code = 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the events until they end or the client goes away, whichever is first."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )

        async def pump() -> None:
            async for chunk in self.events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pump_task, watch_task = asyncio.create_task(pump()), asyncio.create_task(watch())
        try:
            done, _ = await asyncio.wait({pump_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (pump_task, watch_task):
                t.cancel()
            await asyncio.gather(pump_task, watch_task, return_exceptions=True)
            await self.events.aclose()
        if pump_task not in done:  # the client went away first
            if self.on_disconnect is not None:
                self.on_disconnect()
        else:
            error = pump_task.exception()
            if error is not None:
                raise error
