"""Embedders: sentence-transformers models (the bundled all-MiniLM-L6-v2 by default) and decoder
embedders in the E5-mistral style (instructed queries, last-token pooling, L2 normalisation).

No embedder truncates silently: a text longer than its limit raises, unless the caller asked for
window pooling (mean of the normalised embeddings of consecutive windows, re-normalised)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from longkit.errors import ConfigError, InputError, LongkitError

DEFAULT_E5_TASK = "Given a question, retrieve passages that answer the question"


class TextTooLong(InputError):
    """A text exceeds the embedder's token limit."""


class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors."""

    name: str
    kind: str
    dim: int
    max_tokens: int  # including the special tokens the model adds
    tokenizer: Any  # a fast Hugging Face tokenizer

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text occupies in the model, special tokens included."""
        ...

    def embed_documents(self, texts: Sequence[str], pool_long: bool = False) -> np.ndarray:
        """(n, dim) float32, unit rows."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, unit rows; queries get the model's query instruction."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the index manifest records to recognise this embedder."""
        ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: np.ndarray = x / np.maximum(norms, 1e-12)
    return unit


def _check(texts: Sequence[str], counts: list[int], limit: int, name: str, what: str) -> None:
    hint = (
        "shorten the question or use fewer history turns"
        if what == "query"
        else "use smaller chunks, on_overflow='split' to re-split, or 'pool' to average windows"
    )
    for i, (t, c) in enumerate(zip(texts, counts)):
        if c > limit:
            preview = t[:60].replace("\n", " ")
            raise TextTooLong(
                f"{what} {i} ('{preview}...') is {c} tokens; embedder '{name}' reads at most {limit} ({hint})"
            )


class _Base(ABC):
    name: str
    kind: str
    dim: int
    max_tokens: int
    tokenizer: Any
    batch_size: int
    n_special: int

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text occupies in the model, special tokens included."""
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) + self.n_special for ids in enc]

    def _windows(self, text: str) -> list[str]:
        """Consecutive pieces of text that each fit the model (cut at token offsets, nothing dropped)."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offs = enc["offset_mapping"]
        step = self.max_tokens - self.n_special
        pieces = []
        for i in range(0, len(offs), step):
            s = offs[i][0]
            e = offs[min(i + step, len(offs)) - 1][1]
            pieces.append(text[s:e])
        return pieces

    def embed_documents(self, texts: Sequence[str], pool_long: bool = False) -> np.ndarray:
        """(n, dim) float32 unit rows; long texts raise, or are window-pooled when pool_long."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        counts = self.token_counts(texts)
        if not pool_long:
            _check(texts, counts, self.max_tokens, self.name, "text")
            return self._encode(texts, counts)
        flat: list[str] = []
        owner: list[int] = []
        for i, (t, c) in enumerate(zip(texts, counts)):
            parts = [t] if c <= self.max_tokens else self._windows(t)
            flat.extend(parts)
            owner.extend([i] * len(parts))
        vecs = self._encode(flat, self.token_counts(flat))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(out, np.asarray(owner), vecs)
        return _normalise(out)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit rows for queries (instruction prefixed where the model wants one)."""
        texts = [self.query_text(t) for t in texts]
        _check(texts, self.token_counts(texts), self.max_tokens, self.name, "query")
        return self._encode(texts, self.token_counts(texts))

    def query_text(self, text: str) -> str:
        """The text the model embeds for a query."""
        return text

    @abstractmethod
    def _encode(self, texts: list[str], counts: list[int]) -> np.ndarray:
        """Embed texts already checked against the token limit: (n, dim) float32 unit rows."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the index manifest records to recognise this embedder."""


