"""Memory, FLOP and parameter arithmetic for `longkit train plan`: a decoder-only model's shape in, bytes out.

Nothing here touches torch or the disk; every figure follows from the model's config.json and the run's settings.

What one GPU holds during a training step, as longkit trains (train/run.py `load_trainable` keeps float32 master
weights; bf16 runs use autocast on one GPU or under DDP, FSDP's bf16 param_dtype when sharded, DeepSpeed's bf16
engine under ZeRO; gradients and AdamW state stay float32 throughout):

* parameters 4 B, gradients 4 B, AdamW moments 2 x 4 B per parameter: 16 B, sharded per the strategy;
* bf16 working copies of the weights (autocast's per-forward cast cache, or FSDP's gathered layers);
* DDP's gradient buckets (a second float32 copy of the gradients when more than one process reduces);
* activations (per-layer formula in `layer_activation_bytes`), divided by the context-parallel degree;
* one chunk of logits of the chunked loss (train/loss.py) during its recomputation in the backward pass;
* a fixed allowance for the CUDA context, library workspaces and allocator fragmentation.

The peak is taken as the static state plus the forward/backward transients. Counting every gradient next to every
stored activation is an upper bound (gradients fill in as activations are freed), which a plan should err towards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from longkit.errors import ConfigError

GIB = 1024**3
SHARDINGS = ("fsdp", "zero3", "zero2", "ddp")
# CUDA context (~0.5-1 GiB with cuBLAS/cuDNN/NCCL workspaces) plus caching-allocator fragmentation: a flat 3 GiB.
GPU_ALLOWANCE_BYTES = 3 * GIB
# Measured on CPU as the rise over a process that already loaded the model: no context to allow for.
CPU_ALLOWANCE_BYTES = 0
MASTER_BYTES = 4  # float32 master weights, gradients and each AdamW moment
ADAM_STATES = 2
# model types whose q/k/v projections carry a bias although their config has no `attention_bias` key
QKV_BIAS_TYPES = ("qwen2", "qwen2_moe")
QK_NORM_TYPES = ("qwen3", "olmo2", "gemma3")


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a Llama-style decoder (Llama, Mistral, Qwen2/3, SmolLM2) read from config.json."""

    model_type: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    max_positions: int | None = None

    @classmethod
    def from_config(cls, cfg: dict[str, Any], where: str = "config.json") -> ModelShape:
        """Read the shape from a config.json mapping; a missing or non-positive dimension is a ConfigError."""
        text = cfg.get("text_config")  # multimodal wrappers keep the decoder's config one level down
        if isinstance(text, dict) and "num_hidden_layers" not in cfg:
            cfg = {**text, "tie_word_embeddings": cfg.get("tie_word_embeddings", text.get("tie_word_embeddings"))}
        need = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")
        missing = [k for k in need if not _positive_int(cfg.get(k))]
        if missing:
            raise ConfigError(f"{where}: not a decoder config this planner can read (missing or invalid {missing})")
        heads = int(cfg["num_attention_heads"])
        kv = cfg.get("num_key_value_heads") or heads
        hd = cfg.get("head_dim") or int(cfg["hidden_size"]) // heads
        if not _positive_int(kv) or not _positive_int(hd):
            raise ConfigError(f"{where}: invalid num_key_value_heads {kv!r} or head_dim {hd!r}")
        mtype = str(cfg.get("model_type", "llama"))
        attn_bias = bool(cfg.get("attention_bias", False))
        return cls(
            model_type=mtype,
            layers=int(cfg["num_hidden_layers"]),
            hidden=int(cfg["hidden_size"]),
            heads=heads,
            kv_heads=int(kv),
            head_dim=int(hd),
            intermediate=int(cfg["intermediate_size"]),
            vocab=int(cfg["vocab_size"]),
            # transformers' default for a config without the key is tied embeddings
            tied=bool(cfg.get("tie_word_embeddings", True)),
            qkv_bias=attn_bias or mtype in QKV_BIAS_TYPES,
            o_bias=attn_bias,
            mlp_bias=bool(cfg.get("mlp_bias", False)),
            qk_norm=mtype in QK_NORM_TYPES,
            max_positions=cfg.get("max_position_embeddings"),
        )

    @property
    def q_dim(self) -> int:
        """Width of the query projection (heads x head_dim; equals hidden for most models)."""
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of each of the key and value projections (grouped-query attention shrinks it)."""
        return self.kv_heads * self.head_dim

    def layer_parameters(self) -> int:
        """Parameters of one decoder layer: attention, SwiGLU MLP and two RMSNorm weights."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        attn = h * q + 2 * h * kv + q * h
        attn += (q + 2 * kv) * self.qkv_bias + h * self.o_bias + 2 * self.head_dim * self.qk_norm
        mlp = 3 * h * i + (2 * i + h) * self.mlp_bias
        return attn + mlp + 2 * h

    def parameters(self) -> int:
        """All parameters: embeddings, layers, final norm, and the output head unless tied to the embeddings."""
        emb = self.vocab * self.hidden
        return emb + self.layers * self.layer_parameters() + self.hidden + (0 if self.tied else emb)

    def matmul_parameters(self) -> int:
        """Parameters that take part in a matrix product per token: all but the embedding lookup (a tied head
        still multiplies), which is what the 6N FLOP rule counts."""
        return self.layers * self.layer_parameters() + self.hidden + self.vocab * self.hidden

    def as_dict(self) -> dict[str, Any]:
        """JSON view with the parameter count."""
        return {
            "model_type": self.model_type,
            "layers": self.layers,
            "hidden": self.hidden,
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "intermediate": self.intermediate,
            "vocab": self.vocab,
            "tied_embeddings": self.tied,
            "max_position_embeddings": self.max_positions,
            "parameters": self.parameters(),
        }


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


