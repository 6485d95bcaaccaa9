"""Every command answers a careless user's input with one `error: ...` line and exit status 2.

One case per line: (argv with {fixture} names from bad_inputs.BUILDERS, expected exit code, a phrase the
message must contain, fixtures that must be byte-identical afterwards). The CLI runs in-process through
`longkit.cli.run`, the same path the `longkit` command takes.
"""

from __future__ import annotations

import re
import shlex
from typing import NamedTuple

import pytest

from bad_inputs import build, snapshot  # noqa: E402  (tests/cli is on sys.path under pytest's rootdir rules)


class Case(NamedTuple):
    argv: str
    code: int
    phrase: str
    unchanged: tuple[str, ...] = ()


C = Case

CASES: list[Case] = [
    # --- the CLI itself -----------------------------------------------------------------------------------
    C("no-such-command", 2, "No such command"),
    C("eval niah --no-such-option 3", 2, "No such option"),
    # --- configs: every YAML entry point shares one loader -------------------------------------------------
    C("data build {missing}", 2, "not found"),
    C("data build {nonutf8_yaml}", 2, "not valid UTF-8", ("nonutf8_yaml",)),
    C("data build {bad_yaml}", 2, "invalid YAML"),
    C("data build {list_yaml}", 2, "expected a mapping"),
    C("train cpt {nonutf8_yaml}", 2, "not valid UTF-8"),
    C("train sft {nonutf8_yaml}", 2, "not valid UTF-8"),
    C("train recipe {nonutf8_yaml}", 2, "not valid UTF-8"),
    C("eval suite {nonutf8_yaml}", 2, "not valid UTF-8"),
    C("train cpt {missing}", 2, "not found"),
    # data build: configs and sources
    C("data build {data_seq_1e12}", 2, "field 'seq_len': expected an integer"),
    C("data build {data_source_twice}", 2, "field 'sources[1]': the same source as sources[0]"),
    C("data build {data_seq_big}", 2, "field 'seq_len': must be in [16,"),
    C("data build {data_seq_float}", 2, "field 'seq_len': expected an integer"),
    C("data build {data_seq_neg}", 2, "field 'seq_len': must be in"),
    C("data build {data_seq_text}", 2, "field 'seq_len'"),
    C("data build {data_no_sources}", 2, "field 'sources': list at least one source"),
    C("data build {data_sources_str}", 2, "field 'sources' must be a list"),
    C("data build {data_source_missing}", 2, "nowhere.jsonl not found"),
    C("data build {data_source_empty}", 2, "empty.jsonl: source has no documents"),
    C("data build {data_source_nonutf8}", 2, "latin1.jsonl:1: not valid UTF-8", ("data_source_nonutf8",)),
    C("data build {data_source_nonutf8_txt}", 2, "latin1.txt:1: not valid UTF-8"),
    C("data build {data_source_notext}", 2, "no text files"),
    C("data build {data_source_blank}", 2, "is empty (0 tokens)"),
    C("data build {data_source_nofield}", 2, "body.jsonl:1: missing field 'text'"),
    C("data build {data_source_type}", 2, "type must be jsonl, parquet, text or hf"),
    C("data build {data_source_nopath}", 2, "each source needs a 'path'"),
    C("data build {data_source_badfield}", 2, "field 'text_field' must be a non-empty string"),
    C("data build {data_transform}", 2, "field 'transform': must be one of plain, cip, utk"),
    C("data build {data_overflow}", 2, "field 'overflow': must be one of split, carry, truncate"),
    C("data build {data_num_proc}", 2, "field 'num_proc': must be in [1, 512]"),
    C("data build {data_per_shard}", 2, "field 'sequences_per_shard'"),
    C("data build {data_max_seq}", 2, "field 'max_sequences': must be >= 1"),
    C("data build {data_separator}", 2, "field 'separator': expected a string"),
    C("data build {data_unknown}", 2, "unknown field(s) ['sequence_length']"),
    C("data build {data_tokenizer}", 2, "model directory not found"),
    C("data build {data_threshold}", 2, "field 'threshold': must be >= 0"),
    C("data build {data_keep_short}", 2, "upsample.keep_short must be in [0, 1]"),
    C("data build {data_buckets}", 2, "field 'upsample.buckets': expected increasing"),
    C("data build {data_upsample_list}", 2, "upsample: expected a mapping"),
    C("data build {data_chunk_dists}", 2, "field 'utk.chunk_dists'"),
    C("data build {data_preset}", 2, "field 'utk.preset'"),
    C("data build {data_utk_prob}", 2, "utk.probability must be in [0, 1]"),
    C("data build {data_out_file}", 2, "exists and is not a directory", ("data_out_file",)),
    C("data build {data_seq_neg} --out {a_file}", 2, "field 'seq_len'", ("a_file",)),
    C("data build {data_ok} --out {a_file}", 2, "--out", ("a_file",)),
    C("data build {data_buckets} --num-proc 0", 2, "--num-proc"),
    C("data build {data_buckets} --max-sequences 0", 2, "--max-sequences"),
    C("data build {empty_dir}", 2, "got a directory"),
    # data inspect: shards and their integrity
    C("data inspect {truncated_npz}", 2, "damaged or not a longkit data shard", ("truncated_npz",)),
    C("data inspect {zero_npy}", 2, "empty file (0 bytes)"),
    C("data inspect {zero_npz}", 2, "empty file (0 bytes)"),
    C("data inspect {single_npy}", 2, "a single .npy array"),
    C("data inspect {text_npz}", 2, "not a longkit data shard"),
    C("data inspect {qa_jsonl}", 2, "not a longkit data shard (expected an .npz written by `longkit data build`"),
    C("data inspect {missing}", 2, "shard not found"),
    C("data inspect {empty_dir}", 2, "got a directory"),
    C("data inspect {shard_flipped} --verify", 2, "shard-00001.npz: shard is damaged (SHA-256", ("shard_flipped",)),
    C("data inspect {shard_flipped}", 2, "shard-00001.npz: damaged"),
    C("data inspect {shard_short}", 2, "shard-00001.npz: shard is damaged (size"),
    C("data inspect {shard_short} --verify", 2, "the manifest says"),
    C("data inspect {truncated_npz} --verify", 2, "cannot verify it"),
    C("data inspect {shard_ok} --index 5", 2, "--index 5"),
    C("data inspect {shard_ok} --index -1", 2, "--index"),
    C("data inspect {shard_ok} --width 0", 2, "--width"),
    C("data inspect {shard_ok} --tokenizer ./no/such/tok", 2, "model directory not found"),
    C("data inspect {shard_ok} --tokenizer {bad_config_dir}", 2, "cannot load"),
    # data synth-long
    C("data synth-long {triples} --out o.jsonl --lengths -5", 2, "--lengths: each length must be in [64,"),
    C("data synth-long {triples} --out o.jsonl --lengths 0", 2, "--lengths"),
    C("data synth-long {triples} --out o.jsonl --lengths 1e12", 2, "--lengths: each length must be in"),
    C("data synth-long {triples} --out o.jsonl --lengths abc", 2, "--lengths: expected a comma list"),
    C("data synth-long {triples} --out o.jsonl --lengths ,", 2, "--lengths: give at least one"),
    C("data synth-long {triples} --out o.jsonl --qa-per-sample 0", 2, "--qa-per-sample"),
    C("data synth-long {triples} --out {empty_dir}", 2, "--out"),
    C("data synth-long {triples} --out {triples}", 2, "is also an input", ("triples",)),
    C("data synth-long {empty} --out o.jsonl", 2, "no rows"),
    C("data synth-long {nonutf8_jsonl} --out o.jsonl", 2, "nonutf8.jsonl:2: not valid UTF-8"),
    C("data synth-long {bad_jsonl} --out o.jsonl", 2, "bad.jsonl:2: invalid JSON"),
    C("data synth-long {array_jsonl} --out o.jsonl", 2, "expected a JSON object"),
    C("data synth-long {missing} --out o.jsonl", 2, "not found"),
    C("data synth-long {triples} --out o.jsonl --tokenizer {zero_gguf}", 2, "empty file (0 bytes)"),
    C("data synth-long {triples_no_qa} --out o.jsonl --lengths 512", 2, "triples.jsonl:1: field 'qa'"),
    C("data synth-long {triples_no_summary} --out o.jsonl --lengths 512", 2, "field 'summary' must be"),
    C("data synth-long {triples_long_summary} --out o.jsonl --lengths 64", 2, "use larger --lengths"),
    # model info / extend and model loading
    C("model info {zero_gguf}", 2, "empty file (0 bytes); expected a GGUF", ("zero_gguf",)),
    C("model info {random_gguf}", 2, "not a GGUF file", ("random_gguf",)),
    C("model info {fake_gguf}", 2, "cannot read GGUF file"),
    C("model info missing.gguf", 2, "GGUF file not found"),
    C("model info runs/never/built/final", 2, "model directory not found"),
    C("model info ./nope", 2, "model directory not found"),
    C("model info {no_config_dir}", 2, "no config.json"),
    C("model info {bad_config_dir}", 2, "cannot load"),
    C("model info {a_file}", 2, "is a file; expected a model directory"),
    C("model info ''", 2, "empty name"),
    C("model extend smollm2-135m-instruct out --max-length 32768 --method pi --factor 1e11", 2, "--factor"),
    C("model extend smollm2-135m-instruct out --max-length 1e12 --base 1e6", 2, "--max-length"),
    C("model extend smollm2-135m-instruct out --max-length 1000000000000 --base 1e6", 2, "--max-length"),
    C("model extend smollm2-135m-instruct out --max-length 32768 --base -5", 2, "--base"),
    C("model extend smollm2-135m-instruct out --max-length 32768 --method stretch", 2, "unknown RoPE extension"),
    C("model extend smollm2-135m-instruct out --max-length 32768 --base 1e6 --dtype int3", 2, "unknown dtype"),
    C("model extend {zero_gguf} out --max-length 32768 --base 1e6", 2, "empty file (0 bytes)"),
    C("model extend smollm2-135m-instruct {a_file} --max-length 32768 --base 1e6", 2, "not a directory", ("a_file",)),
    C("model extend smollm2-135m-instruct {nonempty_dir} --max-length 32768 --base 1e6", 2, "not empty",
      ("nonempty_dir",)),
    # train cpt / sft / recipe: config values refused where they enter
    C("train cpt {cpt_grad_accum}", 2, "field 'train.grad_accum'"),
    C("train cpt {cpt_max_steps}", 2, "field 'train.max_steps'"),
    C("train cpt {cpt_zero_steps}", 2, "field 'train.max_steps'"),
    C("train cpt {cpt_batch0}", 2, "field 'train.per_device_batch_size'"),
    C("train cpt {cpt_lr}", 2, "field 'train.learning_rate'"),
    C("train cpt {cpt_sched}", 2, "field 'train.lr_scheduler'"),
    C("train cpt {cpt_beta}", 2, "field 'train.adam_beta2'"),
    C("train cpt {cpt_epochs}", 2, "set train.max_steps >= 1, not num_epochs"),
    C("train cpt {cpt_seq}", 2, "field 'seq_len'"),
    C("train cpt {cpt_factor}", 2, "field 'extend.factor'"),
    C("train cpt {cpt_method}", 2, "field 'extend.method'"),
    C("train cpt {cpt_no_model}", 2, "field 'model'"),
    C("train cpt {cpt_data_missing}", 2, "data config file not found"),
    C("train cpt {cpt_data_nonutf8}", 2, "latin1-data.yaml:2: not valid UTF-8"),
    C("train cpt {cpt_ok} --max-steps -3", 2, "max_steps -3"),
    C("train cpt {cpt_ok} --max-steps 0", 2, "max_steps 0"),
    C("train cpt {cpt_ok} --max-steps 99999999999999999999", 2, "must be <= 1000000000"),
    C("train cpt {a_file}", 2, "expected a mapping"),
    C("train sft {sft_no_stages}", 2, "field 'stages'"),
    C("train sft {sft_no_blend}", 2, "field 'stages.0.blend'"),
    C("train sft {sft_no_weight}", 2, "exactly one of 'weight' or 'epochs'"),
    C("train sft {sft_both}", 2, "exactly one of 'weight' or 'epochs'"),
    C("train sft {sft_weight}", 2, "weight"),
    C("train sft {sft_epochs}", 2, "epochs"),
    C("train sft {sft_dup}", 2, "stage names must be unique"),
    C("train sft {sft_stage_name}", 2, "field 'stages.0.name'"),
    C("train sft {sft_accum}", 2, "field 'train.grad_accum'"),
    C("train sft {sft_ok} --max-steps -7", 2, "max_steps -7"),
    C("train recipe {recipe_no_sections}", 2, "no cpt or sft section"),
    C("train recipe {recipe_cpt_int}", 2, "field 'cpt': expected a mapping"),
    C("train recipe {recipe_prepare}", 2, "field 'prepare'"),
    C("train recipe {recipe_sft_only} --only sft", 2, "run `longkit train recipe"),
    C("train recipe {recipe_sft_only} --only everything", 2, "--only everything: expected cpt or sft"),
    # demo
    C("demo --lengths -5", 2, "--lengths"),
    C("demo --lengths abc", 2, "--lengths: expected a comma list"),
    C("demo --depths 150", 2, "--depths: expected percentages in 0..100"),
    C("demo --out {a_file}", 2, "exists and is not a directory", ("a_file",)),
    C("demo --model ./no/such/model", 2, "model directory not found"),
    C("demo --model {zero_gguf}", 2, "empty file (0 bytes)"),
    C("data build {data_source_typo}", 2, "./no/such/docs: source file or directory not found"),
    C("data build {data_tokenizer_empty}", 2, "empty name"),
    C("data build {data_seq_bool}", 2, "field 'seq_len': expected an integer"),
    C("data build {data_utk_scalar}", 2, "field 'utk' must be a mapping"),
    C("train cpt {cpt_batch_float}", 2, "field 'train.per_device_batch_size'"),
    C("train sft {sft_seq}", 2, "field 'seq_len'"),
    C("train sft {sft_num_samples}", 2, "field 'stages.0.num_samples'"),
    C("model extend smollm2-135m-instruct out --max-length 1 --base 1e6", 2, "--max-length"),
    C("data synth-long {triples} --out o.jsonl --seed -1", 2, "--seed"),
    C("train cpt {cpt_out_file}", 2, "exists and is not a directory"),
    C("train sft {sft_out_file}", 2, "exists and is not a directory"),
    C("train recipe {recipe_out_file}", 2, "exists and is not a directory"),
    C("train cpt {empty_dir}", 2, "expected a config file, got a directory"),
    C("train sft {empty_dir}", 2, "expected a config file, got a directory"),
    C("train recipe {missing}", 2, "not found"),
    C("train sft {sft_stage_accum}", 2, "stage 'b' train.grad_accum"),
    C("train sft {sft_stage_unknown}", 2, "stage 'a' train.learning_rte: Extra inputs are not permitted"),
    C("model extend smollm2-135m-instruct out --max-length 32768 --base 1e6 --factor 4", 2, "--factor does not apply"),
    C("data build {data_source_parquet}", 2, "rand.parquet: not a readable Parquet file"),
    C("data build {data_source_dir_as_jsonl}", 2, "expected a jsonl file, got a directory"),
    # --- data, sft, model, train, demo (append above this line) ----------------------------------------------
    # rag index: inputs, output directory and option bounds are checked before the embedder loads
    C("rag index {missing} --out ix", 2, "not found"),
    C("rag index {empty_dir} --out ix", 2, "no documents in this directory", ("empty_dir",)),
    C("rag index {notext_dir} --out ix", 2, "no documents in this directory", ("notext_dir",)),
    C("rag index {nonutf8_txt} --out ix", 2, "latin1.txt:1: not valid UTF-8", ("nonutf8_txt",)),
    C("rag index {nul_txt} --out ix", 2, "binary file"),
    C("rag index {fifo} --out ix", 2, "not a regular file"),
    C("rag index {broken_link} --out ix", 2, "not found"),
    C("rag index {empty} --out ix", 2, "no text to index"),
    C("rag index {blank_jsonl} --out ix", 2, "no text to index (2 empty documents)"),
    C("rag index {nonutf8_jsonl} --out ix", 2, "nonutf8.jsonl:2: not valid UTF-8"),
    C("rag index {bad_jsonl} --out ix", 2, "bad.jsonl:2: invalid JSON"),
    C("rag index {array_jsonl} --out ix", 2, "array.jsonl:1: expected a JSON object"),
    C("rag index {notext_jsonl} --out ix", 2, "notext.jsonl:1: missing field 'text'"),
    C("rag index {doc_txt} --out {a_file}", 2, "exists and is not a directory", ("a_file",)),
    C("rag index {doc_txt} --out {docs_dir}", 2, "holds other files and no index", ("docs_dir",)),
    C("rag index {doc_txt} --out ix --chunk-size 0", 2, "--chunk-size"),
    C("rag index {doc_txt} --out ix --chunk-size -5", 2, "--chunk-size"),
    C("rag index {doc_txt} --out ix --chunk-size abc", 2, "--chunk-size"),
    C("rag index {doc_txt} --out ix --overlap -1", 2, "--overlap"),
    C("rag index {doc_txt} --out ix --overlap 200", 2, "less than --chunk-size"),
    C("rag index {doc_txt} --out ix --tolerance -0.1", 2, "--tolerance"),
    C("rag index {doc_txt} --out ix --tolerance 1.5", 2, "--tolerance"),
    C("rag index {doc_txt} --out ix --unit sentence", 2, "--unit"),
    C("rag index {doc_txt} --out ix --on-overflow truncate", 2, "--on-overflow"),
    C("rag index {doc_txt} --out ix --kind ivf", 2, "--kind"),
    C("rag index {doc_txt} --out ix --commit-every 0", 2, "--commit-every"),
    C("rag index {doc_txt} --out ix --batch-size 0", 2, "--batch-size"),
    C("rag index {doc_txt} --out ix --max-tokens 4", 2, "--max-tokens"),
    C("rag index {doc_txt} --out ix --embedder ./no/such/embedder", 2, "--embedder"),
    C("rag index {doc_txt}", 2, "Missing option"),
    C("rag index {doc_txt} --out {flipped_index} --verify", 2, "000000.npy: index segment checksum does not match",
      ("flipped_index",)),
    C("rag index {doc_txt} --out {truncated_index}", 2, "000000.npy: index segment is", ("truncated_index",)),
    C("rag index {doc_txt} --out {bad_manifest_index}", 2, "manifest.json:1: invalid JSON", ("bad_manifest_index",)),
    # rag info / delete
    C("rag info {missing_dir}", 2, "no index here"),
    C("rag info {a_file}", 2, "no index here"),
    C("rag info {flipped_index} --verify", 2, "checksum does not match", ("flipped_index",)),
    C("rag info {truncated_index}", 2, "manifest says"),
    C("rag delete {rag_index} no-such-doc", 2, "no document with id", ("rag_index",)),
    C("rag delete {missing_dir} doc0", 2, "no index here"),
    C("rag info {index_bad_segments}", 2, "field 'segments'"),
    C("rag info {index_no_segments_dir}", 2, "index segment file is missing"),
    C("rag ask {index_bad_tuned} q", 2, "tuned.token_budget"),
    C("rag delete {rag_index}", 2, "Missing argument"),
    C("rag ask {rag_index} q --backend vllm", 2, "vllm"),
    # rag ask: the question, history and options are checked before the model loads
    C("rag ask {missing_dir} 'What is pass?'", 2, "no index here"),
    C("rag ask {rag_index} ''", 2, "question: is empty"),
    C("rag ask {rag_index} '   '", 2, "question: is empty"),
    C("rag ask {rag_index} q --history {object_json}", 2, "expected a JSON list"),
    C("rag ask {rag_index} q --history {nonutf8_json}", 2, "nonutf8.json:1: not valid UTF-8"),
    C("rag ask {rag_index} q --history {bad_json}", 2, "bad.json:1: invalid JSON"),
    C("rag ask {rag_index} q --history {bad_role_json}", 2, "message 0"),
    C("rag ask {rag_index} q --history {content_list_json}", 2, "message 0"),
    C("rag ask {rag_index} q --history {missing}", 2, "not found"),
    C("rag ask {rag_index} q -k 0", 2, "--k"),
    C("rag ask {rag_index} q --budget 0", 2, "--budget"),
    C("rag ask {rag_index} q --budget -3", 2, "--budget"),
    C("rag ask {rag_index} q --max-new-tokens 0", 2, "--max-new-tokens"),
    C("rag ask {rag_index} q --history-turns 0", 2, "--history-turns"),
    C("rag ask {rag_index} q --style fancy", 2, "--style"),
    C("rag ask {rag_index} q --order random", 2, "--order"),
    C("rag ask {rag_index} q -k 3 --budget 100", 2, "give one of them"),
    C("rag ask {rag_index} q --backend tgi", 2, "--backend"),
    C("rag ask {rag_index} q --backend openai", 2, "--base-url"),
    C("rag ask {rag_index} q --backend openai --base-url not-a-url", 2, "--base-url"),
    C("rag ask {truncated_index} q", 2, "manifest says"),
    # rag tune
    C("rag tune {rag_index} --qa {qa_good} --tolerance -1", 2, "--tolerance", ("rag_index",)),
    C("rag tune {rag_index} --qa {qa_good} --tolerance 2", 2, "--tolerance"),
    C("rag tune {rag_index} --qa {qa_good} --limit 0", 2, "--limit", ("rag_index",)),
    C("rag tune {rag_index} --qa {missing}", 2, "not found", ("rag_index",)),
    C("rag tune {rag_index} --qa {qa_nonutf8}", 2, "qa-latin1.jsonl:2: not valid UTF-8", ("rag_index",)),
    C("rag tune {rag_index} --qa {qa_jsonl}", 2, "qa.jsonl:1: needs a 'document' or a 'document_path'"),
    C("rag tune {rag_index} --qa {qa_no_answers}", 2, "qa-noans.jsonl:1: field 'answers'"),
    C("rag tune {rag_index} --qa {qa_dup_ids}", 2, "qa-dup.jsonl:2: field 'id'"),
    C("rag tune {rag_index} --qa {qa_bad_turns}", 2, "qa-turns.jsonl:1: field 'question'"),
    C("rag tune {rag_index} --qa {qa_nonutf8_doc}", 2, "latin1-doc.txt:1: not valid UTF-8"),
    C("rag tune {rag_index} --qa {qa_good} --chunk-sizes 0,100", 2, "--chunk-sizes"),
    C("rag tune {rag_index} --qa {qa_good} --top-ks abc", 2, "--top-ks"),
    C("rag tune {rag_index} --qa {qa_good} --metric bleu", 2, "--metric"),
    C("rag tune {rag_index} --qa {qa_good} --max-new-tokens 0", 2, "--max-new-tokens"),
    C("rag tune {rag_index} --qa {qa_good} --batch-size 0", 2, "--batch-size"),
    C("rag tune {rag_index} --qa {qa_good} --answer-budget 0", 2, "--answer-budget"),
    C("rag tune {missing_dir} --qa {qa_good}", 2, "no index here"),
    C("rag tune {rag_index} --qa {qa_good} --chunk-sizes 4000 --top-ks 5", 2, "every swept budget exceeds",
      ("rag_index",)),
    C("rag tune {rag_index} --qa {qa_good} --answer-budget 9000", 2, "leaves no room"),
    C("rag tune {rag_index} --qa {qa_good} --out {a_file}", 2, "exists and is not a directory", ("a_file",)),
    # eval rag-vs-long
    C("eval rag-vs-long {missing}", 2, "not found"),
    C("eval rag-vs-long {empty}", 2, "no questions"),
    C("eval rag-vs-long {qa_good} --out {a_file}", 2, "exists and is not a directory", ("a_file",)),
    C("eval rag-vs-long {qa_good} --limit 0", 2, "--limit"),
    C("eval rag-vs-long {qa_good} --limit -2", 2, "--limit"),
    C("eval rag-vs-long {qa_good} --chunk-sizes ,", 2, "--chunk-sizes"),
    C("eval rag-vs-long {qa_good} --max-context 10", 2, "--max-context"),
    C("eval rag-vs-long {qa_good} --style fancy", 2, "--style"),
    C("eval rag-vs-long {qa_missing_doc}", 2, "document_path 'nowhere.txt' not found"),
    C("eval rag-vs-long {qa_dir_doc}", 2, "not a regular file"),
    C("eval rag-vs-long {bad_jsonl}", 2, "bad.jsonl:1: missing field 'question'"),
    C("eval rag-vs-long {qa_bad_json}", 2, "qa-bad.jsonl:2: invalid JSON"),
    C("eval rag-vs-long {qa_good} --backend openai --base-url ftp://host", 2, "--base-url"),
    # eval niah / passkey / list
    C("eval niah --answer-budget 0", 2, "--answer-budget"),
    C("eval niah --batch-size 0", 2, "--batch-size"),
    C("eval passkey --seed -1", 2, "--seed"),
    C("eval niah --out {a_file}", 2, "exists and is not a directory", ("a_file",)),
    C("eval passkey --lengths abc", 2, "lengths"),
    C("eval niah --backend openai", 2, "--base-url"),
    C("eval niah --config {nonutf8_yaml}", 2, "not valid UTF-8"),
    C("eval list --benchmark NoSuchBench", 2, "no task of that benchmark"),
    C("eval passkey --lengths 1e12 --allow-extrapolation", 2, "--lengths"),
    C("eval niah --lengths -5", 2, "positive"),
    C("eval niah --depths 0,150", 2, "outside 0-100"),
    C("eval niah --haystack {missing_dir}", 2, "haystack"),
    C("eval niah --model {missing_dir}", 2, "not found"),
    C("eval rag-vs-long {qa_good} --model {missing_dir}", 2, "not found"),
    # serve: option bounds and inputs are refused before the model loads
    C("serve --port 70000", 2, "--port"),
    C("serve --max-tokens-limit -1", 2, "--max-tokens-limit"),
    C("serve --max-request-bytes 0", 2, "--max-request-bytes"),
    C("serve --max-context -5", 2, "--max-context"),
    C("serve --max-queue -1", 2, "--max-queue"),
    C("serve --backend tgi", 2, "--backend"),
    C("serve --index {missing_dir}", 2, "not an index directory"),
    C("serve --model {missing_dir}", 2, "not found"),
    C("eval suite {suite_yaml} --out {a_file}", 2, "not a directory", ("a_file",)),
    C("eval suite {suite_no_models}", 2, "field 'models'"),
    C("eval suite {suite_no_tasks}", 2, "field 'tasks'"),
    C("eval suite {suite_missing_model}", 2, "field 'models[1].model':"),
    C("eval suite {suite_zero_samples}", 2, "field 'samples'"),
    C("eval suite {suite_neg_length}", 2, "field 'lengths.0'"),
    C("eval suite {suite_task_neg_length}", 2, "lengths"),
    C("eval suite {suite_bad_option}", 2, "unknown option 'bogus'"),
    C("eval suite {suite_file_task_option}", 2, "unknown option 'depths'"),
    C("eval suite {suite_unknown_task}", 2, "unknown task"),
    C("eval suite {suite_bad_workers}", 2, "field 'workers'"),
    C("eval suite {suite_yaml} --shard 3/2", 2, "--shard"),
    C("eval fetch", 2, "name at least one task"),
    C("eval fetch no_such_task", 2, "unknown task"),
    C("eval fetch --suite {missing}", 2, "not found"),
    C("eval niah --needle ''", 2, "needles"),
    C("eval niah --question ' '", 2, "question"),
    C("model min-base --head-dim 127 --length 4096", 2, "even integer"),
    C("model min-base --head-dim 128 --length 1e15", 2, "--length"),
    # --- rag, eval, serve (append above this line) ---------------------------------------------------------
]


def _ids(cases: list[Case]) -> list[str]:
    return [re.sub(r"\s+", " ", c.argv)[:60] for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_bad_input(case: Case, tmp_path, capsys, monkeypatch) -> None:
    """The command exits with the expected status and one error line naming the problem; nothing is clobbered."""
    from longkit.cli import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LONGKIT_DEBUG", raising=False)
    paths: dict[str, str] = {}
    for name in set(re.findall(r"\{(\w+)\}", case.argv)) | set(case.unchanged):
        paths[name] = str(build(name, tmp_path))
    before = {name: snapshot(tmp_path / paths[name]) for name in case.unchanged}
    argv = [part.format(**paths) for part in shlex.split(case.argv)]

    code = run(argv)

    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert code == case.code, f"exit {code}, stderr:\n{err}"
    assert lines, "no message on stderr"
    assert lines[-1].startswith("error: "), f"last line is not one error line:\n{err}"
    assert case.phrase.lower() in lines[-1].lower(), f"{case.phrase!r} not in {lines[-1]!r}"
    for name in case.unchanged:
        assert snapshot(tmp_path / paths[name]) == before[name], f"{name} was modified"