class SentenceTransformerEmbedder(_Base):
    """A sentence-transformers model; texts are batched by length."""

    kind = "sentence-transformers"

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        query_prefix: str = "",
        max_tokens: int | None = None,
    ):
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(str(path), device=device)
        except Exception as exc:  # a missing or malformed model directory
            raise LongkitError(f"could not load sentence-transformers model '{path}': {exc}") from None
        self.name = name or str(path)
        self.batch_size = batch_size
        self.tokenizer = self.model.tokenizer
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:  # int(None) failed here before: still a TypeError, now saying what is missing
            raise TypeError(f"sentence-transformers model '{path}' does not report its embedding dimension")
        self.dim = int(dim)
        if max_tokens is not None:
            self.model.max_seq_length = max_tokens
        limit = self.model.max_seq_length
        if limit is None:
            raise TypeError(f"sentence-transformers model '{path}' does not report its maximum sequence length")
        self.max_tokens = int(limit)
        self.n_special = len(self.tokenizer("", add_special_tokens=True)["input_ids"])
        self.query_prefix = query_prefix

    def query_text(self, text: str) -> str:
        """The text the model embeds for a query."""
        return self.query_prefix + text

    def _encode(self, texts: list[str], counts: list[int]) -> np.ndarray:
        # sentence-transformers sorts by length inside encode(); every text was checked to fit.
        vecs = self.model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vecs, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Manifest record."""
        return {
            "name": self.name,
            "kind": self.kind,
            "dim": self.dim,
            "max_tokens": self.max_tokens,
            "query_prefix": self.query_prefix,
        }


class DecoderEmbedder(_Base):
    """A decoder LM used as an embedder, E5-mistral style: queries are `Instruct: {task}\\nQuery: {q}`,
    documents are embedded as they are; an EOS token is appended and its last hidden state, L2
    normalised, is the embedding."""

    kind = "decoder"

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        task: str = DEFAULT_E5_TASK,
        max_tokens: int = 4096,
        batch_size: int = 4,
        device: str = "cpu",
        dtype: str = "float32",
    ):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if not 8 <= max_tokens <= 32768:
            raise ConfigError(f"decoder embedder max_tokens must be in [8, 32768], got {max_tokens}")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
            self.model = AutoModel.from_pretrained(str(path), dtype=getattr(torch, dtype)).to(device).eval()
        except Exception as exc:
            raise LongkitError(f"could not load decoder embedder '{path}': {exc}") from None
        limit = int(getattr(self.model.config, "max_position_embeddings", max_tokens) or max_tokens)
        self.max_tokens = min(max_tokens, limit)
        self.name = name or str(path)
        self.task = task
        self.batch_size = batch_size
        self.device = device
        self.dim = int(self.model.config.hidden_size)
        self.eos_id = self.tokenizer.eos_token_id
        if self.eos_id is None:
            raise ConfigError(f"decoder embedder '{path}' has no EOS token to pool on")
        bos = self.tokenizer.bos_token_id
        self.bos_id = bos if getattr(self.tokenizer, "add_bos_token", bos is not None) and bos is not None else None
        self.n_special = 1 + (self.bos_id is not None)

    def query_text(self, text: str) -> str:
        """E5-mistral query format."""
        return f"Instruct: {self.task}\nQuery: {text}"

    def _encode(self, texts: list[str], counts: list[int]) -> np.ndarray:
        import torch

        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        seqs = [([self.bos_id] if self.bos_id is not None else []) + list(x) + [self.eos_id] for x in ids]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = np.zeros((len(seqs), self.dim), dtype=np.float32)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_id
        for b in range(0, len(order), self.batch_size):
            batch = order[b : b + self.batch_size]
            width = max(len(seqs[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, i in enumerate(batch):  # right padding; the pooled position is each row's last real token
                input_ids[r, : len(seqs[i])] = torch.tensor(seqs[i])
                mask[r, : len(seqs[i])] = 1
            with torch.inference_mode():
                hidden = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
                ).last_hidden_state
            last = mask.sum(dim=1) - 1
            pooled = hidden[torch.arange(len(batch)), last.to(hidden.device)].float().cpu().numpy()
            out[batch] = pooled
        return _normalise(out)

    def describe(self) -> dict[str, Any]:
        """Manifest record."""
        return {"name": self.name, "kind": self.kind, "dim": self.dim, "max_tokens": self.max_tokens, "task": self.task}


def _is_sentence_transformers_dir(p: Path) -> bool:
    return (p / "modules.json").exists() or (p / "sentence_bert_config.json").exists()


def load_embedder(spec: str | None = None, **kwargs: Any) -> _Base:
    """Load an embedder from a bundled name, 'st:PATH', 'decoder:PATH' or a model directory."""
    from longkit.models.defaults import DEFAULT_EMBEDDER, bundled_model_dir, is_bundled

    spec = spec or DEFAULT_EMBEDDER
    if spec.startswith("st:"):
        return SentenceTransformerEmbedder(spec[3:], name=spec, **kwargs)
    if spec.startswith("decoder:"):
        return DecoderEmbedder(spec[8:], name=spec, **kwargs)
    if is_bundled(spec):
        return SentenceTransformerEmbedder(bundled_model_dir(spec), name=spec.lower(), **kwargs)
    p = Path(spec)
    if p.is_dir():
        if _is_sentence_transformers_dir(p):
            return SentenceTransformerEmbedder(p, name=spec, **kwargs)
        cfg = p / "config.json"
        if cfg.exists():
            archs = json.loads(cfg.read_text()).get("architectures") or []
            if any(a.endswith(("ForCausalLM", "Model")) for a in archs):
                return DecoderEmbedder(p, name=spec, **kwargs)
        raise ConfigError(f"embedder '{spec}': a directory without modules.json or a decoder config.json")
    if p.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ConfigError(
            f"--embedder {spec}: not a bundled name ({DEFAULT_EMBEDDER}), a model directory, "
            "'st:PATH' or 'decoder:PATH'"
        )
    # A hub id: sentence-transformers resolves it (offline it must already be cached).
    try:
        return SentenceTransformerEmbedder(spec, name=spec, **kwargs)
    except LongkitError:
        raise
    except Exception as exc:  # the hub library's many error types all mean "not available here"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"--embedder {spec}: cannot load it as a bundled name ({DEFAULT_EMBEDDER}), directory or "
            f"cached hub model ({first[:200]})"
        ) from None
