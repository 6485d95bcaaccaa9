"""The UtK `authors` preset pinned, switch by switch, to the authors' released implementation.

Source: rgtjf/Untie-the-Knots, gpt_dataset_utk.py, commit 69acc161a72912008738d41675354a0f87e0456e
(`denoise_text_multi_hop`, `shuffle_preserve_partial_order_multi_hop`, `process_sorted_samples`,
`GPTDatasetUtK.__getitem__`), on top of Megatron's GPTDataset (`_get_ltor_masks_and_position_ids`).
Their tokens are Megatron-aligned (tokens = x[:-1], labels = x[1:], loss_mask on tokens); longkit's
labels are HF-aligned (the model shifts), so their loss_mask[i] == 0 is longkit's labels[i + 1] == -100.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from longkit.data.pack import (
    IGNORE,
    SEG_CHUNK,
    SEG_DOC,
    SEG_END,
    SEG_KEY,
    SEG_LAST,
    SEG_NCHUNKS,
    SEG_OFFSET,
    SEG_START,
    Packer,
    Piece,
    pack_documents,
    untie,
)
from longkit.data.utk import AUTHORS_SOURCE, UtKConfig, UtKTransform, add_utk_special_tokens, utk_preset
from longkit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _authors(tok, **changes) -> UtKTransform:
    cfg = utk_preset("authors")
    for k, v in changes.items():
        setattr(cfg, k, v)
    add_utk_special_tokens(tok, cfg)
    return UtKTransform(tok, cfg)


def _authors_masked(ids: np.ndarray, eod: int, chunk_tokens: list[int], sort_tokens: list[int]) -> np.ndarray:
    """The authors' loss mask (eod_mask_loss and add_sort_task on), in longkit's HF alignment.

    Written from GPTDatasetUtK.__getitem__: Megatron masks loss where the input token is EOD; UtK
    masks where the input or the label is a chunk (knot) token, the input span <D> ... </D>, the
    label <D>, the input </S> and the label <S>.
    """
    tokens, labels = ids[:-1], ids[1:]
    loss = np.ones(len(tokens), dtype=bool)
    loss[tokens == eod] = False
    for t in chunk_tokens:
        loss[tokens == t] = False
        loss[labels == t] = False
    d_open, d_close, s_open, _s_mid, s_close = sort_tokens
    starts, ends = np.flatnonzero(tokens == d_open), np.flatnonzero(tokens == d_close)
    if len(ends) == len(starts) - 1:
        ends = np.append(ends, len(tokens) - 1)
    for a, b in zip(starts, ends):
        loss[a : b + 1] = False
    loss[labels == d_open] = False
    loss[tokens == s_close] = False
    loss[labels == s_open] = False
    return ~loss  # for positions 1..len-1 (position 0 is never a target after the shift)


def _vocab(tok, names):
    return [tok.convert_tokens_to_ids(n) for n in names]


def test_preset_switches_match_the_released_defaults():
    cfg = utk_preset("authors")
    assert AUTHORS_SOURCE == ("rgtjf/Untie-the-Knots", "gpt_dataset_utk.py", "69acc161a72912008738d41675354a0f87e0456e")
    assert cfg.preserve_order is False  # GPTDatasetUtKConfig.preserve_partial_order: bool = False
    assert cfg.split == "even"  # use_length_sampler: bool = False -> len(sample) // n_chunks * chunk_id
    assert cfg.label_draw == "fresh" and cfg.label_length == 6  # generate_random_string(6, rng)
    assert set(cfg.label_chars) == set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    assert cfg.chunk_dists == [(0.7, {1: 1.0}), (0.3, {3: 1.0})]  # chunk_probs_cfg docstring example
    assert cfg.short_docs == "whole" and cfg.separator_after == "text" and cfg.keep_tail_last
    assert (cfg.cl_open, cfg.cl_close, cfg.bt_open, cfg.bt_sep, cfg.bt_close) == ("<D>", "</D>", "<S>", "<s>", "</S>")
    # the paper preset stays longkit's own: chunk order kept, labels from a fixed pool
    paper = utk_preset("paper")
    assert paper.preserve_order and paper.label_draw == "pool" and paper.separator_after == "target"


def test_layout_knots_even_split_and_text_eod_target(smol_copy, prose_docs):
    """One document split in 3: knots per chunk index, even cuts, `text EOD <S> L0 <s> L1 <s> L2 </S>`."""
    tr = _authors(smol_copy, chunk_dists=[(1.0, {3: 1.0})])
    eos = smol_copy.eos_token_id
    doc = prose_docs[5][:601]
    s = pack_documents([doc], 2048, tr, [eos], seed=4, pad_id=eos, overflow="truncate")[0]
    ids, segs = s.input_ids, s.segments
    assert segs[:, SEG_NCHUNKS].tolist() == [3, 3, 3]
    # the authors' chunk_tokens order: seg_1_1 (end of chunk 0), seg_1_2 (start of chunk 1), seg_2_1, seg_2_2
    chunk_tokens = _vocab(smol_copy, ["<knot_0_tail>", "<knot_1_head>", "<knot_1_tail>", "<knot_2_head>"])
    d_open, d_close, s_open, s_mid, s_close = _vocab(smol_copy, ["<D>", "</D>", "<S>", "<s>", "</S>"])
    labels_of = {}
    for r in segs:
        j, a, b = int(r[SEG_CHUNK]), int(r[SEG_START]), int(r[SEG_END])
        assert int(r[SEG_OFFSET]) == len(doc) // 3 * j  # even split: len(sample) // n_chunks * chunk_id
        np.testing.assert_array_equal(ids[a:b], doc[len(doc) // 3 * j : (len(doc) // 3 * (j + 1) if j < 2 else None)])
        p = a
        if j > 0:  # numpy.insert(sample_part, 0, chunk_tokens[2 * chunk_id - 1])
            assert ids[a - 1] == chunk_tokens[2 * j - 1]
            p -= 1
        if j < 2:  # numpy.append(sample_part, chunk_tokens[2 * chunk_id])
            assert ids[b] == chunk_tokens[2 * j]
        assert ids[p - 1] == d_close
        q = p - 2
        while ids[q] != d_open:
            q -= 1
        labels_of[j] = ids[q + 1 : p - 1].tolist()
    # the part kept last is the last chunk; EOD is its last token; the target follows: text EOD <S> ... </S>
    last = segs[-1]
    assert int(last[SEG_CHUNK]) == 2 and last[SEG_START] == segs[:, SEG_START].max()
    e = int(last[SEG_END])
    body = labels_of[0] + [s_mid] + labels_of[1] + [s_mid] + labels_of[2]
    assert ids[e : e + 3 + len(body)].tolist() == [eos, s_open] + body + [s_close]
    assert s.num_pad == 2048 - (e + 3 + len(body))
    # the document placed last in a window: its target names its own labels, in order, and unties it
    ((doc_id, off, toks, ends),) = untie(s).values()
    np.testing.assert_array_equal(toks, doc)


def test_loss_mask_equals_the_authors_mask(smol_copy, prose_docs):
    """Every full window: longkit's -100 positions are exactly the authors' loss_mask == 0 (shifted)."""
    tr = _authors(smol_copy)
    eos = smol_copy.eos_token_id
    chunk_tokens = _vocab(smol_copy, ["<knot_0_tail>", "<knot_1_head>", "<knot_1_tail>", "<knot_2_head>"])
    sort_tokens = _vocab(smol_copy, ["<D>", "</D>", "<S>", "<s>", "</S>"])
    samples = pack_documents(prose_docs[:80], 4096, tr, [eos], seed=1, pad_id=eos, overflow="truncate")
    full = [s for s in samples if s.num_pad == 0]
    assert len(full) >= 10
    split = after_label = 0
    for s in full:
        want = _authors_masked(s.input_ids, eos, chunk_tokens, sort_tokens)
        np.testing.assert_array_equal(s.labels[1:] == IGNORE, want)
        split += int((s.segments[:, SEG_NCHUNKS] > 1).sum())
        for r in s.segments[s.segments[:, SEG_CHUNK] == 0]:  # chunk 0: no head knot, text right after </D>
            if r[SEG_NCHUNKS] > 1:
                assert s.input_ids[r[SEG_START] - 1] == sort_tokens[1] and s.labels[r[SEG_START]] == IGNORE
                after_label += 1
        after_eod = np.flatnonzero(s.input_ids[:-1] == eos) + 1
        assert np.all(s.labels[after_eod] == IGNORE)
    assert split > 0 and after_label > 0  # both kinds of sequence (no split / 3 chunks) were drawn


def test_shuffled_order_keeps_the_last_part_last(smol_copy, prose_docs):
    tr = _authors(smol_copy, chunk_dists=[(1.0, {3: 1.0})])
    samples = pack_documents(prose_docs[:60], 8192, tr, [smol_copy.eos_token_id], seed=2, overflow="truncate")
    out_of_order = 0
    for s in samples:
        segs = s.segments
        # shuffle_preserve_partial_order_multi_hop: the last part of the last sample stays at the end
        last_key = segs[np.argmax(segs[:, SEG_START]), SEG_KEY]
        tail = segs[-1]
        assert tail[SEG_KEY] == last_key and tail[SEG_CHUNK] == tail[SEG_NCHUNKS] - 1
        for key in set(segs[:, SEG_KEY].tolist()):
            chunks = segs[segs[:, SEG_KEY] == key, SEG_CHUNK]
            out_of_order += int(np.any(np.diff(chunks) < 0))
    assert out_of_order > 0  # preserve_partial_order=False: a document's chunks come in shuffled order


def test_short_documents_are_not_split(smol_copy, prose_docs):
    """`elif len(sample) < n_chunks: split_positions = []`; longkit's own default gives one chunk per token."""
    docs = [np.array([501, 502], np.int32), prose_docs[3][:300]]
    authors = pack_documents(docs, 1024, _authors(smol_copy, chunk_dists=[(1.0, {3: 1.0})]), [2], seed=0)[0]
    n_of = {int(r[SEG_KEY]): int(r[SEG_NCHUNKS]) for r in authors.segments}
    assert n_of == {0: 1, 1: 3}
    own = UtKConfig(probability=1.0, chunk_dists=[(1.0, {3: 1.0})])
    add_utk_special_tokens(smol_copy, own)
    mine = pack_documents(docs, 1024, UtKTransform(smol_copy, own), [2], seed=0)[0]
    assert {int(r[SEG_KEY]): int(r[SEG_NCHUNKS]) for r in mine.segments} == {0: 2, 1: 3}


