"""Generation with a local Hugging Face causal LM: batched greedy/sampled decoding, stop strings,
chat templates and middle truncation to the context window.

Prefix reuse (`prefix_reuse=True`, greedy requests only): requests are ordered so that prompts sharing a
prefix (the depths of one NIAH length, several questions about one document) follow each other; each
prompt's prefill KV cache is kept, and the next prompt continues from a copy of it cropped to their
longest common prefix, so only the new tokens are prefilled. Off by default: the answers equal the
no-reuse answers in longkit's tests and benchmark, but a prefill split in two chunks rounds differently
from one full prefill, so a near-tie between two next tokens could in principle flip."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from longkit.backends.base import (
    Completion,
    GenerationRequest,
    ScoreRequest,
    TextTokenizer,
    TokenScores,
    apply_stop,
    fit_request,
    prepare_scores,
)
from longkit.backends.registry import CHAT, GENERATE, LOCAL, SCORE, STREAM, BackendInfo
from longkit.backends.spec import BackendSpec
from longkit.errors import InputError


class HFBackend:
    """A transformers model in this process."""

    name = "hf"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_context: int | None = None,
        batch_size: int = 1,
        model_name: str = "local",
        prefix_reuse: bool = False,
        min_prefix: int = 64,
        score_chunk: int = 1024,
    ):
        self.model = model
        self.hf_tokenizer = tokenizer
        self.tokenizer = TextTokenizer(tokenizer)
        window = max_context or getattr(model.config, "max_position_embeddings", None) or 2048
        self.max_context = int(window)
        self.batch_size = max(1, batch_size)
        self.model_name = model_name
        self.prefix_reuse = prefix_reuse
        self.min_prefix = max(1, min_prefix)  # shorter shared prefixes are not worth a cache copy
        self.reused_tokens = 0  # prompt tokens served from a cached prefix (for benchmarks)
        self.score_chunk = max(1, score_chunk)  # positions projected to the vocabulary at once when scoring
        self._last_prefill: tuple[list[int], Any] = ([], None)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def from_name(cls, name: str, dtype: str = "float32", device: str = "cpu", **kwargs: Any) -> HFBackend:
        """Load a model by bundled name, GGUF path, local directory or hub id."""
        from longkit.models.load import load_model

        model, tok = load_model(name, dtype=dtype, device=device)
        return cls(model, tok, model_name=name, **kwargs)

    def prepare(self, request: GenerationRequest) -> tuple[list[int], bool]:
        """Prompt token ids for a request (template applied, middle-truncated to fit), and whether cut."""
        text, truncated = fit_request(self.tokenizer, request, self.max_context)
        # The chat template already carries the BOS it needs; plain prompts get none added, so the
        # token count the tasks measure is the count the model sees.
        return self.tokenizer.encode(text), truncated

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Generate for each request; prompts of similar length are batched together."""
        prepared = [self.prepare(r) for r in requests]
        if self.prefix_reuse and all(r.temperature <= 0 for r in requests):
            return self._generate_reusing_prefixes(requests, prepared)
        order = sorted(range(len(requests)), key=lambda i: len(prepared[i][0]))
        results: list[Completion | None] = [None] * len(requests)
        i = 0
        while i < len(order):
            # One batch shares decoding settings; split where they differ.
            first = requests[order[i]]
            batch = [order[i]]
            j = i + 1
            while j < len(order) and len(batch) < self.batch_size and _same_settings(requests[order[j]], first):
                batch.append(order[j])
                j += 1
            outs = self._generate_batch([prepared[k][0] for k in batch], first)
            for k, (text, n_new, hit_eos) in zip(batch, outs):
                text, hit_stop = apply_stop(text, requests[k].stop)
                finish = "stop" if (hit_eos or hit_stop or n_new < requests[k].max_new_tokens) else "length"
                results[k] = Completion(
                    text=text,
                    prompt_tokens=len(prepared[k][0]),
                    completion_tokens=n_new,
                    finish_reason=finish,
                    truncated=prepared[k][1],
                )
            i = j
        return [r for r in results if r is not None]

    def _generate_reusing_prefixes(
        self, requests: Sequence[GenerationRequest], prepared: list[tuple[list[int], bool]]
    ) -> list[Completion]:
        """Greedy generation one prompt at a time, each continuing from the cached prefill of the previous
        prompt (cropped to the longest common prefix); prompts are visited in token order so neighbours share most."""
        import copy

        import torch

        device = next(self.model.parameters()).device
        order = sorted(range(len(requests)), key=lambda i: prepared[i][0])
        results: list[Completion | None] = [None] * len(requests)
        # the last prefill of the previous call is kept too, so batches of one still share their prefixes
        prev_ids, prev_cache = self._last_prefill
        for k in order:
            ids = prepared[k][0]
            shared = _common_prefix(prev_ids, ids)
            # the last prompt token is always fed to generate, which needs at least one uncached token
            shared = min(shared, len(ids) - 1, len(prev_ids))
            cache = None
            if prev_cache is not None and shared >= self.min_prefix:
                cache = copy.deepcopy(prev_cache)
                _crop(cache, shared)
            else:
                shared = 0
            with torch.inference_mode():
                if len(ids) - 1 > shared:  # prefill the new part (all but the last token) into the cache
                    from transformers import DynamicCache

                    cache = cache if cache is not None else DynamicCache()
                    chunk = torch.tensor([ids[shared : len(ids) - 1]], dtype=torch.long, device=device)
                    pos = torch.arange(shared, len(ids) - 1, device=device).unsqueeze(0)
                    self.model(
                        input_ids=chunk,
                        use_cache=True,
                        position_ids=pos,
                        cache_position=pos[0],
                        **{self._cache_kwarg(): cache},
                    )
            self.reused_tokens += shared
            prev_ids, prev_cache = ids, cache
            gen_cache = copy.deepcopy(cache) if cache is not None else None
            text, n_new, hit_eos = self._generate_batch([ids], requests[k], past_key_values=gen_cache)[0]
            text, hit_stop = apply_stop(text, requests[k].stop)
            finish = "stop" if (hit_eos or hit_stop or n_new < requests[k].max_new_tokens) else "length"
            results[k] = Completion(
                text=text,
                prompt_tokens=len(ids),
                completion_tokens=n_new,
                finish_reason=finish,
                truncated=prepared[k][1],
            )
        self._last_prefill = (prev_ids, prev_cache)
        return [r for r in results if r is not None]

    def eos_token_ids(self) -> set[int]:
        """Token ids that end a generation (the generation config's EOS ids and the tokenizer's)."""
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        if self.hf_tokenizer.eos_token_id is not None:
            ids.add(self.hf_tokenizer.eos_token_id)
        return ids

    def generate_ids(
        self, prompt_ids: list[int], max_new_tokens: int, temperature: float, seed: int | None
    ) -> tuple[list[int], bool]:
        """One sampled generation with `model.generate`, seeded so that it is reproducible; (new ids, hit EOS)."""
        import torch

        device = next(self.model.parameters()).device
        if seed is not None:
            torch.manual_seed(seed)
        kwargs: dict[str, Any] = {"do_sample": True, "temperature": temperature, "top_k": None, "top_p": None}
        if temperature <= 0:
            kwargs = {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=torch.tensor([prompt_ids], device=device),
                max_new_tokens=max_new_tokens,
                pad_token_id=self.hf_tokenizer.pad_token_id,
                **kwargs,
            )
        eos = self.eos_token_ids()
        new: list[int] = []
        for t in out[0, len(prompt_ids) :].tolist():
            if t in eos:
                return new, True
            new.append(t)
        return new, False

    def token_logprobs(self, ids: list[int], start: int, top_n: int = 0) -> list[tuple[float, list[tuple[int, float]]]]:
        """Log-probability of each token ids[start:] given the tokens before it, with the top_n most likely tokens at
        that position; one forward pass, projected to the vocabulary score_chunk positions at a time (raw model
        distribution, before temperature)."""
        import torch

        if start < 1:
            raise ValueError("the first token has no log-probability (nothing precedes it)")
        out: list[tuple[float, list[tuple[int, float]]]] = []
        with torch.inference_mode():
            hidden = self._hidden_states([ids])[0]
            for logp, targets in self._logprob_chunks(hidden, ids, start):
                chosen = logp.gather(1, targets.unsqueeze(1)).squeeze(1).tolist()
                tops: list[list[tuple[int, float]]] = [[] for _ in chosen]
                if top_n > 0:
                    values, indices = logp.topk(top_n, dim=-1)
                    tops = [list(zip(i, v)) for i, v in zip(indices.tolist(), values.tolist())]
                out.extend(zip(chosen, tops))
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        """Per-token log-probabilities of each continuation (see ScoreRequest), exact: requests of similar length
        share a forward pass (right-padded, batch_size at a time), and the vocabulary projection runs score_chunk
        positions at a time, so a long window never holds a sequence-by-vocabulary tensor."""
        import torch

        prepared = prepare_scores(self.tokenizer, requests, self.max_context)
        self._check_vocab(prepared)
        order = sorted(range(len(prepared)), key=lambda i: len(prepared[i][0]))
        results: dict[int, TokenScores] = {}
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                batch = order[b : b + self.batch_size]
                hidden = self._hidden_states([prepared[i][0] for i in batch])
                for row, i in enumerate(batch):
                    ids, n_ctx = prepared[i]
                    logprobs = [
                        lp
                        for logp, targets in self._logprob_chunks(hidden[row], ids, n_ctx)
                        for lp in logp.gather(1, targets.unsqueeze(1)).squeeze(1).tolist()
                    ]
                    results[i] = TokenScores(ids[n_ctx:], logprobs, n_ctx)
        return [results[i] for i in range(len(prepared))]

    def _check_vocab(self, prepared: list[tuple[list[int], int]]) -> None:
        """Refuse a token id the model's embedding does not have (it would fail deep inside the forward pass)."""
        vocab = int(self.model.get_input_embeddings().weight.shape[0])
        for i, (ids, _) in enumerate(prepared):
            bad = next((t for t in ids if not 0 <= t < vocab), None)
            if bad is not None:
                raise InputError(
                    f"score request {i}: token id {bad} is outside this model's vocabulary (0 to {vocab - 1})"
                )

    def _hidden_states(self, rows: list[list[int]]) -> Any:
        """The last hidden states (batch, longest row, hidden) of token rows, right-padded: the positions of each row
        are 0..len-1, as they would be alone, and padding follows every real token, so no real token attends to it."""
        import torch

        device = next(self.model.parameters()).device
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.hf_tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, ids in enumerate(rows):
            input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[r, : len(ids)] = 1
        mask = attention.to(device) if any(len(r) < width for r in rows) else None
        out = self.model.base_model(input_ids=input_ids.to(device), attention_mask=mask, use_cache=False)
        return out[0]

    def _logprob_chunks(self, hidden: Any, ids: list[int], start: int) -> Iterator[tuple[Any, Any]]:
        """(log-softmax over the vocabulary, the tokens that came next) for the positions predicting ids[start:],
        score_chunk positions at a time."""
        import torch

        for a in range(start - 1, len(ids) - 1, self.score_chunk):
            b = min(a + self.score_chunk, len(ids) - 1)
            logits = self._logits(hidden[a:b])
            targets = torch.tensor(ids[a + 1 : b + 1], dtype=torch.long, device=logits.device)
            yield torch.log_softmax(logits.float(), dim=-1), targets

    def _logits(self, hidden: Any) -> Any:
        """The model's output head on hidden states, with the logit scaling some architectures apply after it
        (Gemma's final soft-capping, Cohere's logit_scale, Granite's logits_scaling), as their forward does."""
        import torch

        logits = self.model.get_output_embeddings()(hidden)
        config = self.model.config
        cap = getattr(config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        if getattr(config, "logit_scale", None):
            logits = logits * config.logit_scale
        if getattr(config, "logits_scaling", None):
            logits = logits / config.logits_scaling
        return logits

    def _cache_kwarg(self) -> str:
        """The name transformers gives the KV-cache argument: `cache` from 5.x (where `past_key_values` is
        deprecated, to be removed from forward in 5.40), `past_key_values` before."""
        import inspect

        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def _generate_batch(
        self, batch_ids: list[list[int]], req: GenerationRequest, past_key_values: Any = None
    ) -> list[tuple[str, int, bool]]:
        import torch

        device = next(self.model.parameters()).device
        width = max(len(x) for x in batch_ids)
        pad = self.hf_tokenizer.pad_token_id
        input_ids = torch.full((len(batch_ids), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch_ids), width), dtype=torch.long)
        for r, ids in enumerate(batch_ids):  # left padding so every row ends at the same column
            input_ids[r, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[r, width - len(ids) :] = 1
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": req.max_new_tokens,
            "pad_token_id": pad,
            "do_sample": req.temperature > 0,
        }
        if req.temperature > 0:
            gen_kwargs["temperature"] = req.temperature
            if req.seed is not None:
                torch.manual_seed(req.seed)
        else:
            # Greedy: clear sampling defaults a generation_config may carry, so nothing warns or samples.
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        if req.stop:
            gen_kwargs["stop_strings"] = list(req.stop)
            gen_kwargs["tokenizer"] = self.hf_tokenizer
        if past_key_values is not None:
            gen_kwargs[self._cache_kwarg()] = past_key_values
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device), **gen_kwargs)
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        eos_ids.add(self.hf_tokenizer.eos_token_id)
        results = []
        for row in out[:, width:].tolist():
            new: list[int] = []
            hit_eos = False
            for t in row:
                if t in eos_ids:
                    hit_eos = True
                    break
                new.append(t)
            text = self.hf_tokenizer.decode(new, skip_special_tokens=True)
            results.append((text, len(new), hit_eos))
        return results


