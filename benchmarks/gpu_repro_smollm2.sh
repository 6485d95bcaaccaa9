#!/usr/bin/env bash
# Small-scale reproduction of the papers' long-context recipe on one GPU, in one command:
#
#   bash benchmarks/gpu_repro_smollm2.sh CORPUS.jsonl [OUT_DIR]
#
# SmolLM2-135M (8K, rope_theta 1e5) -> 32K: raise the RoPE base (ABF) to at least longkit's minimum base for
# 32K at head dim 64, then continued pretraining at 32K on the same long documents twice - plain packing
# (ChatQA 2: documents joined by <s>, causal across them) and Untie the Knots (UtK, p = 0.8) - for the same
# number of tokens (TOKENS, default 20M), and NIAH + RULER niah_single_2 at 8K-32K before and after.
#
# CORPUS.jsonl: one {"text": ...} per line, long documents (books, papers, code; most > 8K tokens), at least
# TOKENS tokens in all. GPU machines here have no network: bring the file (e.g. a PG-19 or SlimPajama slice).
# Writes OUT_DIR/summary.json (scores per model x task x length, training losses and wall times).
# Needs CUDA; on a machine without it the first step says so and stops.
set -euo pipefail
CORPUS=${1:?usage: bash benchmarks/gpu_repro_smollm2.sh CORPUS.jsonl [OUT_DIR]}
OUT=${2:-runs/repro-smollm2}
TOKENS=${TOKENS:-20000000}
SEQ=${SEQ:-32768}
PY=${PY:-.venv/bin/python}
LK=${LK:-.venv/bin/longkit}
export HF_HUB_OFFLINE=1
mkdir -p "$OUT"

$PY - <<'EOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("error: benchmarks/gpu_repro_smollm2.sh needs a CUDA GPU (32K continued pretraining)")
EOF
test -s "$CORPUS" || { echo "error: $CORPUS: corpus file not found or empty" >&2; exit 2; }

# 1) The RoPE base: at least the minimum base for SEQ at head dim 64 (Men et al. 2024), rounded up.
BASE=$($LK model min-base --head-dim 64 --length "$SEQ" --json | $PY -c \
  'import json,sys,math; d=json.load(sys.stdin); b=d["stable_min_base"]; print(f"{10**math.ceil(math.log10(b)):.0e}")')
echo "ABF base for $SEQ tokens: $BASE"

# 2) Data: one tokenized corpus, two transforms (plain / UtK) over it.
STEPS=$(( (TOKENS + SEQ - 1) / SEQ ))
for T in plain utk; do
  cat > "$OUT/data-$T.yaml" <<EOF
tokenizer: smollm2-135m-instruct
out: $OUT/data
sources: [$CORPUS]
seq_len: $SEQ
separator: "<s>"
transform: $T
intra_doc_attention: false
upsample: {enabled: true, threshold: 4096, keep_short: 0.1}
seed: 0
EOF
  [ "$T" = utk ] && cat >> "$OUT/data-$T.yaml" <<EOF
utk:
  preset: paper
  probability: 0.8
EOF
  cat > "$OUT/cpt-$T.yaml" <<EOF
model: smollm2-135m-instruct
out: $OUT/cpt-$T
extend: {method: abf, base: $BASE, max_length: $SEQ}
data: $OUT/data-$T.yaml
add_special_tokens: true
train:
  learning_rate: 2.0e-5
  min_lr: 2.0e-6
  warmup_steps: 20
  max_steps: $STEPS
  per_device_batch_size: 1
  grad_accum: 1
  precision: bf16
  gradient_checkpointing: true
  attn_implementation: auto
  loss_chunk_size: 8192
  save_steps: 200
  logging_steps: 10
  dataloader_num_workers: 2
EOF
done
[ -f "$OUT/data/corpus/offsets.npy" ] || $LK data build "$OUT/data-plain.yaml"

# 3) Train both at equal tokens (STEPS x SEQ each); resumable: a rerun continues from the last checkpoint.
for T in plain utk; do /usr/bin/time -v $LK train cpt "$OUT/cpt-$T.yaml" 2> "$OUT/cpt-$T.time" | tee "$OUT/cpt-$T.log"; done

# 4) Evaluate before (the 8K model, extrapolating) and after (both 32K models): NIAH and RULER niah_single_2.
cat > "$OUT/suite.yaml" <<EOF
name: SmolLM2-135M 8K -> 32K, plain vs UtK at equal tokens
models:
  - {name: base-8k, model: smollm2-135m-instruct, backend: hf, batch_size: 1}
  - {name: abf-plain, model: $OUT/cpt-plain/final, backend: hf, batch_size: 1}
  - {name: abf-utk, model: $OUT/cpt-utk/final, backend: hf, batch_size: 1}
lengths: [8192, 16384, 24576, 32768]
allow_extrapolation: true   # the 8K model is measured past its window too
samples: 10
seed: 42
tasks:
  - niah_single_2
  - name: passkey
    options: {depths: [0, 25, 50, 75, 100]}
out: $OUT/eval
EOF
$LK eval suite "$OUT/suite.yaml" --quiet | tee "$OUT/eval.log"
for M in smollm2-135m-instruct "$OUT/cpt-plain/final" "$OUT/cpt-utk/final"; do
  TAG=$(basename "$(dirname "$M")")_$(basename "$M")
  $LK eval niah --model "$M" --lengths 8192,16384,24576,32768 --depths linspace:0:100:5 --allow-extrapolation \
    --out "$OUT/niah-$TAG" | tee -a "$OUT/niah.log"
done

$PY - "$OUT" <<'EOF'
import json, sys, glob, os
out = sys.argv[1]
res = {"suite": json.load(open(f"{out}/eval/suite.json")) if os.path.exists(f"{out}/eval/suite.json") else None,
       "niah": {p.split("niah-")[-1]: json.load(open(f"{p}/summary.json"))["by"].get("length")
                for p in glob.glob(f"{out}/niah-*") if os.path.exists(f"{p}/summary.json")},
       "train": {t: {k: v for k, v in json.load(open(f"{out}/cpt-{t}/summary.json")).items()
                     if k in ("steps", "first_loss", "last_loss", "wall_s", "tokens_per_step")}
                 for t in ("plain", "utk") if os.path.exists(f"{out}/cpt-{t}/summary.json")}}
json.dump(res, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(res["train"], indent=2))
EOF
echo "summary: $OUT/summary.json"