def test_labels_are_fresh_random_strings(smol_copy, prose_docs):
    tr = _authors(smol_copy, chunk_dists=[(1.0, {3: 1.0})])
    assert tr.pool == []  # no fixed pool: each chunk draws generate_random_string(6, rng)
    d_open, d_close = _vocab(smol_copy, ["<D>", "</D>"])
    seen = []
    for seed in (0, 1):
        s = pack_documents(prose_docs[:30], 8192, tr, [smol_copy.eos_token_id], seed=seed)[0]
        opens, closes = np.flatnonzero(s.input_ids == d_open), np.flatnonzero(s.input_ids == d_close)
        labels = [smol_copy.decode(s.input_ids[a + 1 : b].tolist()) for a, b in zip(opens, closes)]
        assert len(labels) > 20 and len(set(labels)) == len(labels)  # distinct in the sequence
        assert all(re.fullmatch(r"[A-Za-z0-9]{6}", x) for x in labels)
        seen.append(set(labels))
    assert not seen[0] & seen[1]


def test_truncate_cuts_only_the_structure_overflow_and_documents_continue(smol_copy, prose_docs):
    """Megatron windows of seq_len stream tokens; `tokens[:sequence_length]` drops what the structure pushed out."""
    tr = _authors(smol_copy)
    eos = smol_copy.eos_token_id
    docs = prose_docs[:90]
    starts = np.concatenate(([0], np.cumsum([len(d) + 1 for d in docs])))  # stream position of each document
    packer = Packer(2048, tr, [eos], pad_id=eos, overflow="truncate")
    it = (Piece(i, i, 0, d) for i, d in enumerate(docs))
    rng = np.random.default_rng(7)
    pending, windows = None, []
    while True:
        before = packer.stats["tokens_dropped"]
        pieces, plans, pending, exhausted = packer.fill(pending, it, rng)
        if not pieces:
            break
        s = packer.emit(pieces, plans, rng)
        first = pieces[0]
        windows.append((int(starts[first.doc_id] + first.offset), s, packer.stats["tokens_dropped"] - before))
        if exhausted and pending is None:
            break
    assert len(windows) > 20
    total_dropped = 0
    for (start, s, dropped), (nxt, _, _) in zip(windows, windows[1:]):
        assert nxt - start == 2048  # the next window starts right after this one's stream tokens
        segs = s.segments
        text = int((segs[:, SEG_END] - segs[:, SEG_START]).sum())
        n_eod = int((s.input_ids == eos).sum())
        structure = 2048 - text - n_eod
        assert s.num_pad == 0
        assert text + n_eod + dropped in (2048, 2048 - 1)  # the window's tokens, less an EOD cut off its end
        assert dropped in (structure, structure - 1)
        total_dropped += dropped
    placed = sum(len(t) for _, s, _ in windows for _d, _o, t, _l in untie(s).values())
    assert placed + packer.stats["tokens_dropped"] == sum(len(d) for d in docs)
    for _, s, _ in windows:  # what is placed is exactly the document's tokens at that offset
        for _key, (doc, off, toks, _last) in untie(s).items():
            np.testing.assert_array_equal(toks, docs[doc][off : off + len(toks)])
    assert 0 < total_dropped < 0.05 * sum(len(d) for d in docs)