def _same_settings(a: GenerationRequest, b: GenerationRequest) -> bool:
    def key(r: GenerationRequest) -> tuple[int, float, tuple[str, ...], int | None]:
        return r.max_new_tokens, r.temperature, tuple(r.stop), r.seed

    return key(a) == key(b)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _crop(cache: Any, keep: int) -> None:
    """Cut a DynamicCache to its first `keep` positions (a negative crop removes tokens in every version)."""
    extra = cache.get_seq_length() - keep
    if extra > 0:
        cache.crop(-extra)


# --- what the OpenAI-compatible server (longkit.serve) needs from a local model ---------------------------------

# transformers' continuous batching samples with one setting for the whole batch (do_sample), so the server always
# samples and passes each request's temperature to the per-request temperature processor; a greedy request gets
# this temperature, at which the softmax is one-hot on the argmax unless two logits tie to within ~1e-4.
GREEDY_TEMPERATURE = 1e-6


def start_continuous_batching(
    backend: HFBackend,
    max_batch: int = 16,
    kv_cache_tokens: int = 32768,
    max_batch_tokens: int = 512,
    page_size: int = 256,
) -> Any:
    """Start transformers' ContinuousBatchingManager on the backend's model, sized explicitly.

    The sizes are explicit because on CPU transformers would otherwise give the KV cache 60% of the machine's RAM.
    Per-request temperature is on (see GREEDY_TEMPERATURE); the caller owns the returned manager and stops it."""
    from transformers import ContinuousBatchingConfig, GenerationConfig

    eos = sorted(backend.eos_token_ids())
    gen = GenerationConfig(
        do_sample=True,
        temperature=0.5,
        top_k=None,
        top_p=None,
        eos_token_id=eos,
        pad_token_id=backend.hf_tokenizer.pad_token_id,
    )
    cfg = ContinuousBatchingConfig(
        page_size=page_size,
        num_blocks=max(1, -(-kv_cache_tokens // page_size)),
        max_batch_tokens=max_batch_tokens,
        max_requests_per_batch=max_batch,
        per_request_processors=True,
        use_async_batching=False,
        use_cuda_graph=False,
        allow_block_sharing=True,
    )
    manager = backend.model.init_continuous_batching(generation_config=gen, continuous_batching_config=cfg)
    manager.start()
    return manager


def _from_spec(spec: BackendSpec, **extra: Any) -> HFBackend:
    from longkit.models.defaults import DEFAULT_GENERATOR

    extra.setdefault("prefix_reuse", bool(spec.prefix_reuse))
    return HFBackend.from_name(
        spec.model or DEFAULT_GENERATOR, max_context=spec.max_context, batch_size=spec.batch_size, **extra
    )


BACKEND = BackendInfo(
    "hf",
    "a transformers model in this process (batched; continuous batching under serve)",
    frozenset({GENERATE, CHAT, SCORE, STREAM, LOCAL}),
    _from_spec,
)
