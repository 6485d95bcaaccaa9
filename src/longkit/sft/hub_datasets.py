"""The SFT datasets longkit fetches by name: each dataset's repository, pinned revision and subsets, with the
file and the row converter of each subset (longkit.sft.hub fetches and converts them; the training config's
validator checks a blend's subsets here, so this module imports no config).

Datasets (files, revisions and row schemas as published on the Hub; schemas in longkit.sft.convert):

- nvidia/ChatQA-Training-Data, ChatQA 1.5's two-stage blend (Liu et al. 2024, arXiv:2401.10225), pinned at
  164f018cf5e7862ae5ef9c2b8ada47b07e3e3a31 (2024-06-04, the head of its history: "Upload train.json" to squad2.0
  after "Delete squad2.0", and NewsQA removed in 2daf20f). One `<subset>/train.json` per subset, except TAT-QA,
  published as two files (`tatqa/train_arithmetic.json`, `tatqa/train_others.json`) that the card's blend
  weighs separately (tatqa-arithmetic, tatqa-others). NewsQA is not distributed there any more: its folder
  holds only a README pointing to NewsQA's own download script, so a blend needs a local `path:` for it.
- nvidia/ChatQA2-Long-SFT-data, ChatQA 2's stage-3 additions (Xu et al. 2024, arXiv:2407.14482), pinned at
  7acef85b3b1c0fb6c088793f8bfbd7b237e14c5b (2024-09-09; the data files date from 198d3bd "add long_sft" and
  c538a45 "add NQA", the later commits only edit the README): `long_sft/long_sft_QA_train.json` and
  `NarrativeQA_131072/NarrativeQA_131072_QA_train.json` (the card's train splits).

Stage-2 instructions: the ChatQA-Training-Data card adds one to the user's turn per dataset type; the card
quotes them without a final period, longkit adds one (as ChatQA's evaluation prompts end theirs).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from longkit.sft.convert import RowConverter, chatqa_row, megatron_qa_row

SHORT_SPAN = "Answer the following question with a short span."
LONG_ANSWER = "Please give a full and complete answer for the question."
ARITHMETIC = "Answer the following question with a number from context or the math arithmetic."
SHORT_OR_LONG = "Answer the following question with a short span, or a full and complete answer."


@dataclass(frozen=True)
class HubSubset:
    """One subset: its file in the repository and the converter of its rows (or why it cannot be fetched)."""

    file: str | None
    convert: RowConverter
    unavailable: str | None = None


@dataclass(frozen=True)
class HubDataset:
    repo: str
    revision: str
    subsets: dict[str, HubSubset]


def _chatqa(file: str, instruction: str | None) -> HubSubset:
    return HubSubset(file, functools.partial(chatqa_row, instruction=instruction))


NEWSQA_GONE = (
    "NewsQA is not distributed in nvidia/ChatQA-Training-Data (removed in revision 2daf20f; newsqa/ holds only "
    "a README pointing to NewsQA's own download script): build it yourself and list it as a `path:` item"
)

DATASETS: dict[str, HubDataset] = {
    "nvidia/ChatQA-Training-Data": HubDataset(
        "nvidia/ChatQA-Training-Data",
        "164f018cf5e7862ae5ef9c2b8ada47b07e3e3a31",
        {
            "sft": _chatqa("sft/train.json", None),
            **{s: _chatqa(f"{s}/train.json", SHORT_SPAN) for s in ("drop", "narrativeqa", "quoref", "ropes")},
            **{s: _chatqa(f"{s}/train.json", SHORT_SPAN) for s in ("squad1.1", "squad2.0")},
            "newsqa": HubSubset(None, functools.partial(chatqa_row, instruction=SHORT_SPAN), NEWSQA_GONE),
            "tatqa-arithmetic": _chatqa("tatqa/train_arithmetic.json", ARITHMETIC),
            "tatqa-others": _chatqa("tatqa/train_others.json", SHORT_OR_LONG),
            "synthetic_convqa": _chatqa("synthetic_convqa/train.json", LONG_ANSWER),
        },
    ),
    "nvidia/ChatQA2-Long-SFT-data": HubDataset(
        "nvidia/ChatQA2-Long-SFT-data",
        "7acef85b3b1c0fb6c088793f8bfbd7b237e14c5b",
        {
            "long_sft": HubSubset("long_sft/long_sft_QA_train.json", megatron_qa_row),
            "NarrativeQA_131072": HubSubset("NarrativeQA_131072/NarrativeQA_131072_QA_train.json", megatron_qa_row),
        },
    ),
}


def check_subset(dataset: str, subset: str) -> HubSubset:
    """The registered subset; ValueError (for the config validator) naming the known datasets or subsets."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset '{dataset}'; datasets longkit can fetch by name: {', '.join(DATASETS)}")
    subsets = DATASETS[dataset].subsets
    if subset not in subsets:
        raise ValueError(f"unknown subset '{subset}' of {dataset}; known subsets: {', '.join(subsets)}")
    sub = subsets[subset]
    if sub.unavailable:
        raise ValueError(f"subset '{subset}' of {dataset}: {sub.unavailable}")
    return sub