def test_intra_doc_attention_with_utk_is_refused_at_config_load(tmp_path, smol_copy, topics_corpus):
    from typer.testing import CliRunner

    from longkit.data.cli import app
    from longkit.data.config import data_config_from_dict, load_data_config
    from longkit.data.dataset import PackedDataset

    with pytest.raises(ConfigError, match="intra_doc_attention"):  # the Python API refuses it as well
        PackedDataset(topics_corpus, _authors(smol_copy), 4096, intra_doc_attention=True)

    with pytest.raises(ConfigError, match=r"^cfg: field 'intra_doc_attention' must be false with transform utk") as e:
        data_config_from_dict({"transform": "utk", "intra_doc_attention": True}, "cfg")
    assert "\n" not in str(e.value)
    data_config_from_dict({"transform": "plain", "intra_doc_attention": True})  # the AttnMask baseline stays
    path = tmp_path / "bad.yaml"
    path.write_text("sources: [a.jsonl]\ntransform: utk\nintra_doc_attention: true\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_data_config(path)
    res = CliRunner().invoke(app, ["build", str(path)])
    assert res.exit_code == 2
    assert "intra_doc_attention" in res.output and "Traceback" not in res.output


def test_shipped_authors_config(smol_copy):
    from longkit.data.config import load_data_config

    cfg = load_data_config(ROOT / "configs" / "data" / "cpt-utk-authors.yaml")
    assert cfg.overflow == "truncate" and cfg.separator == "eos" and not cfg.intra_doc_attention
    assert cfg.utk.to_dict() == utk_preset("authors").to_dict()
    _ = SEG_DOC, SEG_LAST  # imported for readers: the segment columns untie() relies on


def test_fidelity_note_names_every_difference():
    from longkit.data.utk import authors_differences, fidelity_note

    assert fidelity_note(utk_preset("authors")).startswith(
        "UtK follows the authors' released code (rgtjf/Untie-the-Knots/gpt_dataset_utk.py@69acc16)"
    )
    cfg = utk_preset("authors")
    cfg.preserve_order = True
    assert authors_differences(cfg) == ["preserve_order"]
    assert authors_differences(cfg.to_dict(), "split") == ["preserve_order", "overflow"]
    paper = authors_differences(utk_preset("paper"), "split")
    for name in (
        "preserve_order",
        "split",
        "label_draw",
        "separator_after",
        "short_docs",
        "mask_after_label",
        "bt_sep",
        "overflow",
    ):
        assert name in paper
    assert "preserve_order" in fidelity_note(utk_preset("paper"), "split")


@pytest.mark.parametrize(
    "field,value",
    [("label_draw", "random"), ("short_docs", "skip"), ("separator_after", "labels"), ("label_length", 0)],
)
def test_bad_switch_values_name_the_field(field, value):
    from longkit.data.config import data_config_from_dict

    with pytest.raises(ConfigError, match=rf"{field}\W.*must be"):
        data_config_from_dict({"utk": {"preset": "authors", field: value}})
