"""Corpus store, streaming dataset: sharding without overlap, determinism, resume, DataLoader workers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from longkit.data.dataset import PackedDataset
from longkit.data.pack import SEG_KEY, Transform, reassemble
from longkit.data.sources import SourceSpec, TokenizedCorpus, iter_documents
from longkit.data.tokenize import tokenize_corpus
from longkit.data.utk import UtKConfig, UtKTransform, add_utk_special_tokens
from longkit.errors import ConfigError, InputError


def test_corpus_store_roundtrip(topics_corpus, topics_jsonl, smol_tokenizer):
    rows = [json.loads(x) for x in topics_jsonl.read_text().splitlines()]
    assert len(topics_corpus) == len(rows)
    assert set(topics_corpus.source_names) == {"reference", "other"}
    for i in (0, 7, len(rows) - 1):
        want = smol_tokenizer(rows[i]["text"], add_special_tokens=False)["input_ids"]
        assert topics_corpus.doc(i).tolist() == want
        assert topics_corpus.source_names[topics_corpus.doc_source[i]] == rows[i]["source"]
    assert topics_corpus.tokens.dtype == np.int32
    assert topics_corpus.meta["tokens"] == int(topics_corpus.lengths.sum())


def test_sources_report_file_line_field(tmp_path, smol_tokenizer):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "oops"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: missing field 'text'"):
        tokenize_corpus([SourceSpec(str(bad))], smol_tokenizer, tmp_path / "c")
    bad.write_text('{"text": "ok"}\n\n{"text": 5}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:3: field 'text' must be a string, got int"):
        list(iter_documents(SourceSpec(str(bad))))
    bad.write_text('{"text": "ok"}\n{"text": "a"\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: invalid JSON"):
        list(iter_documents(SourceSpec(str(bad))))
    with pytest.raises(InputError, match="not a tokenized corpus"):
        TokenizedCorpus(tmp_path)


def test_parquet_text_dir_and_datasets_sources(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["one", "two"], "domain": ["a", "b"]}), tmp_path / "x.parquet")
    spec = SourceSpec(str(tmp_path / "x.parquet"), text_field="body", source_field="domain")
    assert list(iter_documents(spec)) == [("a", "one"), ("b", "two")]
    with pytest.raises(InputError, match=r"x.parquet: missing column 'text'"):
        list(iter_documents(SourceSpec(str(tmp_path / "x.parquet"))))
    d = tmp_path / "txt"
    (d / "books").mkdir(parents=True)
    (d / "books" / "b1.txt").write_text("book one")
    (d / "top.md").write_text("top level")
    assert sorted(iter_documents(SourceSpec(str(d)))) == [("books", "book one"), ("txt", "top level")]
    datasets.Dataset.from_dict({"text": ["hf doc"]}).save_to_disk(str(tmp_path / "hf"))
    assert list(iter_documents(SourceSpec(str(tmp_path / "hf"), source="wiki"))) == [("wiki", "hf doc")]


def _ds(corpus, **kw):
    kw.setdefault("seq_len", 2048)
    return PackedDataset(corpus, kw.pop("transform", Transform()), separator=[44, 99, 46], with_meta=True, **kw)


def test_ranks_and_workers_are_disjoint_and_complete(topics_corpus):
    seen: dict[int, int] = {}
    samples = []
    for rank in range(2):
        ds = _ds(topics_corpus, rank=rank, world_size=2, shard="document")
        for w in range(3):
            for s in ds.iter_shard(w, 3):
                samples.append(s)
                for key in set(s["segments"][:, SEG_KEY].tolist()):
                    seen.setdefault(key, rank * 3 + w)
                    assert seen[key] == rank * 3 + w  # no document piece in two shards
    back = reassemble(samples)
    assert len(back) == len(topics_corpus)
    for _key, (doc, toks) in back.items():
        np.testing.assert_array_equal(toks, topics_corpus.doc(doc))
    assert len(set(seen.values())) == 6


def test_deterministic_and_resume_equality(topics_corpus, smol_copy):
    cfg = UtKConfig(probability=0.5)
    add_utk_special_tokens(smol_copy, cfg)
    tr = UtKTransform(smol_copy, cfg)
    full = list(_ds(topics_corpus, transform=tr, epochs=2, seq_len=1024))
    again = list(_ds(topics_corpus, transform=tr, epochs=2, seq_len=1024))
    assert len(full) == len(again) > 20
    for a, b in zip(full, again):
        np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
    other_seed = next(iter(_ds(topics_corpus, transform=tr, seq_len=1024, seed=1)))
    assert not np.array_equal(other_seed["input_ids"], full[0]["input_ids"])
    for cut in (1, 7, len(full) // 2 + 3):  # includes a cut in the second epoch
        ds = _ds(topics_corpus, transform=tr, epochs=2, seq_len=1024)
        it = iter(ds)
        for _ in range(cut):
            next(it)
        state = json.loads(json.dumps(ds.state_dict()))
        resumed = _ds(topics_corpus, transform=tr, epochs=2, seq_len=1024)
        resumed.load_state_dict(state)
        rest = list(resumed)
        assert len(rest) == len(full) - cut
        for a, b in zip(rest, full[cut:]):
            np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
            np.testing.assert_array_equal(a["labels"], b["labels"])
    ds = _ds(topics_corpus, transform=tr, shard="document")
    next(iter(ds))
    other = _ds(topics_corpus, transform=tr, shard="document")
    other.load_state_dict(ds.state_dict())
    with pytest.raises(ConfigError, match="worker 1 of 2"):
        next(other.iter_shard(1, 2))


def test_torch_dataloader_workers(topics_corpus):
    import torch

    ds = PackedDataset(topics_corpus, Transform(), 4096, [2], with_meta=False, intra_doc_attention=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    got = [b["input_ids"].numpy() for b in loader]
    direct = [s["input_ids"] for w in range(2) for s in ds.iter_shard(w, 2)]
    assert sorted(x.tobytes() for x in got) == sorted(x.tobytes() for x in direct)
    batch = next(iter(loader))
    assert set(batch) == {"input_ids", "labels", "position_ids", "cu_seqlens"}
    assert batch["input_ids"].dtype == torch.int32 and batch["input_ids"].shape == (4096,)
    total = sum(int((b["labels"] != -100).sum()) for b in loader)
    assert total == int(topics_corpus.lengths.sum()) + len(topics_corpus)  # text + one separator per doc


def _loader_order(ds, workers):
    """What a DataLoader with `workers` workers and batch_size ds.batch_size hands out, in order."""
    import torch

    loader = torch.utils.data.DataLoader(ds, batch_size=ds.batch_size, num_workers=workers, collate_fn=lambda xs: xs)
    return [s for batch in loader for s in batch]


@pytest.mark.parametrize("world,batch,workers", [(2, 1, 2), (2, 2, 1), (3, 1, 1)])
def test_sequence_sharding_reproduces_the_single_process_stream(topics_corpus, smol_copy, world, batch, workers):
    cfg = UtKConfig(probability=0.5)
    add_utk_special_tokens(smol_copy, cfg)
    tr = UtKTransform(smol_copy, cfg)
    single = list(_ds(topics_corpus, transform=tr, seq_len=1024))
    per_rank = [
        _loader_order(
            _ds(topics_corpus, transform=tr, seq_len=1024, rank=r, world_size=world, batch_size=batch), workers
        )
        for r in range(world)
    ]
    # Micro-batch m of the single stream is rank m % world's (m // world)-th micro-batch: N ranks x batch B
    # train on exactly what one process with batch B and gradient accumulation N does. None twice, none missing.
    assert sum(len(x) for x in per_rank) == len(single) > 10
    for i, s in enumerate(single):
        m = i // batch
        got = per_rank[m % world][(m // world) * batch + i % batch]
        np.testing.assert_array_equal(got["input_ids"], s["input_ids"])
        np.testing.assert_array_equal(got["labels"], s["labels"])


def test_sequence_state_of_one_rank_resumes_every_rank_and_worker(topics_corpus):
    world, batch = 2, 2
    single = list(_ds(topics_corpus, seq_len=1024))
    ds0 = _ds(topics_corpus, seq_len=1024, rank=0, world_size=world, batch_size=batch)
    it = ds0.iter_shard()
    for _ in range(2 * batch):  # rank 0 trained its first two micro-batches (= two global steps)
        next(it)
    state = json.loads(json.dumps(ds0.state_dict()))
    assert state["seq"] == 2 * world * batch
    for rank in range(world):
        resumed = _ds(topics_corpus, seq_len=1024, rank=rank, world_size=world, batch_size=batch)
        resumed.load_state_dict(state)
        rest = _loader_order(resumed, 2)  # two workers after the restart
        want = [s for i, s in enumerate(single) if i >= state["seq"] and (i // batch) % world == rank]
        assert len(rest) == len(want) > 0
        for a, b in zip(rest, want):
            np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
    with pytest.raises(ConfigError, match="shard"):
        _ds(topics_corpus, shard="rows")
