"""Recipes: one YAML that chains `extend -> cpt -> sft` (`longkit train recipe CONFIG`).

Sections: `cpt:` (a CPT config; its `extend:` does the RoPE extension) and `sft:` (an SFT config whose
`model` defaults to the CPT run's final model). `prepare: python-docs` writes a small real-text
corpus and ChatQA-format SFT sets from the documentation that ships with Python, so the smoke
recipe runs on a fresh machine with no downloads; the CPT corpus is tokenized when it is missing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longkit.config import load_yaml, validate
from longkit.errors import ConfigError
from longkit.io import write_json

if TYPE_CHECKING:
    from longkit.data.config import DataConfig


def _python_docs() -> list[str]:
    from pydoc_data.topics import topics

    paras = []
    for k in sorted(topics):
        paras += [p.strip() for p in topics[k].split("\n\n") if len(p.strip()) > 80]
    return paras


def prepare_python_docs(out: Path) -> dict[str, str]:
    """Write corpus.jsonl (documents) and sft-*.jsonl (ChatQA rows) built from Python's bundled docs."""
    from pydoc_data.topics import topics

    out.mkdir(parents=True, exist_ok=True)
    files = {"corpus": out / "corpus.jsonl", "inst": out / "sft-inst.jsonl", "ctxqa": out / "sft-ctxqa.jsonl"}
    if all(p.exists() for p in files.values()):
        return {k: str(v) for k, v in files.items()}
    with open(files["corpus"], "w") as fh:
        for k in sorted(topics):
            fh.write(json.dumps({"text": topics[k], "source": "python-docs"}) + "\n")
    paras = _python_docs()
    with open(files["inst"], "w") as fh:
        for p in paras[:400]:
            first = p.split(".")[0].strip()
            fh.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": f"Repeat this sentence: {first}."},
                            {"role": "assistant", "content": f"{first}."},
                        ]
                    }
                )
                + "\n"
            )
    with open(files["ctxqa"], "w") as fh:
        for k in sorted(topics)[:80]:
            text = topics[k].strip()
            fh.write(
                json.dumps(
                    {
                        "context": text[:600],
                        "question": "Which topic does this documentation describe?",
                        "answer": f"It describes the Python topic '{k}'.",
                    }
                )
                + "\n"
            )
    return {k: str(v) for k, v in files.items()}


def check_recipe_corpus(data: dict[str, Any], model: str, where: str) -> DataConfig:
    """Refuse, before anything is written, a corpus or a data tokenizer that does not fit the model's tokenizer."""
    # a corpus from another tokenizer holds ids the model reads as other tokens
    from longkit.data.config import data_config_from_dict
    from longkit.data.fingerprint import tokenizer_fingerprint
    from longkit.data.reuse import check_corpus
    from longkit.models.load import load_tokenizer

    dcfg = data_config_from_dict(data, f"{where}: cpt.data")
    corpus = Path(dcfg.out) / "corpus"
    model_tok = load_tokenizer(model)
    if (corpus / "offsets.npy").exists():
        check_corpus(corpus, model_tok, model, specs=dcfg.sources or None, where=f"{where}: cpt.data")
        return dcfg
    if not dcfg.sources:
        raise ConfigError(f"{where}: cpt.data has no sources and {corpus} does not exist")
    tok = load_tokenizer(dcfg.tokenizer)
    n = len(tok)
    if len(model_tok) < n or tokenizer_fingerprint(model_tok, n) != tokenizer_fingerprint(tok):
        raise ConfigError(
            f"{where}: field 'cpt.data.tokenizer': '{dcfg.tokenizer}' (vocabulary {n}) is not the "
            f"tokenizer of cpt.model '{model}' (vocabulary {len(model_tok)}); the corpus must be "
            "tokenized with the model's tokenizer"
        )
    return dcfg


def ensure_corpus(data: dict[str, Any], model: str, where: str) -> None:
    """Tokenize the CPT corpus named by an inline data config when it is not there yet (checked first)."""
    from longkit.data.tokenize import tokenize_corpus
    from longkit.models.load import load_tokenizer

    dcfg = check_recipe_corpus(data, model, where)
    corpus = Path(dcfg.out) / "corpus"
    if not (corpus / "offsets.npy").exists():
        tokenize_corpus(
            dcfg.sources, load_tokenizer(dcfg.tokenizer), corpus, num_proc=dcfg.num_proc, tokenizer_name=dcfg.tokenizer
        )


def _check_model_exists(model: str, where: str, field: str, produced_by_cpt: bool) -> None:
    """Fail before any work when the model is a local directory that does not exist, saying how to make it."""
    from longkit.errors import InputError
    from longkit.models.load import resolve

    try:
        resolve(model)
    except InputError as exc:
        how = (
            f"it is the output of the recipe's cpt section: run `longkit train recipe {where} --only cpt` "
            "first, or set sft.model"
            if produced_by_cpt
            else "check the path, or produce it first (`longkit model extend`, `longkit train cpt`)"
        )
        raise ConfigError(f"{where}: field '{field}': {exc}; {how}") from None


