"""An OpenAI-compatible HTTP server (FastAPI) over any longkit backend: /v1/models, /v1/completions,
/v1/chat/completions, with optional bearer-token auth and request limits."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel, Field

from longkit.backends.base import Backend, GenerationRequest


class CompletionBody(BaseModel):
    """Body of POST /v1/completions."""

    model: str | None = None
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    stop: str | list[str] | None = None
    n: int = 1
    stream: bool = False
    seed: int | None = None

class Message(BaseModel):
    """One chat message."""

    role: str
    content: str

class ChatBody(BaseModel):
    """Body of POST /v1/chat/completions."""

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    stop: str | list[str] | None = None
    n: int = 1
    stream: bool = False
    seed: int | None = None


def _error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "param": param,
                                                               "code": status}})


def create_app(
    backend: Backend,
    model_id: str,
    api_key: str | None = None,
    max_tokens_limit: int = 1024,
    max_request_bytes: int = 8 * 1024 * 1024,
    rag: Any = None,
) -> Any:
    """Build the FastAPI app; generation is serialised with a lock (one model, one forward at a time).

    With `rag` (a longkit.rag.pipeline.RagPipeline) the chat endpoint retrieves before generating and
    returns the chunks used as `citations`."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError

    app = FastAPI(title="longkit OpenAI-compatible server")
    lock = threading.Lock()
    app.state.backend = backend
    app.state.model_id = model_id

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Any:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if p != "body")
        return _error(400, f"{loc or 'body'}: {err['msg']}", param=loc or None)

    @app.middleware("http")
    async def _guard(request: Request, call_next: Any) -> Any:
        if api_key is not None:
            auth = request.headers.get("authorization", "")
            token = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not secrets.compare_digest(token, api_key):
                return _error(401, "invalid or missing API key (send 'Authorization: Bearer <key>')",
                              kind="authentication_error")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_request_bytes:
            return _error(413, f"request body of {length} bytes exceeds the limit of {max_request_bytes}")
        try:
            return await call_next(request)
        except Exception as exc:  # never let one request take the server down
            return _error(500, f"internal error: {exc.__class__.__name__}: {exc}", kind="server_error")

    def check_common(model: str | None, n: int, stream: bool, max_tokens: int) -> Any:
        if model is not None and model != model_id:
            return _error(404, f"model '{model}' is not served here (this server serves '{model_id}')",
                          kind="not_found_error", param="model")
        if n != 1:
            return _error(400, "only n=1 is supported", param="n")
        if stream:
            return _error(400, "streaming is not supported by this server", param="stream")
        if max_tokens > max_tokens_limit:
            return _error(400, f"max_tokens={max_tokens} exceeds this server's limit of {max_tokens_limit}",
                          param="max_tokens")
        return None

    def run(req: GenerationRequest) -> Any:
        tok = backend.tokenizer
        n_prompt = tok.count(tok.render(req))
        if n_prompt + req.max_new_tokens > backend.max_context:
            return _error(400, f"prompt has {n_prompt} tokens; with max_tokens={req.max_new_tokens} it exceeds "
                               f"the model's context of {backend.max_context} tokens", param="prompt")
        with lock:
            return backend.generate([req])[0]

    def usage(c: Any) -> dict[str, int]:
        return {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                "total_tokens": c.prompt_tokens + c.completion_tokens}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "longkit",
                                            "max_model_len": backend.max_context}]}

    @app.post("/v1/completions")
    def completions(body: CompletionBody) -> Any:
        bad = check_common(body.model, body.n, body.stream, body.max_tokens)
        if bad is not None:
            return bad
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            return _error(400, "prompt must not be empty", param="prompt")
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        choices, total = [], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        for i, p in enumerate(prompts):
            c = run(GenerationRequest(prompt=p, max_new_tokens=body.max_tokens, stop=stop,
                                      temperature=body.temperature, seed=body.seed))
            if not hasattr(c, "text"):
                return c
            choices.append({"index": i, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None})
            total = {k: total[k] + v for k, v in usage(c).items()}
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": model_id, "choices": choices, "usage": total}

    @app.post("/v1/chat/completions")
    def chat(body: ChatBody) -> Any:
        max_tokens = body.max_completion_tokens or body.max_tokens or 256
        bad = check_common(body.model, body.n, body.stream, max_tokens)
        if bad is not None:
            return bad
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        messages = [m.model_dump() for m in body.messages]
        req = GenerationRequest(messages=messages, max_new_tokens=max_tokens, stop=stop,
                                temperature=body.temperature, seed=body.seed)
        citations = None
        if rag is not None:  # RAG (`serve --index`): retrieve, build the ChatQA prompt, cite the chunks
            from longkit.errors import LongkitError

            try:
                with lock:
                    prep = rag.prepare(messages, max_new_tokens=max_tokens)
            except LongkitError as exc:
                return _error(400, str(exc), param="messages")
            req = prep.request
            req.stop, req.temperature, req.seed = req.stop + stop, body.temperature, body.seed
            citations = [h.to_dict() for h in prep.hits]
        c = run(req)
        if not hasattr(c, "text"):
            return c
        out = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
               "model": model_id, "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text.strip() if rag is not None else c.text},
                                               "finish_reason": c.finish_reason}], "usage": usage(c)}
        if citations is not None:
            out["citations"] = citations
        return out

    return app
