"""UtK, CIP and plain packing on real tokenizers: untie property, token accounting, masks, layout."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longkit.data.cip import CIPTransform
from longkit.data.pack import (
    IGNORE,
    SEG_END,
    SEG_KEY,
    SEG_LAST,
    SEG_NCHUNKS,
    SEG_START,
    Packer,
    Piece,
    Transform,
    pack_documents,
    reassemble,
    untie,
)
from longkit.data.utk import (
    UtKConfig,
    UtKTransform,
    add_utk_special_tokens,
    build_label_pool,
    utk_preset,
    utk_special_tokens,
)
from longkit.errors import ConfigError


def _utk(tok, cfg: UtKConfig) -> UtKTransform:
    add_utk_special_tokens(tok, cfg)
    return UtKTransform(tok, cfg)


def _nonempty(docs):
    return {i: d for i, d in enumerate(docs) if len(d)}


def _assert_restored(samples, docs):
    back = reassemble(samples)
    want = _nonempty(docs)
    assert sorted(back) == sorted(want)
    for key, d in want.items():
        assert back[key][0] == key
        np.testing.assert_array_equal(back[key][1], d)


def test_special_tokens_added_once_and_counted(smol_copy):
    cfg = UtKConfig()
    names = utk_special_tokens(cfg)
    assert names == ["<CL>", "</CL>", "<HK>", "<TK>", "<S>", "</S>"]
    before = len(smol_copy)
    assert add_utk_special_tokens(smol_copy, cfg) == 6
    assert len(smol_copy) == before + 6
    assert add_utk_special_tokens(smol_copy, cfg) == 0
    authors = utk_preset("authors")
    # <S>, </S> exist already; <D>, </D>, <s> and four per-index knots are new
    assert add_utk_special_tokens(smol_copy, authors) == 7


def test_tokenizer_without_special_tokens_is_a_clear_error(smol_copy):
    with pytest.raises(ConfigError, match=r"lacks the UtK special tokens .*add_utk_special_tokens"):
        UtKTransform(smol_copy, UtKConfig())


def test_label_pool_is_distinct_and_prefix_free(bpe_copy):
    pool = build_label_pool(bpe_copy, UtKConfig(label_pool=2000))
    seqs = [tuple(p.tolist()) for p in pool]
    assert len(seqs) == len(set(seqs)) and len(seqs) > 1500
    for a in seqs[:300]:
        for b in seqs:
            assert a == b or b[: len(a)] != a


@pytest.mark.parametrize("which", ["smol", "bpe"])
def test_utk_layout_masks_and_accounting(which, smol_copy, bpe_copy, prose_docs, smol_tokenizer, trained_tokenizer):
    tok = smol_copy if which == "smol" else bpe_copy
    base = smol_tokenizer if which == "smol" else trained_tokenizer
    from pydoc_data.topics import topics

    keys = sorted(topics)[:40]
    docs = [np.asarray(x, np.int32) for x in base([topics[k] for k in keys], add_special_tokens=False)["input_ids"]]
    cfg = UtKConfig(probability=1.0, chunk_dists=[(1.0, {3: 1.0})])
    tr = _utk(tok, cfg)
    sep = tok("<s>", add_special_tokens=False)["input_ids"]
    samples = pack_documents(docs, 4096, tr, sep, seed=3, pad_id=0)
    _assert_restored(samples, docs)
    ids_of = {n: tok.convert_tokens_to_ids(n) for n in utk_special_tokens(cfg)}
    split_all: set[int] = set()
    text = Counter()
    for s in samples:
        ids, labels = s.input_ids, s.labels
        assert ids.dtype == np.int32 and labels.dtype == np.int32 and len(ids) == 4096
        segs = s.segments
        # exact accounting: text spans + structure + separators + pad == seq_len
        text_len = int((segs[:, SEG_END] - segs[:, SEG_START]).sum())
        split_keys = set(segs[segs[:, SEG_NCHUNKS] == 3, SEG_KEY].tolist())
        for key in split_keys:
            rows = segs[segs[:, SEG_KEY] == key]
            assert len(rows) == 3
        n_chunks = 3 * len(split_keys)
        assert int((ids == ids_of["<CL>"]).sum()) == n_chunks == int((ids == ids_of["</CL>"]).sum())
        assert int((ids == ids_of["<HK>"]).sum()) == 2 * len(split_keys) == int((ids == ids_of["<TK>"]).sum())
        assert int((ids == ids_of["<S>"]).sum()) == len(split_keys) == int((ids == ids_of["</S>"]).sum())
        # labels appear twice each (in <CL>...</CL> and in the backtracing target)
        opens = np.flatnonzero(ids == ids_of["<CL>"])
        closes = np.flatnonzero(ids == ids_of["</CL>"])
        label_tok = int((closes - opens - 1).sum())
        ends_doc = len({k for k, last in zip(segs[:, SEG_KEY].tolist(), segs[:, SEG_LAST].tolist()) if last})
        structure = 2 * n_chunks + label_tok + 4 * len(split_keys) + 2 * len(split_keys) + label_tok
        assert text_len + structure + ends_doc * len(sep) + s.num_pad == 4096
        # masks: structure tokens masked except the backtracing ids and </S>; text learned
        for name in ("<CL>", "</CL>", "<HK>", "<TK>", "<S>"):
            assert np.all(labels[ids == ids_of[name]] == IGNORE)
        assert np.all(labels[ids == ids_of["</S>"]] == ids_of["</S>"])
        for o, c in zip(opens, closes):
            assert np.all(labels[o : c + 1] == IGNORE)
        for so in np.flatnonzero(ids == ids_of["<S>"]):
            sc = so + np.argmax(ids[so:] == ids_of["</S>"])
            assert np.array_equal(labels[so + 1 : sc + 1], ids[so + 1 : sc + 1])
        for r in segs:
            assert np.array_equal(labels[r[SEG_START] : r[SEG_END]], ids[r[SEG_START] : r[SEG_END]])
            text.update(ids[r[SEG_START] : r[SEG_END]].tolist())
        if s.num_pad:
            assert np.all(labels[-s.num_pad :] == IGNORE)
        split_all |= split_keys
    # every input token appears exactly once as chunk text
    assert text == Counter(np.concatenate(docs).tolist())
    assert split_all == {i for i, d in enumerate(docs) if len(d) >= 3}  # p=1: every document is split
    shown = tok.decode(samples[0].input_ids[:400].tolist())
    assert "<CL>" in shown and "</CL>" in shown


def test_authors_preset_masks_after_knots_and_backtrace(smol_copy, prose_docs):
    cfg = utk_preset("authors")
    cfg.chunk_dists = [(1.0, {3: 1.0})]
    tr = _utk(smol_copy, cfg)
    samples = pack_documents(prose_docs[:30], 2048, tr, [smol_copy.eos_token_id], seed=0, overflow="truncate")
    knots = [smol_copy.convert_tokens_to_ids(t) for t in cfg.head_knots + cfg.tail_knots]
    close = smol_copy.convert_tokens_to_ids("</S>")
    mid = smol_copy.convert_tokens_to_ids("<s>")
    seen_mid = 0
    for s in samples:
        ids, labels = s.input_ids, s.labels
        for k in knots:
            pos = np.flatnonzero(ids == k)
            assert np.all(labels[pos] == IGNORE)
            pos = pos[pos + 1 < len(ids)]
            assert np.all(labels[pos + 1] == IGNORE)  # prediction made from a knot is masked
        cpos = np.flatnonzero(ids == close)
        assert np.all(labels[cpos] == close)
        cpos = cpos[cpos + 1 < len(ids)]
        assert np.all(labels[cpos + 1] == IGNORE)
        seen_mid += int((ids == mid).sum())
        assert np.all(labels[ids == mid] == mid)
        # untie checks per-index knots (head of chunk j is <knot_j_head>) and raises on a wrong one
        assert all(len(toks) > 0 for _doc, _off, toks, _last in untie(s).values())
    assert seen_mid > 0
    assert tr.config.split == "even"


def test_truncate_counts_dropped_tokens(smol_copy, prose_docs):
    tr = _utk(smol_copy, utk_preset("authors"))
    docs = prose_docs[:40]
    packer = Packer(1024, tr, [smol_copy.eos_token_id], overflow="truncate")
    out = list(packer.pack((Piece(i, i, 0, d) for i, d in enumerate(docs)), np.random.default_rng(0)))
    placed = sum(len(v[2]) for s in out for v in untie(s).values())
    total = int(sum(len(d) for d in docs))
    assert packer.stats["tokens_dropped"] > 0
    assert placed + packer.stats["tokens_dropped"] == total


def test_preserve_order_off_still_unties_by_backtrace(smol_copy, prose_docs):
    cfg = UtKConfig(probability=1.0, chunk_dists=[(1.0, {4: 1.0})], preserve_order=False)
    tr = _utk(smol_copy, cfg)
    samples = pack_documents(prose_docs[:60], 8192, tr, [], seed=11)
    _assert_restored(samples, prose_docs[:60])
    out_of_order = 0
    for s in samples:
        segs = s.segments
        for key in set(segs[:, SEG_KEY].tolist()):
            chunks = segs[segs[:, SEG_KEY] == key, 3]
            out_of_order += int(np.any(np.diff(chunks) < 0))
    assert out_of_order > 0  # the shuffle really reorders chunks, untie undoes it from the tokens


def test_untie_detects_tampered_backtrace(smol_copy, prose_docs):
    cfg = UtKConfig(probability=1.0, chunk_dists=[(1.0, {3: 1.0})])
    tr = _utk(smol_copy, cfg)
    s = pack_documents(prose_docs[:10], 8192, tr, [], seed=0)[0]
    d = s.as_dict()
    d["input_ids"] = d["input_ids"].copy()
    pos = np.flatnonzero(d["input_ids"] == smol_copy.convert_tokens_to_ids("<S>"))[0]
    d["input_ids"][pos] = 5
    with pytest.raises(ValueError, match="backtracing"):
        untie(d)


def test_cip_interleaves_halves_and_plain_concatenates(prose_docs):
    docs = prose_docs[:12]
    sep = [7]
    out = pack_documents(docs, 1 << 17, CIPTransform(), sep, seed=0)
    assert len(out) == 1
    s = out[0]
    segs = s.segments
    n = len(docs)
    assert segs[:n, 3].tolist() == [0] * n and segs[n:, 3].tolist() == [1] * n
    assert segs[:n, SEG_KEY].tolist() == list(range(n)) == segs[n:, SEG_KEY].tolist()
    for i, d in enumerate(docs):
        np.testing.assert_array_equal(s.input_ids[segs[i, SEG_START] : segs[i, SEG_END]], d[: len(d) // 2])
    _assert_restored(out, docs)
    plain = pack_documents(docs, 1 << 17, Transform(), sep, seed=0)[0]
    want = np.concatenate([np.concatenate([d, sep]) for d in docs])
    np.testing.assert_array_equal(plain.input_ids[: len(want)], want)
    assert plain.num_pad == (1 << 17) - len(want)


def test_intra_doc_positions_and_cu_seqlens(prose_docs):
    docs = prose_docs[:8]
    s = pack_documents(docs, 1 << 16, Transform(), [3], seed=0, intra_doc_attention=True)[0]
    lens = [len(d) + 1 for d in docs]
    assert s.cu_seqlens.tolist() == list(np.cumsum([0] + lens)) + [1 << 16]
    assert s.cu_seqlens.dtype == np.int32 and s.position_ids.dtype == np.int32
    for a, b in zip(s.cu_seqlens[:-1], s.cu_seqlens[1:]):
        assert s.position_ids[a:b].tolist() == list(range(b - a))
    flat = pack_documents(docs, 1 << 16, Transform(), [3], seed=0)[0]
    assert flat.cu_seqlens.tolist() == [0, 1 << 16]
    assert flat.position_ids.tolist() == list(range(1 << 16))


def test_bad_inputs_follow_documented_rules(smol_copy):
    tr = _utk(smol_copy, UtKConfig(probability=1.0, chunk_dists=[(1.0, {4: 1.0})]))
    docs = [
        np.zeros(0, np.int32),
        np.array([11], np.int32),
        np.array([12, 13], np.int32),
        np.arange(100, 5100, dtype=np.int32),
    ]
    packer = Packer(512, tr, [9])
    out = list(packer.pack((Piece(i, i, 0, d) for i, d in enumerate(docs)), np.random.default_rng(0)))
    assert packer.stats["empty_docs"] == 1
    back = reassemble(out)
    assert sorted(back) == [1, 2, 3]  # the empty doc has no tokens to lose
    np.testing.assert_array_equal(back[3][1], docs[3])  # longer than seq_len: split across sequences
    n_of = {int(r[SEG_KEY]): int(r[SEG_NCHUNKS]) for s in out for r in s.segments}
    assert n_of[1] == 1 and n_of[2] == 2  # fewer tokens than chunks: one chunk per token
    assert packer.stats["docs_split_across"] >= 9
    with pytest.raises(ConfigError, match="overflow"):
        Packer(512, tr, overflow="drop")
    with pytest.raises(ConfigError, match="too short"):
        Packer(2, tr, [1, 2])
    with pytest.raises(ConfigError, match="chunk_labels"):
        UtKConfig(chunk_labels=False, backtrace=True)
    with pytest.raises(ConfigError, match="knots"):
        UtKConfig(chunk_dists=[(1.0, {4: 1.0})], head_knots=["<a>", "<b>"])


def test_carry_moves_whole_documents(prose_docs):
    docs = [d[:300] for d in prose_docs[:30]]
    out = pack_documents(docs, 1000, Transform(), [1], seed=0, overflow="carry")
    for s in out:
        assert set(s.segments[:, SEG_LAST].tolist()) == {1}  # no document was cut
    _assert_restored(out, docs)


_cfgs = st.builds(
    lambda p, dists, order, labels, bt, per_index, sep, split, plen: (
        p,
        dists,
        order,
        labels,
        bt and labels,
        per_index,
        sep,
        split,
        plen,
    ),
    st.floats(0, 1),
    st.lists(
        st.tuples(st.floats(0.1, 1), st.dictionaries(st.integers(1, 5), st.floats(0.05, 1), min_size=1, max_size=3)),
        min_size=1,
        max_size=3,
    ),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["random", "even"]),
    st.integers(2, 8),
)


_authors_switches = st.tuples(
    st.sampled_from(["pool", "fresh"]),
    st.sampled_from(["fewer", "whole"]),
    st.sampled_from(["target", "text"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cfg=_cfgs,
    switches=_authors_switches,
    lengths=st.lists(st.integers(0, 400), min_size=1, max_size=25),
    seq_len=st.integers(24, 700),
    overflow=st.sampled_from(["split", "carry", "truncate"]),
    seed=st.integers(0, 2**16),
)
def test_untie_restores_documents_property(smol_copy, prose_docs, cfg, switches, lengths, seq_len, overflow, seed):
    p, dists, order, labels, bt, per_index, sep, split, plen = cfg
    draw, short, sep_after, mask_label, mask_sep, tail_last = switches
    knots = 5 if per_index else 1
    c = UtKConfig(
        probability=p,
        chunk_dists=dists,
        preserve_order=order,
        chunk_labels=labels,
        backtrace=bt,
        label_length=plen,
        label_pool=600,
        split=split,
        head_knots=[f"<h{j}>" for j in range(knots)],
        tail_knots=[f"<t{j}>" for j in range(knots)],
        bt_sep="<sep>" if sep else None,
        label_draw=draw,
        short_docs=short,
        separator_after=sep_after,
        mask_after_label=mask_label,
        mask_after_separator=mask_sep,
        keep_tail_last=tail_last,
    )
    tr = _utk(smol_copy, c)
    corpus = np.concatenate(prose_docs[:20])
    rng = np.random.default_rng(seed)
    docs = []
    for n in lengths:
        start = int(rng.integers(0, len(corpus) - n))
        docs.append(corpus[start : start + n])
    packer = Packer(seq_len, tr, [44, 99, 46], overflow=overflow)
    samples = list(packer.pack((Piece(i, i, 0, d) for i, d in enumerate(docs)), np.random.default_rng(seed)))
    for s in samples:
        assert len(s.input_ids) == len(s.labels) == len(s.position_ids) == seq_len
        assert s.cu_seqlens.tolist() == [0, seq_len]
    if overflow != "truncate":
        _assert_restored(samples, docs)
        assert packer.stats["tokens_dropped"] == 0
    else:  # every placed piece is exactly its span of the document; what is missing was counted as dropped
        placed = 0
        for s in samples:
            for doc, off, toks, _last in untie(s).values():
                np.testing.assert_array_equal(toks, docs[doc][off : off + len(toks)])
                placed += len(toks)
        assert placed + packer.stats["tokens_dropped"] == sum(len(d) for d in docs)
    with pytest.raises(ConfigError, match="intra_doc_attention"):
        Packer(seq_len, tr, [44], intra_doc_attention=True)
