"""Reusing a tokenized corpus: its ids mean tokens only for the tokenizer that produced them.

A corpus's meta.json records what produced it: the tokenizer's name, vocabulary size and fingerprint
(`longkit.data.fingerprint`), and the source specs. `data build` reuses a corpus only when all of them
match (else it tokenizes again); training refuses a corpus another tokenizer or other sources produced
(`check_corpus`), rather than train on ids that mean other tokens.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longkit.data.fingerprint import tokenizer_fingerprint
from longkit.data.source_spec import SourceSpec
from longkit.data.sources import TokenizedCorpus
from longkit.errors import ConfigError, InputError

REBUILD = "rebuild it with `longkit data build`"


@dataclass(frozen=True)
class CorpusOrigin:
    """What produced a corpus, as its meta.json records it (older corpora lack the fingerprint)."""

    tokenizer: str
    vocab_size: int | None
    sha256: str | None
    specs: list[dict[str, Any]] | None

    @classmethod
    def read(cls, corpus_dir: str | Path) -> CorpusOrigin | None:
        """The record in corpus_dir/meta.json; None when there is no readable record."""
        try:
            meta = json.loads((Path(corpus_dir) / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict):
            return None
        vocab, sha, specs = meta.get("vocab_size"), meta.get("tokenizer_sha256"), meta.get("specs")
        return cls(
            tokenizer=str(meta.get("tokenizer") or ""),
            vocab_size=vocab if isinstance(vocab, int) else None,
            sha256=sha if isinstance(sha, str) and sha else None,
            specs=specs if isinstance(specs, list) else None,
        )

    def describe(self) -> str:
        """The producing tokenizer in a few words: name, vocabulary size, fingerprint prefix."""
        name = f"'{self.tokenizer}'" if self.tokenizer else "an unnamed tokenizer"
        sha = f", sha256 {self.sha256[:12]}" if self.sha256 else ", no fingerprint recorded"
        return f"{name} (vocabulary {self.vocab_size if self.vocab_size is not None else '?'}{sha})"


def spec_records(specs: Sequence[SourceSpec]) -> list[dict[str, Any]]:
    """Source specs as meta.json stores them (JSON round trip: tuples become lists)."""
    records: list[dict[str, Any]] = json.loads(json.dumps([s.__dict__ for s in specs]))
    return records


def tokenizer_mismatch(origin: CorpusOrigin, tokenizer: Any, name: str) -> str | None:
    """Why this tokenizer is not the one that produced the corpus; None when it is (or only appended tokens)."""
    have = len(tokenizer)
    if origin.sha256 is not None and origin.vocab_size is not None:
        if have >= origin.vocab_size and tokenizer_fingerprint(tokenizer, origin.vocab_size) == origin.sha256:
            return None
        mine = tokenizer_fingerprint(tokenizer)[:12]
        return f"it was tokenized with {origin.describe()}, not with '{name}' (vocabulary {have}, sha256 {mine})"
    # An older corpus: only the name and the vocabulary size can tell.
    if origin.tokenizer == name and (origin.vocab_size is None or origin.vocab_size <= have):
        return None
    return (
        f"it was tokenized with {origin.describe()}, not with '{name}' (vocabulary {have}); it records no "
        "tokenizer fingerprint (an older build), so only names and vocabulary sizes could be compared"
    )


def specs_mismatch(origin: CorpusOrigin, specs: Sequence[SourceSpec]) -> str | None:
    """Why the corpus was not built from these sources; None when it was."""
    if origin.specs == spec_records(specs):
        return None
    was = ", ".join(str(s.get("path")) for s in origin.specs or [] if isinstance(s, dict)) or "unrecorded sources"
    return f"it was built from {was}, not from {', '.join(s.path for s in specs)} (or with other source settings)"


def check_corpus(
    corpus_dir: str | Path,
    tokenizer: Any,
    tokenizer_name: str,
    specs: Sequence[SourceSpec] | None = None,
    where: str = "corpus",
) -> CorpusOrigin:
    """Refuse, in one line naming both tokenizers, a corpus another tokenizer (or, given specs, other sources) made."""
    corpus_dir = Path(corpus_dir)
    origin = CorpusOrigin.read(corpus_dir)
    if origin is None:
        raise ConfigError(
            f"{where}: {corpus_dir} has no readable meta.json, so which tokenizer produced its ids "
            f"cannot be checked; {REBUILD}"
        )
    why = tokenizer_mismatch(origin, tokenizer, tokenizer_name) or (specs_mismatch(origin, specs) if specs else None)
    if why:
        raise ConfigError(
            f"{where}: the corpus at {corpus_dir} does not fit this run: {why}; {REBUILD} "
            "(with the model's tokenizer and the config's sources)"
        )
    return origin


def corpus_is_current(
    corpus_dir: str | Path,
    tokenizer: Any,
    tokenizer_name: str,
    specs: Sequence[SourceSpec],
    verify: bool = False,
    warn: Callable[[str], None] | None = None,
) -> bool:
    """Whether `data build` can reuse corpus_dir: same tokenizer and sources, undamaged (SHA-256s with verify)."""
    # a stale or damaged corpus is tokenized again, so this says why through warn and never raises
    corpus_dir = Path(corpus_dir)
    if not (corpus_dir / "tokens.bin").exists():
        return False
    origin = CorpusOrigin.read(corpus_dir)
    if origin is None:
        return False
    why = tokenizer_mismatch(origin, tokenizer, tokenizer_name) or specs_mismatch(origin, specs)
    if why:
        if warn is not None:
            warn(f"corpus: {corpus_dir}: {why}; tokenizing again")
        return False
    try:
        TokenizedCorpus(corpus_dir, verify=verify)  # a damaged corpus is redone
    except InputError as exc:
        if warn is not None:
            warn(f"warning: {exc}; tokenizing again")
        return False
    return True
