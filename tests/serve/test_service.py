"""The server's parts without HTTP, over a real tiny Llama: the one generation path (the JSON answer and the stream
see the same text), the timeout, the service's checks, admission, engine recognition and the shared vLLM pieces."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncGenerator, Sequence

import pytest

from longkit.backends.base import Completion, GenerationRequest, TextTokenizer
from longkit.errors import LongkitError
from longkit.serve.admission import Admission
from longkit.serve.batching import HFEngine, Sampling, ServingEngine, Step, TokenLogprobs, make_engine
from longkit.serve.generation import Failed, Job, Plan, Progress, Started, collect, generate
from longkit.serve.metrics import Metrics
from longkit.serve.protocol import ApiError, CompletionBody
from longkit.serve.service import CompletionService
from longkit.serve.settings import ServerSettings


@pytest.fixture(scope="module")
def engine(tiny_backend):
    eng = HFEngine(tiny_backend, max_batch=4, kv_cache_tokens=4096)
    eng.start()
    yield eng
    eng.stop()


def plan_of(engine: HFEngine, prompts: Sequence[str], n: int, max_tokens: int, stops: Sequence[str] = ()) -> Plan:
    jobs = [Job(engine.tokenizer.encode(p), p, i * n) for i, p in enumerate(prompts)]
    return Plan(jobs, n, Sampling(max_new_tokens=max_tokens), list(stops))


async def streamed(engine: HFEngine, plan: Plan) -> dict[int, str]:
    texts: dict[int, str] = {}
    async with contextlib.aclosing(generate(engine, plan, timeout=60)) as events:
        async for event in events:
            if isinstance(event, Started):
                texts[event.index] = ""
            elif isinstance(event, Progress):
                texts[event.index] += event.delta.text
            else:
                raise event.error
    return texts


def test_json_and_stream_share_one_generation_path(engine):
    plan = plan_of(engine, ["alpha beta", "gamma delta epsilon"], n=2, max_tokens=6)
    choices = asyncio.run(collect(engine, plan, timeout=60))
    assert [c.index for c in choices] == [0, 1, 2, 3] and [c.job.first_index for c in choices] == [0, 0, 2, 2]
    assert all(c.finish_reason in ("stop", "length") and len(c.token_ids) <= 6 for c in choices)
    assert choices[0].text == choices[1].text  # greedy: n choices of one prompt agree
    assert asyncio.run(streamed(engine, plan)) == {c.index: c.text for c in choices}


def test_a_stop_string_ends_the_choice_in_both_paths(engine):
    full = asyncio.run(collect(engine, plan_of(engine, ["Once upon a time"], 1, 12), timeout=60))[0].text
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert stop.strip(), full
    plan = plan_of(engine, ["Once upon a time"], 1, 12, stops=[stop])
    cut = asyncio.run(collect(engine, plan, timeout=60))[0]
    assert cut.text == full[: full.index(stop)] and cut.finish_reason == "stop"
    assert asyncio.run(streamed(engine, plan)) == {0: cut.text}


def test_the_timeout_is_a_408_and_the_engine_is_free_after(engine):
    with pytest.raises(ApiError) as err:
        asyncio.run(collect(engine, plan_of(engine, ["go on"], 2, 3000), timeout=0.2))
    assert err.value.status == 408 and "0.2 s" in err.value.message
    again = asyncio.run(collect(engine, plan_of(engine, ["go on"], 1, 3), timeout=60))
    assert len(again[0].token_ids) == 3


def test_a_failed_choice_fails_the_json_answer(engine, tiny_backend):
    stopped = HFEngine(tiny_backend)  # never started: the engine refuses with a 503
    events = asyncio.run(_all_events(stopped, plan_of(engine, ["hi"], 1, 2)))
    assert isinstance(events[0], Started) and isinstance(events[1], Failed) and events[1].error.status == 503
    with pytest.raises(ApiError, match="not running"):
        asyncio.run(collect(stopped, plan_of(engine, ["hi"], 1, 2), timeout=5))


async def _all_events(engine: ServingEngine, plan: Plan) -> list[object]:
    async with contextlib.aclosing(generate(engine, plan, timeout=5)) as events:
        return [e async for e in events]


def test_service_checks_model_budget_and_window(engine):
    svc = CompletionService(engine, ServerSettings(model_id="tiny", max_tokens_limit=100), Admission(Metrics(), 1, 0))
    svc.check_model(None)
    svc.check_model("tiny")
    with pytest.raises(ApiError) as err:
        svc.check_model("other")
    assert (err.value.status, err.value.param) == (404, "model")
    with pytest.raises(ApiError) as err:
        svc.check_budget(101, "max_completion_tokens")
    assert (err.value.status, err.value.param) == (400, "max_completion_tokens")
    with pytest.raises(ApiError, match="must not be empty"):
        svc.encode("", "prompt", 5)
    with pytest.raises(ApiError, match=r"with 100 tokens to generate .* the 4096-token context"):
        svc.encode("word " * 4000, "prompt", 100)
    plan = svc.plan([Job([1, 2], "x", 0)], CompletionBody(prompt="x", n=3, temperature=0.5, seed=7), 9, [])
    assert plan.slots == 3 and plan.sampling == Sampling(9, 0.5, 7, incremental=False)


def test_admission_is_bounded_and_tickets_give_slots_back():
    metrics = Metrics()
    admission = Admission(metrics, max_batch=2, max_queue=1)
    first = admission.admit(2)
    with admission.admit(1):
        assert metrics.running == 3
        with pytest.raises(ApiError) as err:
            admission.admit(1)
        assert err.value.status == 429 and err.value.headers == {"Retry-After": "1"}
    first.release()
    first.release()  # twice is harmless
    assert metrics.running == 0


class EchoBackend:
    """A backend that is neither HFBackend nor a serving engine (it only has generate)."""

    name = "echo"
    max_context = 64

    def __init__(self, tokenizer: TextTokenizer):
        self.tokenizer = tokenizer

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return [Completion(r.prompt or "") for r in requests]


class LooksLikeAnEngine(EchoBackend):
    """Has stream and start, which were once enough to be taken for an engine; it is not a ServingEngine."""

    def start(self) -> None: ...

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncGenerator[Step, None]:
        yield Step([])


class CountingEngine(ServingEngine):
    """A minimal serving engine of its own: counts up from the last prompt token."""

    name = "count"
    max_context = 64
    max_batch = 1

    def __init__(self, tokenizer: TextTokenizer):
        self.tokenizer = tokenizer

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def healthy(self) -> bool:
        return True

    def decode(self, ids: list[int]) -> str:
        return " ".join(map(str, ids))

    async def token_logprobs(self, ids: list[int], start: int, top_n: int) -> TokenLogprobs:
        return [(0.0, []) for _ in ids[start:]]

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncGenerator[Step, None]:
        ids = [prompt_ids[-1] + k + 1 for k in range(sampling.max_new_tokens)]
        for k in range(1, len(ids) + 1):
            yield Step(ids[:k], k == len(ids))


def test_engines_are_recognised_by_type(tiny_backend):
    assert isinstance(make_engine(tiny_backend, max_batch=3), HFEngine)
    mine = CountingEngine(tiny_backend.tokenizer)
    assert make_engine(mine) is mine
    for other in (EchoBackend(tiny_backend.tokenizer), LooksLikeAnEngine(tiny_backend.tokenizer)):
        with pytest.raises(LongkitError, match=f"not '{other.name}'"):
            make_engine(other)
    choices = asyncio.run(collect(mine, Plan([Job([5], "5", 0)], 1, Sampling(3), []), timeout=5))
    assert choices[0].text == "6 7 8" and choices[0].finish_reason == "length"


def test_both_vllm_entry_points_share_the_guard_and_the_engine_arguments(monkeypatch):
    from longkit.backends.vllm import VLLMBackend, engine_args, import_vllm
    from longkit.models.load import resolve
    from longkit.serve.batching import VLLMEngine

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError, as when not installed
    for build, who in (
        (lambda: import_vllm("this test"), "this test"),
        (lambda: VLLMBackend("smollm2-135m-instruct"), "the vllm backend"),
        (lambda: VLLMEngine("smollm2-135m-instruct"), "--backend vllm"),
    ):
        with pytest.raises(LongkitError) as err:
            build()
        assert str(err.value) == f"{who} needs vLLM: pip install 'longkit[vllm]' (Linux + CUDA GPU)"
    args = engine_args("smollm2-135m-instruct", 2048, tensor_parallel_size=2)
    assert args == {
        "model": resolve("smollm2-135m-instruct").path,
        "max_model_len": 2048,
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.9,
        "enable_prefix_caching": True,
    }


def test_each_seeded_choice_gets_its_own_seed():
    jobs = [Job([1], "a", 0), Job([2], "b", 3)]
    plan = Plan(jobs, 3, Sampling(4, 1.0, seed=7), [])
    assert [(i, plan.sampling_of(i, j).seed) for i, j in plan.choices()] == [
        (0, 7),
        (1, 8),
        (2, 9),
        (3, 7),
        (4, 8),
        (5, 9),
    ]
    assert plan.sampling_of(0, jobs[0]) is plan.sampling  # choice 0 is the request's own seed
    top = Plan(jobs[:1], 2, Sampling(4, 1.0, seed=2**64 - 1), [])
    assert top.sampling_of(1, jobs[0]).seed == 0  # past torch's largest seed: wraps round to 0
    unseeded = Plan(jobs[:1], 2, Sampling(4, 1.0), [])
    assert unseeded.sampling_of(1, jobs[0]).seed is None


def test_token_prompts_are_checked_against_the_vocabulary(engine):
    svc = CompletionService(engine, ServerSettings(model_id="tiny"), Admission(Metrics(), 1, 0))
    vocab = engine.vocab_size
    assert vocab == len(engine.backend.hf_tokenizer)
    assert svc.check_tokens([0, vocab - 1], "prompt", 5) == [0, vocab - 1]
    for bad in ([vocab], [-1], [3, 2**40]):
        with pytest.raises(ApiError, match="outside this model's vocabulary") as err:
            svc.check_tokens(bad, "prompt", 5)
        assert err.value.param == "prompt"
    with pytest.raises(ApiError, match="4096-token context"):
        svc.check_tokens([1] * 4000, "prompt", 100)
