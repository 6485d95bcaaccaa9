"""The data mix a CPT run will see, for `longkit train plan`: tokens per source after upsampling and the share of
long documents, from the built corpus store's metadata when there is one, else from a tokenized sample.

Only what the mix needs is read: a corpus store's offsets.npy, doc_source.npy and sources.json (the token file
stays unread), or the first documents of each source. When neither can be read (a Hub dataset that is not
cached, a tokenizer that cannot load offline) the plan says so instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from longkit.errors import LongkitError

if TYPE_CHECKING:
    from longkit.data.config import DataConfig

LONG_DOC = 32768  # the share of documents (and tokens) at or above this length is reported
DEFAULT_SAMPLE_DOCS = 200


def data_mix(dcfg: DataConfig, corpus: Path, sample_docs: int = DEFAULT_SAMPLE_DOCS) -> dict[str, Any]:
    """Mix report: method 'corpus' (store metadata), 'sample' (first documents tokenized) or 'unavailable'."""
    if (corpus / "offsets.npy").is_file():
        try:
            return _from_corpus(dcfg, corpus)
        except LongkitError as exc:  # a damaged store: fall back to the sources, naming the problem
            fallback = _from_sample(dcfg, sample_docs)
            fallback["note"] = f"corpus store unreadable ({exc}); sampled the sources instead"
            return fallback
    return _from_sample(dcfg, sample_docs)


def _from_corpus(dcfg: DataConfig, corpus: Path) -> dict[str, Any]:
    from longkit.data.sources import CORPUS_FILES, _load_npy
    from longkit.errors import InputError
    from longkit.io import read_json

    for name in CORPUS_FILES[1:]:  # offsets, doc_source, sources.json; tokens.bin is not needed
        if not (corpus / name).is_file():
            raise InputError(f"{corpus}: missing {name}")
    offsets = _load_npy(corpus / "offsets.npy")
    doc_source = _load_npy(corpus / "doc_source.npy")
    names = read_json(corpus / "sources.json", "corpus source list")
    if not isinstance(names, list) or len(doc_source) != len(offsets) - 1:
        raise InputError(f"{corpus}: offsets.npy, doc_source.npy and sources.json disagree")
    rep = _mix(np.diff(offsets), doc_source, [str(n) for n in names], dcfg)
    return {"method": "corpus", "corpus": str(corpus), "corpus_built": True, **rep}


def _from_sample(dcfg: DataConfig, k: int) -> dict[str, Any]:
    """Tokenize the first k documents of each source; lengths of long documents are exact, shares approximate."""
    try:
        lengths, doc_source, names = _sample_lengths(dcfg, k)
    except LongkitError as exc:
        return {"method": "unavailable", "corpus_built": False, "reason": str(exc)}
    if not len(lengths):
        return {"method": "unavailable", "corpus_built": False, "reason": "no documents in the sources"}
    rep = _mix(lengths, doc_source, names, dcfg)
    return {"method": "sample", "corpus_built": False, "sample_docs_per_source": k, **rep}


def _sample_lengths(dcfg: DataConfig, k: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from itertools import islice

    from longkit.data.sources import iter_documents
    from longkit.data.utk import encode_text
    from longkit.errors import InputError
    from longkit.models.load import load_tokenizer

    if not dcfg.sources:
        raise InputError("the data config lists no sources and no corpus store is built")
    docs = [list(islice(iter_documents(spec), k)) for spec in dcfg.sources]  # sources first: their errors say more
    tok = load_tokenizer(dcfg.tokenizer)
    names: dict[str, int] = {}
    lengths: list[int] = []
    src: list[int] = []
    for part in docs:
        for (name, _), ids in zip(part, encode_text(tok, [t for _, t in part])):
            lengths.append(len(ids))
            src.append(names.setdefault(name, len(names)))
    return np.asarray(lengths, np.int64), np.asarray(src, np.int64), list(names)


def _mix(lengths: np.ndarray, doc_source: np.ndarray, names: list[str], dcfg: DataConfig) -> dict[str, Any]:
    """Upsample as the build would (same rule, same seed) and report tokens per source and long-document shares."""
    from longkit.data.upsample import mix_report, upsample

    sel = upsample(lengths, doc_source, names, dcfg.upsample, seed=dcfg.seed)
    rep = mix_report(lengths, doc_source, names, sel, threshold=LONG_DOC)
    ln = np.asarray(lengths, np.int64)[sel]
    long = ln >= LONG_DOC
    return {
        "upsampled": bool(dcfg.upsample.enabled),
        "tokens": rep["tokens"],
        "docs": rep["docs"],
        "sources": {
            n: {"tokens": r["tokens"], "docs": r["docs"], "share": round(r["share"], 4)}
            for n, r in rep["sources"].items()
        },
        "long_doc_threshold": LONG_DOC,
        "long_doc_share": round(float(long.mean()) if len(ln) else 0.0, 4),
        "long_token_share": round(float(ln[long].sum() / ln.sum()) if ln.sum() else 0.0, 4),
        "seq_len": dcfg.seq_len,
        "sequences_per_epoch": int(ln.sum() // dcfg.seq_len),
    }
