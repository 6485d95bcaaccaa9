"""LongBench's prompts and answer budgets are its official ones, typos included (THUDM/LongBench
config/dataset2prompt.json and config/dataset2maxlen.json @ f6227eb7a25cacbd96310aea2c59af003f8d8925, copied in
tests/eval/fixtures/longbench_config/)."""

from __future__ import annotations

import json
from pathlib import Path

from longkit.eval.tasks.longbench import LONGBENCH_MAXLEN, LONGBENCH_PROMPTS

OFFICIAL = Path(__file__).parent / "fixtures" / "longbench_config"


def test_every_english_prompt_is_the_official_string():
    official = json.loads((OFFICIAL / "dataset2prompt.json").read_text(encoding="utf-8"))
    assert set(LONGBENCH_PROMPTS) == set(official)
    for name, prompt in official.items():
        assert LONGBENCH_PROMPTS[name] == prompt, name


def test_narrativeqa_keeps_the_official_typo():
    # fidelity means the string the benchmark's numbers were measured with: "asconcisely", twice, not corrected
    prompt = LONGBENCH_PROMPTS["narrativeqa"]
    assert prompt.count("asconcisely") == 2 and "as concisely" not in prompt
    assert prompt.startswith("You are given a story, which can be either a novel or a movie script, and a question.")


def test_answer_budgets_are_the_official_maxlen():
    official = json.loads((OFFICIAL / "dataset2maxlen.json").read_text(encoding="utf-8"))
    assert LONGBENCH_MAXLEN == official
