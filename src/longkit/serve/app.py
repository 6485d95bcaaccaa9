"""The OpenAI-compatible HTTP app: /v1/models, /v1/completions, /v1/chat/completions (streaming or not, n choices,
stop strings, seed, logprobs, echo), /health and /metrics; bearer-token auth, a bounded queue (429 with Retry-After),
a per-request timeout, one access-log line per request, and RAG with citations when given a pipeline."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from longkit.errors import LongkitError
from longkit.serve.batching import Sampling, make_engine
from longkit.serve.metrics import Metrics
from longkit.serve.protocol import ApiError, ChatBody, CompletionBody, parse_body
from longkit.serve.streaming import Delta, EventStream, sse, text_deltas

access_log = logging.getLogger("longkit.serve.access")


@dataclass
class Job:
    """One prompt to answer `n` times."""

    prompt_ids: list[int]
    prompt_text: str
    first_index: int  # index of its first choice in the response


@dataclass
class Choice:
    """A finished choice."""

    index: int
    text: str = ""
    finish_reason: str | None = None
    token_ids: list[int] = field(default_factory=list)


def create_app(
    backend: Any,
    model_id: str,
    api_key: str | None = None,
    max_tokens_limit: int = 1024,
    max_request_bytes: int = 8 * 1024 * 1024,
    rag: Any = None,
    max_batch: int = 16,
    max_queue: int = 64,
    request_timeout: float = 600.0,
    kv_cache_tokens: int | None = None,
) -> Any:
    """Build the app over a backend (an HFBackend is served with continuous batching) or an engine.

    At most max_batch generations run together and max_queue more wait; beyond that a request gets 429. With `rag`
    (a longkit.rag.pipeline.RagPipeline) chat requests retrieve first and the answer carries `citations`."""
    engine = make_engine(backend, max_batch=max_batch, kv_cache_tokens=kv_cache_tokens)
    metrics = Metrics()
    capacity = max_batch + max_queue
    tok = engine.tokenizer

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            engine.stop()

    app = FastAPI(title="longkit OpenAI-compatible server", lifespan=lifespan)
    app.state.engine, app.state.metrics, app.state.model_id = engine, metrics, model_id

    def error(exc: ApiError) -> Any:
        return JSONResponse(status_code=exc.status, content=exc.body(), headers=exc.headers)

    async def read_body(request: Request) -> bytes:
        raw = await request.body()
        if len(raw) > max_request_bytes:  # a chunked body has no content-length to check up front
            raise ApiError(413, f"request body of {len(raw)} bytes exceeds the limit of {max_request_bytes}")
        return raw

    def check_model(model: str | None) -> None:
        if model is not None and model != model_id:
            raise ApiError(404, f"model '{model}' is not served here (this server serves '{model_id}')", param="model")

    def check_budget(max_tokens: int, param: str) -> None:
        if max_tokens > max_tokens_limit:
            raise ApiError(400, f"{param}={max_tokens} exceeds this server's limit of {max_tokens_limit}", param=param)

    def encode(text: str, param: str, max_tokens: int) -> list[int]:
        ids = tok.encode(text)
        if not ids:
            raise ApiError(400, f"{param}: must not be empty", param=param)
        if len(ids) + max_tokens > engine.max_context:
            raise ApiError(400, f"{param}: the prompt has {len(ids)} tokens; with {max_tokens} tokens to generate that "
                                f"is {len(ids) + max_tokens}, more than the {engine.max_context}-token context this "
                                f"server serves (shorten the prompt or lower max_tokens)", param=param)
        return ids

    def sampling(body: Any, max_tokens: int, stops: list[str]) -> Sampling:
        # token-by-token delivery costs the batch loop and the event loop work per token: only when it is used
        return Sampling(max_new_tokens=max_tokens, temperature=float(body.temperature or 0.0), seed=body.seed,
                        incremental=bool(body.stream or stops))

    @asynccontextmanager
    async def admitted(slots: int, request: Request) -> AsyncIterator[None]:
        """Hold `slots` generation slots, or refuse with 429 when the queue is full."""
        if metrics.running + slots > capacity:
            wait = max(1, min(60, math.ceil(metrics.typical_latency())))
            raise ApiError(429, f"the server is at capacity ({max_batch} generating, {max_queue} queued); retry "
                                f"after {wait} s", headers={"Retry-After": str(wait)})
        metrics.running += slots
        try:
            yield
        finally:
            metrics.running -= slots

    async def run_choice(job: Job, index: int, s: Sampling, stops: list[str]) -> Choice:
        out = Choice(index)
        async for d in text_deltas(engine, job.prompt_ids, s, stops):
            out.text += d.text
            out.finish_reason, out.token_ids = d.finish_reason, d.token_ids
        return out

    async def until_disconnect(request: Request) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    async def run_all(request: Request, jobs: list[Job], n: int, s: Sampling, stops: list[str]) -> list[Choice]:
        """Every choice of every prompt, generated together; a disconnect or the timeout cancels them all."""
        work = asyncio.ensure_future(asyncio.gather(*(run_choice(j, j.first_index + k, s, stops)
                                                      for j in jobs for k in range(n))))
        watch = asyncio.ensure_future(until_disconnect(request))
        try:
            done, _ = await asyncio.wait({work, watch}, timeout=request_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (work, watch):
                t.cancel()
            await asyncio.gather(work, watch, return_exceptions=True)
        if work in done:
            return work.result()
        if watch in done:
            request.scope.setdefault("longkit", {})["disconnected"] = True
            raise ApiError(499, "client disconnected")  # nginx's code for it; nobody receives this answer
        raise ApiError(408, f"generation took longer than this server's request timeout of {request_timeout:g} s")

    def kept_tokens(choice: Choice) -> list[int]:
        """The generated tokens that make up the returned text (a stop string may end inside the last ones)."""
        ids = choice.token_ids
        if choice.finish_reason != "stop":
            return ids
        for k in range(len(ids) + 1):
            if len(engine.decode(ids[:k])) >= len(choice.text):
                return ids[:k]
        return ids

    def piece(i: int) -> str:
        return engine.decode([i])

    async def completion_logprobs(job: Job, choice: Choice, top_n: int, echo: bool) -> dict[str, Any]:
        gen = kept_tokens(choice)
        ids = job.prompt_ids + gen
        start = 1 if echo else len(job.prompt_ids)
        scored = await engine.token_logprobs(ids, start, top_n) if len(ids) > start else []
        shown = ids[start - 1:] if echo else gen
        lps: list[float | None] = ([None] if echo else []) + [lp for lp, _ in scored]
        tops: list[dict[str, float] | None] = ([None] if echo else []) + [{piece(t): v for t, v in top} for _, top in scored]
        tokens = [piece(t) for t in shown]
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops if top_n else None,
                "text_offset": offsets}

    async def chat_logprobs(job: Job, choice: Choice, top_n: int) -> dict[str, Any]:
        gen = kept_tokens(choice)
        scored = await engine.token_logprobs(job.prompt_ids + gen, len(job.prompt_ids), top_n) if gen else []

        def entry(t: int, lp: float) -> dict[str, Any]:
            s = piece(t)
            return {"token": s, "logprob": lp, "bytes": list(s.encode("utf-8"))}

        return {"content": [{**entry(t, lp), "top_logprobs": [entry(a, v) for a, v in top]}
                            for t, (lp, top) in zip(gen, scored)], "refusal": None}

    def note(request: Request, prompt_tokens: int, completion_tokens: int) -> None:
        request.scope.setdefault("longkit", {}).update(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def usage(p: int, c: int) -> dict[str, int]:
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    async def respond(request: Request, kind: str, jobs: list[Job], body: Any, max_tokens: int,
                      extra: dict[str, Any] | None = None, stops: list[str] | None = None) -> Any:
        """Generate for every job and answer, as one JSON body or as server-sent events."""
        stops = body.stops() if stops is None else stops
        n, s = body.n, sampling(body, max_tokens, stops)
        prompt_tokens = sum(len(j.prompt_ids) for j in jobs)
        rid = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        echo = kind == "text" and body.echo
        if not body.stream:
            async with admitted(len(jobs) * n, request):
                choices = await run_all(request, jobs, n, s, stops)
            completion_tokens = sum(len(c.token_ids) for c in choices)
            note(request, prompt_tokens, completion_tokens)
            out_choices = []
            for c in choices:
                job = jobs[c.index // n]
                if kind == "chat":
                    lp = await chat_logprobs(job, c, body.top_logprobs or 0) if body.logprobs else None
                    out_choices.append({"index": c.index, "message": {"role": "assistant", "content": c.text},
                                        "logprobs": lp, "finish_reason": c.finish_reason})
                else:
                    lp = await completion_logprobs(job, c, body.logprobs, echo) if body.logprobs is not None else None
                    text = (job.prompt_text + c.text) if echo else c.text
                    out_choices.append({"index": c.index, "text": text, "logprobs": lp,
                                        "finish_reason": c.finish_reason})
            return {"id": rid, "object": "chat.completion" if kind == "chat" else "text_completion",
                    "created": created, "model": model_id, "choices": out_choices,
                    "usage": usage(prompt_tokens, completion_tokens), **(extra or {})}

        if body.logprobs not in (None, False):
            raise ApiError(400, "logprobs: not supported with stream=true on this server", param="logprobs")
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        slots = len(jobs) * n
        # admit now, so a full queue is a 429 rather than an error inside a 200 stream
        gate = admitted(slots, request)
        await gate.__aenter__()
        counts = {"completion": 0}

        def chunk(index: int, d: Delta | None, first: bool, finish: str | None) -> dict[str, Any]:
            if kind == "chat":
                delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
                if d is not None and d.text:
                    delta["content"] = d.text
                ch = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            else:
                ch = {"index": index, "text": d.text if d is not None else "", "logprobs": None, "finish_reason": finish}
            out = {"id": rid, "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
                   "created": created, "model": model_id, "choices": [ch]}
            if include_usage:
                out["usage"] = None
            return out

        async def one(job: Job, index: int, queue: asyncio.Queue[Any]) -> None:
            try:
                if kind == "chat":
                    queue.put_nowait(chunk(index, None, True, None))
                elif echo:
                    queue.put_nowait(chunk(index, Delta(job.prompt_text), False, None))
                async for d in text_deltas(engine, job.prompt_ids, s, stops):
                    if d.finish_reason is not None:
                        counts["completion"] += len(d.token_ids)
                        if d.text:
                            queue.put_nowait(chunk(index, d, False, None))
                        queue.put_nowait(chunk(index, None, False, d.finish_reason))
                    elif d.text:
                        queue.put_nowait(chunk(index, d, False, None))
            except ApiError as exc:
                queue.put_nowait(exc.body())

        async def events() -> AsyncIterator[bytes]:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            tasks = [asyncio.ensure_future(one(j, j.first_index + k, queue)) for j in jobs for k in range(n)]
            waiter = asyncio.ensure_future(asyncio.gather(*tasks))
            deadline = time.monotonic() + request_timeout
            try:
                if extra:
                    first = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model_id,
                             "choices": [], **extra}
                    yield sse(first)
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait({getter, waiter}, timeout=max(0.0, deadline - time.monotonic()),
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        yield sse(getter.result())
                        continue
                    getter.cancel()
                    if waiter in done:
                        while not queue.empty():
                            yield sse(queue.get_nowait())
                        break
                    yield sse(ApiError(408, "generation took longer than this server's request timeout of "
                                            f"{request_timeout:g} s").body())
                    break
                if include_usage:
                    yield sse({"id": rid, "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
                               "created": created, "model": model_id, "choices": [],
                               "usage": usage(prompt_tokens, counts["completion"])})
                yield sse("[DONE]")
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(waiter, *tasks, return_exceptions=True)
                note(request, prompt_tokens, counts["completion"])
                await gate.__aexit__(None, None, None)

        def gone() -> None:
            request.scope.setdefault("longkit", {})["disconnected"] = True

        return EventStream(events(), on_disconnect=gone)

    @app.get("/health")
    async def health() -> Any:
        if not engine.healthy():
            return JSONResponse(status_code=503, content={"status": "generation loop not running"})
        return {"status": "ok", "model": model_id, "running": metrics.running}

    @app.get("/metrics")
    async def metrics_page() -> Any:
        return PlainTextResponse(metrics.render(max_batch), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> Any:
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "longkit",
                                            "max_model_len": engine.max_context}]}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        try:
            body: CompletionBody = parse_body(await read_body(request), CompletionBody)
            check_model(body.model)
            max_tokens = body.max_tokens if body.max_tokens is not None else 16
            check_budget(max_tokens, "max_tokens")
            prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
            if not prompts:
                raise ApiError(400, "prompt: must not be empty", param="prompt")
            jobs = []
            for i, p in enumerate(prompts):
                if not p:
                    raise ApiError(400, "prompt: must not be empty", param="prompt")
                jobs.append(Job(encode(p, "prompt", max_tokens), p, i * body.n))
            if body.echo and body.logprobs is not None and any(len(j.prompt_ids) < 1 for j in jobs):
                raise ApiError(400, "prompt: must not be empty", param="prompt")
            return await respond(request, "text", jobs, body, max_tokens)
        except ApiError as exc:
            return error(exc)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        try:
            body: ChatBody = parse_body(await read_body(request), ChatBody)
            check_model(body.model)
            if body.top_logprobs is not None and not body.logprobs:
                raise ApiError(400, "top_logprobs: needs logprobs=true", param="top_logprobs")
            if body.max_completion_tokens is not None:
                max_tokens, param = body.max_completion_tokens, "max_completion_tokens"
            elif body.max_tokens is not None:
                max_tokens, param = body.max_tokens, "max_tokens"
            else:
                max_tokens, param = min(256, max_tokens_limit), "max_tokens"
            check_budget(max_tokens, param)
            messages = [{"role": m.role, "content": m.text()} for m in body.messages]
            extra, stops = None, body.stops()
            if rag is not None:  # `serve --index`: retrieve, build the ChatQA prompt, cite the chunks
                try:
                    prep = await asyncio.get_running_loop().run_in_executor(
                        None, lambda: rag.prepare(messages, max_new_tokens=max_tokens))
                except LongkitError as exc:
                    raise ApiError(400, str(exc), param="messages") from None
                text = tok.render(prep.request)
                stops += [s for s in prep.request.stop if s and s not in stops]
                extra = {"citations": [h.to_dict() for h in prep.hits]}
            else:
                text = tok.render_messages(messages)
            jobs = [Job(encode(text, "messages", max_tokens), text, 0)]
            return await respond(request, "chat", jobs, body, max_tokens, extra, stops)
        except ApiError as exc:
            return error(exc)

    return _Guard(app, api_key=api_key, max_request_bytes=max_request_bytes, metrics=metrics)


class _Guard:
    """ASGI middleware: bearer-token auth on /v1, the body-size limit, OpenAI-format errors for anything that
    escapes a handler, metrics and one access-log line per request."""

    def __init__(self, app: Any, api_key: str | None, max_request_bytes: int, metrics: Metrics):
        self.app, self.api_key, self.max_request_bytes, self.metrics = app, api_key, max_request_bytes, metrics
        self.state = app.state  # tests and tools reach the engine and metrics through the app

    async def _json(self, send: Any, exc: ApiError) -> None:
        import json

        body = json.dumps(exc.body()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope.get("path", "")
        info: dict[str, Any] = {"status": 500, "started": False}
        scope["longkit"] = {}

        async def send_(message: Any) -> None:
            if message["type"] == "http.response.start":
                info["status"], info["started"] = message["status"], True
            await send(message)

        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            if self.api_key is not None and path.startswith("/v1"):
                auth = headers.get("authorization", "")
                token = auth[7:] if auth.lower().startswith("bearer ") else ""
                if not secrets.compare_digest(token.encode(), self.api_key.encode()):
                    raise ApiError(401, "invalid or missing API key (send 'Authorization: Bearer <key>')")
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_request_bytes:
                raise ApiError(413, f"request body of {length} bytes exceeds the limit of {self.max_request_bytes}")
            await self.app(scope, receive, send_)
        except ApiError as exc:
            await self._json(send_, exc)
        except Exception as exc:  # a bug of this server: answer, log, keep serving
            logging.getLogger("longkit.serve").exception("internal error on %s", path)
            if not info["started"]:
                await self._json(send_, ApiError(500, f"internal error: {exc.__class__.__name__}: {exc}"))
        finally:
            seconds = time.perf_counter() - start
            extra = scope.get("longkit", {})
            endpoint = path if path in ("/v1/completions", "/v1/chat/completions", "/v1/models", "/health",
                                        "/metrics") else "other"
            self.metrics.observe(endpoint, info["status"], seconds, extra.get("prompt_tokens", 0),
                                 extra.get("completion_tokens", 0))
            client = scope.get("client") or ("-", 0)
            access_log.info('%s "%s %s" %s %.3fs prompt_tokens=%s completion_tokens=%s%s', client[0],
                            scope.get("method", "-"), path, info["status"], seconds, extra.get("prompt_tokens", "-"),
                            extra.get("completion_tokens", "-"), " client_disconnected" if extra.get("disconnected")
                            else "")
