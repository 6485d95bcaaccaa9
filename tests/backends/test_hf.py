import pytest

from longkit.backends.base import GenerationRequest, TextTokenizer, apply_stop, fit_request


def test_batched_generation_equals_one_by_one(tiny_backend):
    reqs = [GenerationRequest(prompt="The quick brown fox " * k, max_new_tokens=6) for k in (1, 7, 3)]
    reqs.append(GenerationRequest(messages=[{"role": "user", "content": "Say hi."}], max_new_tokens=5))
    batched = tiny_backend.generate(reqs)
    single = [tiny_backend.generate([r])[0] for r in reqs]
    assert [c.text for c in batched] == [c.text for c in single]
    assert all(c.completion_tokens <= r.max_new_tokens for c, r in zip(batched, reqs))
    assert batched[0].prompt_tokens == tiny_backend.tokenizer.count("The quick brown fox ")


def test_stop_strings_cut_the_answer(tiny_backend):
    free = tiny_backend.generate([GenerationRequest(prompt="one two three", max_new_tokens=12)])[0].text
    assert len(free) > 2
    stop = free[len(free) // 2 : len(free) // 2 + 2]
    cut = tiny_backend.generate([GenerationRequest(prompt="one two three", max_new_tokens=12, stop=[stop])])[0]
    assert stop not in cut.text
    assert free.startswith(cut.text)


def test_middle_truncation_keeps_head_and_tail(smol_tokenizer):
    tok = TextTokenizer(smol_tokenizer)
    text = "START " + "filler words here. " * 400 + " END"
    cut, was_cut = tok.truncate_middle(text, 100)
    assert was_cut and cut.startswith("START") and cut.endswith("END") and tok.count(cut) <= 102
    req = GenerationRequest(messages=[{"role": "user", "content": text}], max_new_tokens=20)
    fitted, truncated = fit_request(tok, req, max_context=300)
    assert truncated and tok.count(fitted) <= 280
    assert fitted.rstrip().endswith("assistant")  # the generation prompt of the chat template survives


def test_over_long_prompt_is_truncated_not_failed(tiny_backend):
    long = "word " * (tiny_backend.max_context + 500)
    out = tiny_backend.generate([GenerationRequest(prompt=long, max_new_tokens=4)])[0]
    assert out.truncated and out.prompt_tokens <= tiny_backend.max_context - 4


def test_apply_stop_and_request_validation():
    assert apply_stop("abc\nUser: x", ["\nUser:"]) == ("abc", True)
    assert apply_stop("abc", ["zz"]) == ("abc", False)
    with pytest.raises(ValueError):
        GenerationRequest()
    with pytest.raises(ValueError):
        GenerationRequest(prompt="x", messages=[{"role": "user", "content": "y"}])
