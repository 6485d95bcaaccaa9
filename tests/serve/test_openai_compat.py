"""What OpenAI-compatible clients send, on a live server over a tiny random Llama: n seeded samples (choice i seeded
seed + i, as vLLM does), token-id prompts on /v1/completions (lm-evaluation-harness sends them), and vLLM's chat
template flags add_generation_prompt and continue_final_message."""

from __future__ import annotations

import httpx
import openai
import pytest

from longkit.backends.base import TextTokenizer
from longkit.serve.app import create_app
from longkit.serve.chat import render_chat
from longkit.serve.protocol import ChatBody

QA = [{"role": "user", "content": "What colour is the sky?"}, {"role": "assistant", "content": "The sky is"}]
CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}


@pytest.fixture(scope="module")
def server(tiny_backend, live_server):
    with live_server(create_app(tiny_backend, model_id="tiny", max_tokens_limit=64, kv_cache_tokens=4096)) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="none", max_retries=0, timeout=120)


def _post(server, path, body):
    return httpx.post(server + path, json=body, timeout=60)


def test_n_seeded_samples_differ_and_the_request_repeats(client):
    def completions(seed, n):
        return [
            c.text
            for c in client.completions.create(
                model="tiny", prompt="Pick a word:", max_tokens=8, n=n, temperature=1.0, seed=seed
            ).choices
        ]

    first = completions(7, 5)
    assert len(set(first)) > 1, first  # five samples, not one sample five times
    assert completions(7, 5) == first  # reproducible as a set, in order
    assert completions(9, 1) == first[2:3]  # choice i is seeded seed + i

    def chat():
        r = client.chat.completions.create(model="tiny", messages=QA[:1], max_tokens=8, n=5, temperature=1.0, seed=7)
        return [c.message.content for c in r.choices]

    texts = chat()
    assert len(set(texts)) > 1 and chat() == texts


def test_token_id_prompts_in_every_form(client, tiny_backend):
    tok = tiny_backend.tokenizer
    texts = ["The colour of the sky is", "Once upon a time"]
    ids = [tok.encode(t) for t in texts]
    by_text = client.completions.create(model="tiny", prompt=texts, max_tokens=5, temperature=0)
    one = client.completions.create(model="tiny", prompt=ids[0], max_tokens=5, temperature=0)
    several = client.completions.create(model="tiny", prompt=ids, max_tokens=5, temperature=0)
    assert one.choices[0].text == by_text.choices[0].text
    assert [c.text for c in several.choices] == [c.text for c in by_text.choices]
    assert several.usage == by_text.usage
    echoed = client.completions.create(model="tiny", prompt=[ids[1]], max_tokens=3, echo=True, temperature=0)
    text = echoed.choices[0].text  # the prompt decoded, then the 3 greedy tokens (the start of the 5 above)
    assert text.startswith(texts[1]) and by_text.choices[1].text.startswith(text[len(texts[1]) :])


def test_lm_eval_loglikelihood_request_shape(server, tiny_backend):
    """lm-evaluation-harness scores a continuation with this body: token ids, echo, one token, logprobs 1."""
    ids = tiny_backend.tokenizer.encode("The capital of France is Paris")
    r = _post(
        server,
        "/v1/completions",
        {"prompt": [ids], "max_tokens": 1, "temperature": 0, "logprobs": 1, "seed": 1234, "echo": True},
    )
    assert r.status_code == 200, r.text
    lp = r.json()["choices"][0]["logprobs"]
    assert len(lp["token_logprobs"]) == len(ids) + 1 and lp["token_logprobs"][0] is None
    assert all(len(top) == 1 for top in lp["top_logprobs"][1:])


@pytest.mark.parametrize(
    "prompt,says",
    [
        ([[5, 10**7]], "token id 10000000 is outside"),
        ([-1, 5], "token id -1 is outside"),
        ([[]], "must not be empty"),
        ([1.5, 2], "list of token ids"),
        ([True], "list of token ids"),
        (["a", 1], "list of token ids"),
        ([[1, "a"]], "list of token ids"),
    ],
)
def test_bad_token_prompts_are_400s_naming_prompt(server, prompt, says):
    r = _post(server, "/v1/completions", {"prompt": prompt, "max_tokens": 2})
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "prompt" and says in err["message"], err


def test_continue_final_message_continues_the_assistant_text(server, client, tiny_backend):
    hf = tiny_backend.hf_tokenizer
    open_prompt = hf.apply_chat_template(QA, tokenize=False, continue_final_message=True)
    assert open_prompt.endswith("The sky is")  # the message is left open, no new turn
    want = client.completions.create(model="tiny", prompt=open_prompt, max_tokens=6, temperature=0)
    got = client.chat.completions.create(model="tiny", messages=QA, max_tokens=6, temperature=0, extra_body=CONTINUE)
    assert got.choices[0].message.content == want.choices[0].text
    assert got.usage.prompt_tokens == want.usage.prompt_tokens
    streamed = client.chat.completions.create(
        model="tiny", messages=QA, max_tokens=6, temperature=0, stream=True, extra_body=CONTINUE
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == want.choices[0].text
    new_turn = client.chat.completions.create(model="tiny", messages=QA, max_tokens=6, temperature=0)
    assert new_turn.usage.prompt_tokens > got.usage.prompt_tokens  # by default: message closed, a new turn opened


def test_add_generation_prompt_false_leaves_no_turn_open(client, tiny_backend):
    hf = tiny_backend.hf_tokenizer
    closed = hf.apply_chat_template(QA[:1], tokenize=False, add_generation_prompt=False)
    want = client.completions.create(model="tiny", prompt=closed, max_tokens=4, temperature=0)
    got = client.chat.completions.create(
        model="tiny", messages=QA[:1], max_tokens=4, temperature=0, extra_body={"add_generation_prompt": False}
    )
    assert (got.choices[0].message.content, got.usage.prompt_tokens) == (want.choices[0].text, want.usage.prompt_tokens)


@pytest.mark.parametrize(
    "messages,flags,says",
    [
        (QA, {"continue_final_message": True, "add_generation_prompt": True}, "add_generation_prompt"),
        (QA, {"continue_final_message": True}, "add_generation_prompt: false"),  # the default is true
        (QA[:1], CONTINUE, "must be the assistant's"),
    ],
)
def test_contradictory_template_flags_are_400s(server, messages, flags, says):
    r = _post(server, "/v1/chat/completions", {"messages": messages, "max_tokens": 2, **flags})
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "continue_final_message" and says in err["message"], err


def test_template_flags_without_a_chat_template(trained_tokenizer):
    """A tokenizer without a chat template gets the plain "Role: content" prompt; the flags work on it too."""
    import copy

    hf = copy.deepcopy(trained_tokenizer)
    hf.chat_template = None
    tok = TextTokenizer(hf)
    body = ChatBody(messages=QA, **CONTINUE)
    assert render_chat(tok, QA, body) == "User: What colour is the sky?\n\nAssistant: The sky is"
    closed = ChatBody(messages=QA[:1], add_generation_prompt=False)
    assert render_chat(tok, QA[:1], closed) == "User: What colour is the sky?"
    assert render_chat(tok, QA[:1], ChatBody(messages=QA[:1])) == tok.render_messages(QA[:1])