@dataclass(frozen=True)
class MemorySetting:
    """One step's shape on one GPU: sequence, micro-batch, precision, checkpointing, loss chunk and sharding."""

    seq_len: int
    micro_batch: int = 1
    precision: str = "bf16"  # "bf16" (autocast over float32 masters, as longkit trains on GPUs) or "fp32"
    gradient_checkpointing: bool = False
    loss_chunk_size: int = 4096
    sharding: str = "fsdp"
    gpus: int = 1
    cp: int = 1
    device: str = "cuda"

    def __post_init__(self) -> None:
        if self.sharding not in SHARDINGS:
            raise ConfigError(f"--sharding must be one of {', '.join(SHARDINGS)}, got '{self.sharding}'")
        if self.precision not in ("bf16", "fp32"):
            raise ConfigError(f"--precision must be bf16 or fp32, got '{self.precision}'")

    @property
    def compute_bytes(self) -> int:
        """Bytes of a matmul output / attention input: 2 under bf16 autocast, 4 in float32."""
        return 2 if self.precision == "bf16" else 4

    @property
    def mode(self) -> str:
        """How the forward computes: 'fp32'; 'bf16' when the weights themselves are bf16 during compute (FSDP's
        param_dtype bf16, which accelerate sets under bf16 mixed precision; DeepSpeed's bf16 engine) - over more
        than one GPU; else 'autocast' (float32 weights, autocast casts each matmul's inputs: one GPU, or DDP)."""
        if self.precision == "fp32":
            return "fp32"
        return "bf16" if self.gpus > 1 and self.sharding != "ddp" else "autocast"

    @property
    def deepspeed(self) -> bool:
        """DeepSpeed ZeRO over several GPUs (its bf16 engine keeps bf16 weights and a float32 master copy)."""
        return self.sharding in ("zero2", "zero3") and self.gpus > 1

    @property
    def tokens_per_gpu(self) -> int:
        """Tokens of one micro-batch that one GPU holds activations for (the sequence is split over cp ranks)."""
        return -(-self.seq_len * self.micro_batch // self.cp)


def layer_activation_bytes(shape: ModelShape, mode: str) -> int:
    """Bytes one decoder layer keeps for its backward pass, per token, under a compute `mode` (see
    MemorySetting.mode).

    Adapted from Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models"
    (arXiv:2205.05198, Sec. 4.1: 34·s·b·h + 5·a·s²·b bytes per GPT layer), by counting the tensors autograd saves
    in a transformers Llama layer:

    * no s² term: SDPA/FlashAttention save only q, k, v, the output and a float32 log-sum-exp per head;
    * no dropout masks (Llama-style models train without dropout);
    * grouped-query attention: k and v are kv_heads x head_dim wide; o_proj saves its own contiguous input;
    * SwiGLU MLP: gate output, silu(gate), up output and their product (4 x intermediate);
    * RMSNorm (computed in float32) keeps its float32 input and normalised tensor; with bf16 weights also the
      normalised tensor cast back to bf16;
    * the projections after a norm share one saved input, except under autocast over float32 weights, where each
      projection saves its own bf16 cast (3 for q/k/v, 2 for gate/up).

    Per token (h hidden, q = heads·head_dim, kv = kv_heads·head_dim, i intermediate), a = 2 (bf16) or 4 (fp32):
      autocast  2·8h (norms) + 5·2h (casts)      + a·(3q + 2kv) + 4·heads + 4·a·i
      bf16      2·10h (norms) + 2·2h (inputs)    + ...
      fp32      2·8h (norms) + 2·4h (inputs)     + ...
    """
    h = shape.hidden
    a = 4 if mode == "fp32" else 2
    norms_and_inputs = {
        "autocast": 2 * 8 * h + 5 * 2 * h,
        "bf16": 2 * 10 * h + 2 * 2 * h,
        "fp32": 2 * 8 * h + 2 * 4 * h,
    }
    attention = a * (3 * shape.q_dim + 2 * shape.kv_dim) + 4 * shape.heads
    mlp = 4 * a * shape.intermediate
    return norms_and_inputs[mode] + attention + mlp


def residual_bytes(mode: str) -> int:
    """Bytes per element of the residual stream (a checkpointed layer's stored input): float32 unless the weights
    themselves are bf16 during compute."""
    return 2 if mode == "bf16" else 4


def outside_layer_bytes(shape: ModelShape, mode: str) -> int:
    """Per token, outside the layers: the final norm (float32 input + normalised, as above), its output that the
    chunked loss keeps as its checkpointed input, and the rotary cos/sin tables shared by all layers."""
    return 8 * shape.hidden + residual_bytes(mode) * (shape.hidden + 2 * shape.head_dim)


def logit_bytes_per_element(precision: str) -> int:
    """Bytes per (token, vocab entry) while one chunk's loss is recomputed and differentiated: the logits, their
    float32 copy (bf16 only), the log-probabilities cross-entropy saves, and the float32 gradient."""
    return 12 + (2 if precision == "bf16" else 0)


def activation_bytes(shape: ModelShape, s: MemorySetting, checkpointing: bool) -> int:
    """Activation bytes on one GPU for one micro-batch.

    Without checkpointing every layer keeps its full set; with it (transformers checkpoints each decoder layer)
    each layer keeps only its float32 input, and one layer's full set exists while it is recomputed."""
    per_layer = layer_activation_bytes(shape, s.mode)
    stored_input = residual_bytes(s.mode) * shape.hidden
    per_token = (
        shape.layers * stored_input + per_layer if checkpointing else shape.layers * per_layer
    ) + outside_layer_bytes(shape, s.mode)
    return per_token * s.tokens_per_gpu


def logits_bytes(shape: ModelShape, s: MemorySetting, chunked: bool = True) -> int:
    """Logit memory: one loss chunk of loss_chunk_size tokens (chunked), or the whole micro-batch (unchunked)."""
    rows = min(s.loss_chunk_size, s.tokens_per_gpu) if chunked else s.tokens_per_gpu
    return rows * shape.vocab * logit_bytes_per_element(s.precision)


def _shards(s: MemorySetting) -> tuple[int, int, int]:
    """How many ways parameters, gradients and optimizer state are split (ZeRO stages; FSDP = ZeRO-3)."""
    n = s.gpus
    return {"fsdp": (n, n, n), "zero3": (n, n, n), "zero2": (1, n, n), "ddp": (1, 1, 1)}[s.sharding]


def working_copy_bytes(shape: ModelShape, s: MemorySetting) -> int:
    """Unsharded weights that exist during forward/backward besides the float32 masters.

    Sharded parameters (fsdp/zero3, more than one GPU) are gathered a layer at a time, with the next layer
    prefetched, plus the root unit (embeddings / head): 2 layers + vocab x hidden, in the compute dtype. Under
    autocast over float32 weights, a bf16 copy of every weight is cached for the forward (2 B per parameter).
    ZeRO-2's bf16 weights are already whole on every GPU (counted under parameters)."""
    if s.sharding in ("fsdp", "zero3") and s.gpus > 1:
        return s.compute_bytes * (2 * shape.layer_parameters() + shape.vocab * shape.hidden)
    return 2 * shape.parameters() if s.mode == "autocast" else 0


def memory_breakdown(shape: ModelShape, s: MemorySetting) -> dict[str, int]:
    """Every term of the per-GPU peak in bytes, the peak itself under `total`, both checkpointing variants."""
    p = shape.parameters()
    sp, sg, so = _shards(s)
    # DeepSpeed's bf16 engine: bf16 weights (sharded under ZeRO-3 only) and a sharded float32 master copy
    weights = (
        (2 * p // sp + MASTER_BYTES * p // so) if s.deepspeed and s.precision == "bf16" else MASTER_BYTES * p // sp
    )
    terms = {
        "parameters": weights,
        "gradients": MASTER_BYTES * p // sg,
        "optimizer": ADAM_STATES * MASTER_BYTES * p // so,
        # DDP (accelerate's default gradient_as_bucket_view=False) reduces through flat buckets: a second copy
        "ddp_buckets": MASTER_BYTES * p if s.sharding == "ddp" and s.gpus > 1 else 0,
        "working_weights": working_copy_bytes(shape, s),
        "activations_no_checkpointing": activation_bytes(shape, s, checkpointing=False),
        "activations_checkpointing": activation_bytes(shape, s, checkpointing=True),
        "logits_chunked": logits_bytes(shape, s, chunked=True),
        "logits_unchunked": logits_bytes(shape, s, chunked=False),
        "allowance": GPU_ALLOWANCE_BYTES if s.device == "cuda" else CPU_ALLOWANCE_BYTES,
    }
    terms["activations"] = terms[
        "activations_checkpointing" if s.gradient_checkpointing else "activations_no_checkpointing"
    ]
    terms["total"] = peak_bytes(terms)
    return terms


def static_bytes(terms: dict[str, int]) -> int:
    """What lives through the whole step: masters, gradients, optimizer state, DDP buckets, allowance."""
    return sum(terms[k] for k in ("parameters", "gradients", "optimizer", "ddp_buckets", "allowance"))


def peak_bytes(terms: dict[str, int]) -> int:
    """Static state plus the forward/backward transients (working weights, activations, one logit chunk).

    The optimizer step adds nothing: transformers' default optimizer on torch >= 2.8 is the fused AdamW, which
    updates in place, and by then the activations are freed."""
    return static_bytes(terms) + terms["working_weights"] + terms["activations"] + terms["logits_chunked"]


def smallest_cp(shape: ModelShape, s: MemorySetting, budget: int) -> tuple[int | None, dict[int, int]]:
    """The smallest context-parallel degree (1, 2, 4, ... dividing the GPU count, with seq_len divisible by 2·cp
    for load-balanced sharding) whose per-GPU peak fits `budget` bytes; None when none does. Also every tried
    degree's peak."""
    tried: dict[int, int] = {}
    cp = 1
    while cp <= s.gpus:
        if s.gpus % cp == 0 and (cp == 1 or s.seq_len % (2 * cp) == 0):
            peak = memory_breakdown(shape, _with_cp(s, cp))["total"]
            tried[cp] = peak
            if peak <= budget:
                return cp, tried
        cp *= 2
    return None, tried


def _with_cp(s: MemorySetting, cp: int) -> MemorySetting:
    from dataclasses import replace

    return replace(s, cp=cp)


def step_flops_per_token(shape: ModelShape, seq_len: int) -> float:
    """Training FLOPs per token: 6·N (N: matmul parameters, forward 2N + backward 4N) plus attention
    12·layers·(heads·head_dim)·seq_len (QK^T and AV, 4·d·s forward, x3 with backward).

    The attention term counts the full s x s score matrix, not half of it for the causal mask: that is the
    convention MFU figures are quoted in (Chowdhery et al. 2022, PaLM, App. B), so the MFU assumption and this
    count stay consistent. Recomputation under activation checkpointing is not counted (model FLOPs, not
    hardware FLOPs)."""
    return 6.0 * shape.matmul_parameters() + 12.0 * shape.layers * shape.q_dim * seq_len