def _check_recipe(raw: dict[str, Any], where: str, only: str | None) -> tuple[list[str], Path]:
    """Structure and both sections, checked before any work: a typo in sft must not wait for a long cpt to finish.
    Returns the sections to run and the output root."""
    from longkit.train.config import CPTConfig, SFTConfig

    unknown = set(raw) - {"name", "out", "prepare", "cpt", "sft"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)} (name, out, prepare, cpt, sft)")
    if only not in (None, "cpt", "sft"):
        raise ConfigError(f"--only {only}: expected cpt or sft")
    todo: list[str] = [k for k in ("cpt", "sft") if k in raw and only in (None, k)]
    if not todo:
        raise ConfigError(f"{where}: no {only or 'cpt or sft'} section to run")
    for k in todo:
        if not isinstance(raw[k], dict):
            raise ConfigError(f"{where}: field '{k}': expected a mapping, got {type(raw[k]).__name__}")
    if not isinstance(raw.get("out", ""), str):
        raise ConfigError(f"{where}: field 'out': expected a directory path")
    out = Path(raw.get("out", "runs/recipe"))
    if raw.get("prepare") and raw["prepare"] != "python-docs":
        raise ConfigError(f"{where}: field 'prepare': unknown value '{raw['prepare']}' (python-docs)")
    cpt_cfg = None
    if "cpt" in todo:
        cpt_cfg = validate(CPTConfig, {"out": str(out / "cpt"), **raw["cpt"]}, source=f"{where}: cpt")
    if "sft" in todo:
        cpt_raw = raw["cpt"] if isinstance(raw.get("cpt"), dict) else {}
        sft_model = raw["sft"].get("model", str(Path(cpt_raw.get("out", out / "cpt")) / "final"))
        sft_cfg = validate(
            SFTConfig, {"out": str(out / "sft"), **raw["sft"], "model": sft_model}, source=f"{where}: sft"
        )
        from longkit.sft.hub import require_cached

        require_cached(sft_cfg, f"{where}: sft")
    if cpt_cfg is not None:
        _check_model_exists(cpt_cfg.model, where, "cpt.model", produced_by_cpt=False)
        if isinstance(cpt_cfg.data, dict):
            check_recipe_corpus(cpt_cfg.data, cpt_cfg.model, where)
    return todo, out


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("_trainer", "log_history")}


def _run_cpt_section(raw: dict[str, Any], out: Path, where: str) -> dict[str, Any]:
    from longkit.train.config import CPTConfig
    from longkit.train.cpt import run_cpt

    cpt = dict(raw["cpt"])
    cpt.setdefault("out", str(out / "cpt"))
    cfg = validate(CPTConfig, cpt, source=f"{where}: cpt")
    if isinstance(cfg.data, dict):
        ensure_corpus(cfg.data, cfg.model, where)
    return run_cpt(cfg, where=f"{where}: cpt", retrain_changed=True)


def _run_sft_section(raw: dict[str, Any], out: Path, where: str, cpt_final: str | None) -> list[dict[str, Any]]:
    from longkit.train.config import SFTConfig
    from longkit.train.sft import run_sft

    sft = dict(raw["sft"])
    sft.setdefault("out", str(out / "sft"))
    if "model" not in sft:
        cpt_out = Path(raw.get("cpt", {}).get("out", out / "cpt")) / "final"
        sft["model"] = cpt_final or str(cpt_out)
    cfg = validate(SFTConfig, sft, source=f"{where}: sft")
    _check_model_exists(cfg.model, where, "sft.model", produced_by_cpt="model" not in raw["sft"])
    return run_sft(cfg, where=f"{where}: sft", retrain_changed=True)


def as_recipe(raw: dict[str, Any]) -> dict[str, Any]:
    """A recipe mapping: a recipe file as it is; a lone SFT config (it has `stages`) or CPT config (it has `data`)
    as a recipe of that one section, so the paper configs (configs/recipes/chatqa2-*.yaml) run as recipes too."""
    if not isinstance(raw, dict) or "cpt" in raw or "sft" in raw:
        return raw
    section = "sft" if "stages" in raw else "cpt" if "data" in raw else None
    if section is None:
        return raw  # neither: _check_recipe names what is missing
    out = raw.get("out")
    return {section: raw, **({"out": out} if isinstance(out, str) else {})}


def run_recipe(path: str | Path, only: str | None = None) -> dict[str, Any]:
    """Run a recipe file's sections in order; returns timings and summaries."""
    where = str(path)
    raw = as_recipe(load_yaml(path))
    todo, out = _check_recipe(raw, where, only)
    report: dict[str, Any] = {"recipe": where, "timings_s": {}}
    t_all = time.time()
    if raw.get("prepare"):
        prepare_python_docs(out / "inputs")
    cpt_final = None
    if "cpt" in todo:
        t = time.time()
        s = _run_cpt_section(raw, out, where)
        cpt_final = s["output"]
        report["cpt"] = _brief(s)
        report["timings_s"]["cpt"] = round(time.time() - t, 1)
    if "sft" in todo:
        t = time.time()
        report["sft"] = [_brief(s) for s in _run_sft_section(raw, out, where, cpt_final)]
        report["timings_s"]["sft"] = round(time.time() - t, 1)
    report["timings_s"]["total"] = round(time.time() - t_all, 1)
    write_json(out / "recipe_report.json", report)
    return report
