"""The response models serialise to OpenAI's wire format: the official client's own types read them back, optional
fields are absent rather than null, and errors have OpenAI's four fields."""

from __future__ import annotations

import json

import openai.types as oa
import openai.types.chat as oac

from longkit.serve.protocol import ApiError
from longkit.serve.streaming import sse
from longkit.serve.wire import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    ChatDelta,
    ChatLogprobs,
    ChatMessage,
    Citation,
    CompletionChoice,
    CompletionChunk,
    CompletionChunkChoice,
    CompletionLogprobs,
    CompletionResponse,
    ErrorResponse,
    Health,
    ModelCard,
    ModelList,
    ResponseHeader,
    TokenLogprob,
    TopLogprob,
    Usage,
)

HEADER = ResponseHeader(id="cmpl-1", created=1700000000, model="tiny").dump()


def test_completion_round_trips_through_the_openai_client_types():
    lp = CompletionLogprobs(
        tokens=["a", "b"], token_logprobs=[-0.1, -0.5], top_logprobs=[{"a": -0.1}, {"b": -0.5}], text_offset=[0, 1]
    )
    resp = CompletionResponse(
        **HEADER,
        choices=[CompletionChoice(index=0, text="ab", logprobs=lp, finish_reason="length")],
        usage=Usage.of(3, 2),
    )
    data = resp.dump()
    assert data["object"] == "text_completion" and data["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
    }
    parsed = oa.Completion.model_validate(data)
    assert parsed.choices[0].logprobs.top_logprobs == [{"a": -0.1}, {"b": -0.5}] and parsed.usage.total_tokens == 5
    # under echo the first prompt token has nothing before it: null, as OpenAI sends (the client's types say float)
    echoed = CompletionLogprobs(tokens=["a"], token_logprobs=[None], top_logprobs=[None], text_offset=[0]).dump()
    assert echoed == {"tokens": ["a"], "token_logprobs": [None], "top_logprobs": [None], "text_offset": [0]}


def test_chat_completion_round_trips_and_cites_only_under_rag():
    top = TopLogprob(token="hi", logprob=-0.1, bytes=[104, 105])
    lp = ChatLogprobs(content=[TokenLogprob(token="hi", logprob=-0.1, bytes=[104, 105], top_logprobs=[top])])
    choice = ChatChoice(index=0, message=ChatMessage(content="hi"), logprobs=lp, finish_reason="stop")
    resp = ChatCompletionResponse(**HEADER, choices=[choice], usage=Usage.of(4, 1))
    data = resp.dump()
    assert "citations" not in data and data["choices"][0]["logprobs"]["refusal"] is None
    parsed = oac.ChatCompletion.model_validate(data)
    assert parsed.choices[0].message.role == "assistant" and parsed.choices[0].logprobs.content[0].bytes == [104, 105]

    chunk = {
        "doc_id": "del",
        "position": 0,
        "start": 0,
        "end": 4,
        "n_tokens": 1,
        "text": "del ",
        "score": 0.9,
        "rank": 0,
    }
    resp.citations = [Citation.model_validate(chunk)]
    assert resp.dump()["citations"] == [chunk]  # every field the index records, the unnamed ones too


def test_stream_chunks_omit_what_was_not_given():
    plain = CompletionChunk(**HEADER, choices=[CompletionChunkChoice(index=0, text="a")]).dump()
    assert "usage" not in plain and plain["choices"][0] == {
        "index": 0,
        "text": "a",
        "logprobs": None,
        "finish_reason": None,
    }
    with_usage = CompletionChunk(**HEADER, choices=[], usage=None).dump()
    assert with_usage["usage"] is None  # include_usage: every chunk but the last says null
    oa.Completion.model_validate(with_usage)  # the client reads completion chunks with its Completion type

    opening = ChatChunkChoice(index=0, delta=ChatDelta(role="assistant", content=""))
    middle = ChatChunkChoice(index=0, delta=ChatDelta(content="x"))
    last = ChatChunkChoice(index=0, delta=ChatDelta(), finish_reason="length")
    deltas = [ChatCompletionChunk(**HEADER, choices=[c]).dump()["choices"][0]["delta"] for c in (opening, middle, last)]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "x"}, {}]
    for c in (opening, middle, last):
        parsed = oac.ChatCompletionChunk.model_validate(ChatCompletionChunk(**HEADER, choices=[c]).dump())
        assert parsed.object == "chat.completion.chunk"


def test_sse_frames_a_model_or_a_bare_string():
    event = sse(CompletionChunk(**HEADER, choices=[CompletionChunkChoice(index=0, text="é")]))
    assert event.startswith(b"data: {") and event.endswith(b"\n\n") and "é".encode() in event  # UTF-8, not \\u
    assert json.loads(event[6:])["choices"][0]["text"] == "é"
    assert sse("[DONE]") == b"data: [DONE]\n\n"


def test_errors_models_and_health():
    exc = ApiError(404, "no such model", param="model")
    assert exc.body() == {
        "error": {"message": "no such model", "type": "not_found_error", "param": "model", "code": 404}
    }
    assert ErrorResponse.model_validate(exc.body()) == exc.response()
    models = ModelList(data=[ModelCard(id="tiny", max_model_len=4096)]).dump()
    assert models == {
        "object": "list",
        "data": [{"id": "tiny", "object": "model", "created": 0, "owned_by": "longkit", "max_model_len": 4096}],
    }
    assert oa.Model.model_validate(models["data"][0]).id == "tiny"
    assert Health(status="generation loop not running").dump() == {"status": "generation loop not running"}
    assert Health(status="ok", model="tiny", running=0).dump() == {"status": "ok", "model": "tiny", "running": 0}
