"""BABILong (Kuratov et al., NeurIPS 2024): bAbI facts hidden in PG-19 text, one task per bAbI task (qa1..qa20),
each at the context lengths its Hub data publishes, asked and scored as booydar/babilong asks and scores them.

Official code (booydar/babilong, every file below unchanged at 7a6efee29f5cac03c3c410e6799c80fd2ffe3610):
- babilong/prompts.py@ffa075fb7aff504275037efc04d3aeaa5b1f65b0: DEFAULT_TEMPLATE (TASK_TEMPLATE, then
  USER_TEMPLATE) and DEFAULT_PROMPTS (instruction, in-context examples, post_prompt per task), verbatim with their
  typos (qa1's "Judith come back", qa2's "question.You", the examples of qa10-qa16 and qa20 ending in "<context>\n",
  qa17/qa18's "</example><example>"); get_formatted_input fills the template with str.format, the context stripped,
  and strips the result.
- scripts/run_model_on_babilong.py@b65e2fe4a18ef93bf0089895ec003ae9a765f865: instruction, examples and post_prompt
  all on (every published run uses them; options switch each off, as its --use_* flags do, to the empty string),
  the prompt as the user turn of the model's chat template, greedy decoding, max_new_tokens 20, the answer stripped.
- babilong/metrics.py@93d7bfe67ad008b5825b56e728ecf0fbec60a6b0: TASK_LABELS and compare_answers, the score (1 or 0):
  the answer lowercased and cut at its first '.', '<context>' and '<example>' (and at 'Question', which after
  lowercasing never matches), then the task's labels found in it by substring, less those named in the question,
  must be exactly the target (qa8's 'apple,milk': exactly its parts). Quirks kept: qa7's target 'none' never
  scores ('one' is in 'none'), and a 'no' inside 'not' or 'know' counts as the label 'no'. (babilong_utils.py's
  older compare_answers, a bare substring test, is not the one the results use.)
- babilong/collect_results.py@4066d5f70720a917b26bdf39e7748f94c7e3e45e: accuracy = 100 x correct / rows, per task
  and length; the benchmark's average is over qa1-qa5 only, so only those five form the "BABILong" average.

Data, fetched by name (option `dataset`): `RMT-team/babilong` (default; 100 rows per task and length), file
`data/<task>/<length>.json`, a JSON array of {"input", "question", "target"} (data/create_tasks.py writes it with
json.dump); `RMT-team/babilong-1k-samples` (1000 rows), file `<length>/<task>-00000-of-00001.parquet`. Published
lengths: qa1-qa5 0k-1M and 10M, qa6-qa10 0k-1M, qa11-qa20 0k (babilong); qa1-qa5 0k-128k, qa6-qa20 0k (1k samples).
A task entry's `levels:` names lengths by their labels (0k, 1k, ..., 128k, 1M, 10M); without it the suite's `lengths`
map onto them (4096 or 4000 -> 4k, 1048576 or 1000000 -> 1M). A length not published is refused in one line naming
the published ones. Each sample's length is its published length label, in tokens as LV-Eval's levels are
(4k -> 4096, 1M -> 1048576, 0k -> 0); meta 'level' keeps the label. `longkit eval fetch qa1` fetches the 0k file;
a suite fetches each length it runs. A local copy (`data.babilong` or a task's `path`) is a directory in either
published layout (or create_tasks.py's `<task>/<length>.json`).

Differences, deliberately: a prompt longer than the model's window is cut in the middle (counted in the report),
where the official scripts only run the lengths a model takes; the system prompt some official scripts pass through
the chat template (e.g. "You are a helpful assistant." for Qwen) is not sent; the official score of a task is the
mean over all its rows, which is collect_results' mean over lengths when every length has the same number of rows
(always so in RMT-team/babilong; not quite in the 1k-sample set, whose files hold 999 or 1000 rows, fewer at 1k);
the suite averages qa1-qa5 over each task's overall score, so the per-length average row of collect_results is not
in suite.json (each task's by_group has its per-length accuracy).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from longkit.errors import ConfigError, InputError
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.files import FileTask, file_kwargs
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec

_CODE = OfficialCode("booydar/babilong", "scripts/run_model_on_babilong.py", "b65e2fe4a18ef93bf0089895ec003ae9a765f865")

# prompts.py's DEFAULT_TEMPLATE: TASK_TEMPLATE + "\n\n" + USER_TEMPLATE
TEMPLATE = "{instruction}\n\n{examples}\n\n{post_prompt}\n\n<context>\n{context}\n</context>\n\nQuestion: {question}"
MAX_NEW_TOKENS = 20  # run_model_on_babilong.py's generate_kwargs


class Prompt(NamedTuple):
    """One task's entry of DEFAULT_PROMPTS."""

    instruction: str
    examples: str
    post_prompt: str


PROMPTS: dict[str, Prompt] = {
    "qa1": Prompt(
        "I will give you context with the facts about positions of different persons hidden in some random text and a question. You need to answer the question based only on the information from the facts. If a person was in different locations, use the latest location to answer the question.",
        "<example>\nCharlie went to the hallway. Judith come back to the kitchen. Charlie travelled to balcony. Where is Charlie?\nAnswer: The most recent location of Charlie is balcony.\n</example>\n\n<example>\nAlan moved to the garage. Charlie went to the beach. Alan went to the shop. Rouse travelled to balcony. Where is Alan?\nAnswer: The most recent location of Alan is shop.\n</example>",
        "Always return your answer in the following format: The most recent location of ’person’ is ’location’. Do not write anything else after that.",
    ),
    "qa2": Prompt(
        "I give you context with the facts about locations and actions of different persons hidden in some random text and a question.You need to answer the question based only on the information from the facts.\nIf a person got an item in the first location and travelled to the second location the item is also in the second location. If a person dropped an item in the first location and moved to the second location the item remains in the first location.",
        "<example>\nCharlie went to the kitchen. Charlie got a bottle. Charlie moved to the balcony. Where is the bottle?\nAnswer: The bottle is in the balcony.\n</example>\n<example>\nAlan moved to the garage. Alan got a screw driver. Alan moved to the kitchen. Where is the screw driver?\nAnswer: The screw driver is in the kitchen.\n</example>",
        "Always return your answer in the following format: The ’item’ is in ’location’. Do not write anything else after that.",
    ),
    "qa3": Prompt(
        "I give you context with the facts about locations and actions of different persons hidden in some random text and a question. You need to answer the question based only on the information from the facts.\nIf a person got an item in the first location and travelled to the second location the item is also in the second location. If a person dropped an item in the first location and moved to the second location the item remains in the first location.",
        "<example>\nJohn journeyed to the bedroom. Mary grabbed the apple. Mary went back to the bathroom. Daniel journeyed to the bedroom. Daniel moved to the garden. Mary travelled to the kitchen. Where was the apple before the kitchen?\nAnswer: Before the kitchen the apple was in the bathroom.\n</example>\n<example>\nJohn went back to the bedroom. John went back to the garden. John went back to the kitchen. Sandra took the football. Sandra travelled to the garden. Sandra journeyed to the bedroom. Where was the football before the bedroom?\nAnswer: Before the bedroom the football was in the garden.\n</example>",
        "Always return your answer in the following format: Before the $location_1$ the $item$ was in the $location_2$. Do not write anything else after that.",
    ),
    "qa4": Prompt(
        "I will give you context with the facts about different people, their location and actions, hidden in some random text and a question. You need to answer the question based only on the information from the facts.",
        "<example>\nThe hallway is south of the kitchen. The bedroom is north of the kitchen. What is the kitchen south of?\nAnswer: bedroom\n</example>\n<example>\nThe garden is west of the bedroom. The bedroom is west of the kitchen. What is west of the bedroom?\nAnswer: garden\n</example>",
        "Your answer should contain only one word - location. Do not write anything else after that.",
    ),
    "qa5": Prompt(
        "I will give you context with the facts about locations and their relations hidden in some random text and a question. You need to answer the question based only on the information from the facts.",
        "<example>\nMary picked up the apple there. Mary gave the apple to Fred. Mary moved to the bedroom. Bill took the milk there. Who did Mary give the apple to?\nAnswer: Fred\n</example>\n<example>\nJeff took the football there. Jeff passed the football to Fred. Jeff got the milk there. Bill travelled to the bedroom. Who gave the football?\nAnswer: Jeff\n</example>\n<example>\nFred picked up the apple there. Fred handed the apple to Bill. Bill journeyed to the bedroom. Jeff went back to the garden. What did Fred give to Bill?\nAnswer: apple\n</example>",
        "Your answer should contain only one word. Do not write anything else after that. Do not explain your answer.",
    ),
    "qa6": Prompt(
        "I will give you context with the facts about people and their locations hidden in some random text and a question. You need to answer the question based only on the information from the facts. If a person was in different locations, use the latest location the person was in to answer the question.",
        "<example>\nJohn travelled to the hallway. John travelled to the garden. Is John in the garden?\nAnswer: yes\n</example>\n<example>\nMary went to the office. Daniel journeyed to the hallway. Mary went to the bedroom. Sandra went to the garden. Is Mary in the office?\nAnswer: no\n</example>\n",
        "Your answer should contain only one word - $yes$ or $no$. Do not write anything else after that. Do not explain your answer.",
    ),
    "qa7": Prompt(
        "I will give you context with the facts about people and objects they carry, hidden in some random text and a question. You need to answer the question based only on the information from the facts.",
        "<example>\nDaniel went to the bedroom. Daniel got the apple there. How many objects is Daniel carrying?\nAnswer: one\n</example>\n<example>\nMary grabbed the apple there. Mary gave the apple to John. How many objects is Mary carrying?\nAnswer: none\n</example>\n<example>\nSandra travelled to the hallway. Sandra picked up the milk there. Sandra took the apple there. Mary travelled to the garden. How many objects is Sandra carrying?\nAnswer: two\n</example>\n",
        "Your answer should contain only one word - $none$ or $number_of_objects$. Do not write anything else after that. Do not explain your answer.",
    ),
    "qa8": Prompt(
        "I will give you context with the facts about people and objects they carry, hidden in some random text and a question. You need to answer the question based only on the information from the facts.",
        "<example>\nSandra travelled to the garden. Mary grabbed the milk there. What is Mary carrying?\nAnswer: milk\n</example>\n<example>\nMary travelled to the kitchen. Sandra travelled to the office. John travelled to the office. Sandra discarded the milk there. What is Sandra carrying?\nAnswer: nothing\n</example>\n<example>\nDaniel grabbed the apple there. Mary went to the office. Daniel moved to the garden. Daniel grabbed the milk there. Mary went to the kitchen. What is Daniel carrying?\nAnswer: apple,milk\n</example>\n",
        "Your answer should contain only one or two words: $nothing$ or $object$ or $object_1$, $object_2$. Do not write anything else. Do not explain your answer.",
    ),
    "qa9": Prompt(
        "I will give you context with the facts about people and their locations hidden in some random text and a question. You need to answer the question based only on the information from the facts. If a person was in different locations, use the latest location the person was in to answer the question.",
        "<example>\nJohn is not in the bathroom. Sandra is not in the bedroom. Is John in the bathroom?\nAnswer: no\n</example>\n<example>\nMary journeyed to the kitchen. John is in the bedroom. Sandra is not in the garden. Is Mary in the kitchen?\nAnswer: yes\n</example>\n",
        "Your answer should contain only one word - $yes$ or $no$. Do not write anything else. Do not explain your answer.",
    ),
    "qa10": Prompt(
        "I will give you context with the facts about people and their locations hidden in some random text and a question. You need to answer the question based only on the information from the facts. If a person was in different locations, use the latest location the person was in to answer the question.",
        "<example>\nBill is in the kitchen. Julie is either in the school or the cinema. Is Bill in the bedroom?\nAnswer: no\n</example>\n<example>\nFred is in the bedroom. Mary is either in the school or the cinema. Is Mary in the school?\nAnswer: maybe\n</example>\n<example>\nFred is either in the kitchen or the park. Bill moved to the cinema. Is Bill in the cinema?\nAnswer: yes\n</example>\n<context>\n",
        "Your answer should contain only one word - $yes$ or $no$ or $maybe$. Do not write anything else. Do not explain your answer.",
    ),
    "qa11": Prompt(
        "I will give you context with the facts about people and their locations hidden in some random text and a question. You need to answer the question based only on the information from the facts. If a person was in different locations, use the latest location the person was in to answer the question.",
        "<example>\nDaniel journeyed to the hallway. After that he journeyed to the garden. Where is Daniel?\nAnswer: garden\n</example>\n<example>\nMary moved to the office. Afterwards she journeyed to the kitchen. Daniel went to the hallway. Then he journeyed to the garden. Where is Mary?\nAnswer: kitchen\n</example>\n<example>\nSandra moved to the kitchen. After that she went back to the hallway. Sandra moved to the bedroom. Then she went to the hallway. Mary moved to the bedroom. Afterwards she travelled to the bathroom. Where is Sandra?\nAnswer: hallway\n</example>\n<context>\n",
        "Your answer should contain only one word - location. Do not write anything else after that. Do not explain your answer.",
    ),
    "qa12": Prompt(
        "I will give you context with the facts about people and their locations hidden in some random text and a question. You need to answer the question based only on the information from the facts. If a person was in different locations, use the latest location the person was in to answer the question.",
        "<example>\nMary and Daniel travelled to the bathroom. John and Daniel travelled to the office. Where is Daniel?\nAnswer: office\n</example>\n<example>\nSandra and Mary went back to the office. Daniel and Sandra went to the bedroom. Sandra and Mary travelled to the hallway. John and Mary went to the kitchen. Where is Mary?\nAnswer: kitchen\n</example>\n<example>\nDaniel and Sandra went back to the hallway. Daniel and John moved to the office. Daniel and John moved to the garden. Daniel and Mary went back to the bathroom. Daniel and John went back to the kitchen. Daniel and Sandra went to the bathroom. Where is John?\nAnswer: kitchen\n</example>\n<context>\n",
        "Your answer should contain only one word - location. Do not write anything else after that. Do not explain your answer.",
    ),
    "qa13": Prompt(
        "I will give you context with the facts about people and their locations hidden in some random text and a question. You need to answer the question based only on the information from the facts. If a person was in different locations, use the latest location the person was in to answer the question.",
        "<example>\nMary and Daniel travelled to the bathroom. Then they journeyed to the hallway. Where is Daniel?\nAnswer: hallway\n</example>\n<example>\nDaniel and Sandra travelled to the kitchen. After that they journeyed to the hallway. Mary and Daniel travelled to the bedroom. After that they travelled to the hallway. Where is Sandra?\nAnswer: hallway\n</example>\n<example>\nJohn and Mary moved to the bathroom. Then they travelled to the office. John and Mary went to the kitchen. Afterwards they went to the bedroom. John and Sandra moved to the bathroom. Following that they went back to the kitchen. Where is Mary?\nAnswer: bedroom\n</example>\n<context>\n",
        "Your answer should contain only one word - location. Do not write anything else after that. Do not explain your answer.",
    ),
    "qa14": Prompt(
        "I will give you context with the facts about people and their locations hidden in some random text and a question. You need to answer the question based only on the information from the facts. If a person was in different locations, use the latest location the person was in to answer the question.",
        "<example>\nBill went back to the cinema yesterday. Julie went to the school this morning. Fred went to the park yesterday. Yesterday Julie went to the office. Where was Julie before the school?\nAnswer: office\n</example>\n<example>\nThis morning Fred went to the kitchen. Fred journeyed to the bedroom yesterday. Mary travelled to the bedroom this morning. Yesterday Mary went to the cinema. Where was Mary before the bedroom?\nAnswer: cinema\n</example>\n<example>\nYesterday Julie went back to the park. Julie went to the bedroom this morning. Bill journeyed to the cinema yesterday. This morning Bill went back to the park. This evening Julie went to the school. This afternoon Julie went back to the park. Where was Julie before the bedroom?\nAnswer: park\n</example>\n<context>\n",
        "Your answer should contain only one word - location. Do not write anything else after that. Do not explain your answer.",
    ),
    "qa15": Prompt(
        "I will give you context with the facts about animals, their names and relations. The facts and a question are hidden in some random text. You need to answer the question based only on the information from the facts.",
        "<example>\nMice are afraid of wolves. Gertrude is a mouse. Cats are afraid of sheep. Winona is a mouse. Sheep are afraid of wolves. Emily is a mouse. Jessica is a wolf. What is gertrude afraid of?\nAnswer: wolf\n</example>\n<example>\nMice are afraid of wolves. Gertrude is a mouse. Cats are afraid of sheep. Winona is a mouse. Sheep are afraid of wolves. Emily is a mouse. Jessica is a wolf. What is jessica afraid of?\nAnswer: cat\n</example>\n<example>\nMice are afraid of cats. Wolves are afraid of sheep. Emily is a wolf. Cats are afraid of sheep. Gertrude is a wolf. Sheep are afraid of cats. Winona is a wolf. What is emily afraid of?\nAnswer: sheep\n</example>\n<context>\n",
        "Your answer should contain only one word - an animal species. Do not write anything else after that. Do not explain your answer.",
    ),
    "qa16": Prompt(
        "I will give you context with the facts about animals, their names and colors. The facts and a question are hidden in some random text. You need to answer the question based only on the information from the facts.",
        "<example>\nLily is a frog. Bernhard is a frog. Bernhard is green. Brian is a lion. Brian is white. Julius is a swan. Julius is green. Lily is green. Greg is a swan. What color is Greg?\nAnswer: green\n</example>\n<example>\nJulius is a lion. Lily is a rhino. Bernhard is a swan. Lily is white. Bernhard is green. Greg is a rhino. Greg is gray. Julius is white. Brian is a lion. What color is Brian?\nAnswer: white\n</example>\n<example>\nBrian is a rhino. Julius is a lion. Bernhard is a lion. Greg is a swan. Brian is gray. Greg is white. Lily is a rhino. Bernhard is yellow. Lily is gray. What color is Julius?\nAnswer: yellow\n</example>\n<context>\n",
        "Your answer should contain only one word - a color. Do not write anything else after that. Do not explain your answer.",
    ),
    "qa17": Prompt(
        "I will give you context with the facts about different figures, their location and colors, hidden in some random text and a question. You need to answer the question based only on the information from the facts.",
        "<example>\nThe triangle is above the pink rectangle. The blue square is to the left of the triangle. Is the pink rectangle to the right of the blue square?\nAnswer: yes\n</example>\n<example>\nThe red sphere is to the left of the yellow square. The red sphere is below the pink rectangle. Is the pink rectangle to the left of the yellow square?\nAnswer: yes\n</example><example>\nThe red sphere is above the pink rectangle. The red sphere is to the right of the red square. Is the pink rectangle above the red square?\nAnswer: no\n</example>",
        "Your answer should contain only one word - $yes$ or $no$. Do not write anything else. Do not explain your answer.",
    ),
    "qa18": Prompt(
        "I will give you context with the facts about different objects and their sizes, hidden in some random text and a question. You need to answer the question based only on the information from the facts.",
        "<example>\nThe box of chocolates fits inside the chest. The box is bigger than the chest. The box is bigger than the suitcase. The suitcase fits inside the box. The container is bigger than the box of chocolates. Does the box fit in the box of chocolates?\nAnswer: no\n</example>\n<example>\nThe suitcase is bigger than the container. The container fits inside the box. The chest is bigger than the chocolate.The suitcase fits inside the box. The chest fits inside the box. Does the chocolate fit in the box?\nAnswer: yes\n</example><example>\nThe chocolate fits inside the box of chocolates. The suitcase fits inside the box. The chocolate fits inside the box. The box is bigger than the box of chocolates. The suitcase is bigger than the box of chocolates. Is the chocolate bigger than the box?\nAnswer: no\n</example>",
        "Your answer should contain only one word - $yes$ or $no$. Do not write anything else. Do not explain your answer.",
    ),
    "qa19": Prompt(
        "I will give you context with the facts about different places and their locations, hidden in some random text and a question. You need to answer the question based only on the information from the facts.",
        "<example>\nThe office is east of the hallway. The kitchen is north of the office. The garden is west of the bedroom. The office is west of the garden. The bathroom is north of the garden. How do you go from the kitchen to the garden?\nAnswer: s,e\n</example>\n<example>\nThe bedroom is west of the hallway. The office is east of the garden. The garden is north of the kitchen. The kitchen is north of the bathroom. The hallway is west of the garden. How do you go from the kitchen to the hallway?\nAnswer: n,w\n</example>\n<example>\nThe bedroom is south of the hallway. The bathroom is east of the office. The kitchen is west of the garden. The garden is south of the office. The office is south of the bedroom. How do you go from the garden to the bedroom?\nAnswer: n,n\n</example>\n",
        "Your answer should contain only two letters, separated by a comma - ordinal directions. You can choose the letters from $n$, $s$, $e$ and $w$. Do not write anything else after that.",
    ),
    "qa20": Prompt(
        "I will give you context with the facts about people, their locations and condition hidden in some random text and a question. You need to answer the question based only on the information from the facts. If a person was in different locations, use the latest location the person was in to answer the question.",
        "<example>\nSumit is tired. Where will sumit go?\nAnswer: bedroom\n</example>\n<example>\nYann is hungry. Yann journeyed to the kitchen. Why did yann go to the kitchen?\nAnswer: hungry\n</example>\n<example>\nAntoine is thirsty. Yann is tired. Yann went back to the bedroom. Yann picked up the pajamas there.Jason is thirsty. Antoine went back to the kitchen. Why did antoine go to the kitchen?\nAnswer: thirsty\n</example>\n<context>\n",
        "Your answer should contain only one word - a person condition or a place. Do not write anything else after that. Do not explain your answer.",
    ),
}
LABELS: dict[str, tuple[str, ...]] = {
    "qa1": (
        "bathroom",
        "bedroom",
        "garden",
        "hallway",
        "kitchen",
        "office",
    ),
    "qa2": (
        "bathroom",
        "bedroom",
        "garden",
        "hallway",
        "kitchen",
        "office",
    ),
    "qa3": (
        "bathroom",
        "bedroom",
        "garden",
        "hallway",
        "kitchen",
        "office",
    ),
    "qa4": (
        "bathroom",
        "bedroom",
        "garden",
        "hallway",
        "kitchen",
        "office",
    ),
    "qa5": (
        "Bill",
        "Fred",
        "Jeff",
        "Mary",
        "apple",
        "football",
        "milk",
    ),
    "qa6": (
        "no",
        "yes",
    ),
    "qa7": (
        "none",
        "one",
        "three",
        "two",
    ),
    "qa8": (
        "apple",
        "football",
        "milk",
        "nothing",
    ),
    "qa9": (
        "no",
        "yes",
    ),
    "qa10": (
        "maybe",
        "no",
        "yes",
    ),
    "qa11": (
        "bathroom",
        "bedroom",
        "garden",
        "hallway",
        "kitchen",
        "office",
    ),
    "qa12": (
        "bathroom",
        "bedroom",
        "garden",
        "hallway",
        "kitchen",
        "office",
    ),
    "qa13": (
        "bathroom",
        "bedroom",
        "garden",
        "hallway",
        "kitchen",
        "office",
    ),
    "qa14": (
        "bedroom",
        "cinema",
        "kitchen",
        "office",
        "park",
        "school",
    ),
    "qa15": (
        "cat",
        "mouse",
        "sheep",
        "wolf",
    ),
    "qa16": (
        "gray",
        "green",
        "white",
        "yellow",
    ),
    "qa17": (
        "no",
        "yes",
    ),
    "qa18": (
        "no",
        "yes",
    ),
    "qa19": (
        "e,e",
        "e,n",
        "e,s",
        "n,e",
        "n,n",
        "n,w",
        "s,e",
        "s,s",
        "s,w",
        "w,n",
        "w,s",
        "w,w",
    ),
    "qa20": (
        "bedroom",
        "bored",
        "garden",
        "hungry",
        "kitchen",
        "thirsty",
        "tired",
    ),
}

# the bAbI task names (data/README.md), for listings
TITLES = {
    "qa1": "single supporting fact",
    "qa2": "two supporting facts",
    "qa3": "three supporting facts",
    "qa4": "two arg relations",
    "qa5": "three arg relations",
    "qa6": "yes-no questions",
    "qa7": "counting",
    "qa8": "lists-sets",
    "qa9": "simple negation",
    "qa10": "indefinite knowledge",
    "qa11": "basic coreference",
    "qa12": "conjunction",
    "qa13": "compound coreference",
    "qa14": "time reasoning",
    "qa15": "basic deduction",
    "qa16": "basic induction",
    "qa17": "positional reasoning",
    "qa18": "size reasoning",
    "qa19": "path finding",
    "qa20": "agents motivations",
}

LEVELS = ("0k", "1k", "2k", "4k", "8k", "16k", "32k", "64k", "128k", "256k", "512k", "1M", "10M")
REPOS = {"babilong": "RMT-team/babilong", "babilong-1k-samples": "RMT-team/babilong-1k-samples"}
REQUIRED = ("input", "question", "target")


def format_input(context: str, question: str, prompt: Prompt) -> str:
    """prompts.py's get_formatted_input with DEFAULT_TEMPLATE."""
    return TEMPLATE.format(
        instruction=prompt.instruction,
        examples=prompt.examples,
        post_prompt=prompt.post_prompt,
        context=context.strip(),
        question=question,
    ).strip()


def preprocess_output(output: str) -> str:
    """metrics.py's cut of an answer: lowercased, its first sentence, nothing from an echoed example on."""
    output = output.lower().split(".")[0]
    for marker in ("<context>", "<example>", "Question"):  # 'Question' cannot match the lowercased text
        output = output.split(marker)[0]
    return output


def compare_answers(target: str, output: str, question: str, labels: tuple[str, ...]) -> bool:
    """metrics.py's compare_answers: the task labels in the answer, less those in the question, are the target."""
    output = preprocess_output(output)
    target = target.lower()
    lowered = {label.lower() for label in labels}
    named = {label for label in lowered if label in question.lower()}
    found = {label for label in lowered if label in output} - named
    if "," in target and len(target) > 3:  # several objects (qa8)
        parts = target.split(",")
        return all(p in found for p in parts) and len(found) == len(parts)
    return target in found and len(found) == 1


def level_tokens(level: str) -> int:
    """A published length label in tokens: 4k -> 4096, 1M -> 1048576."""
    return int(level[:-1]) * (1024 if level.endswith("k") else 1024 * 1024)


def level_of(length: int) -> str | None:
    """The published label of a suite length (4096 or 4000 -> 4k), None when there is none."""
    for level in LEVELS:
        n = int(level[:-1])
        if length in (level_tokens(level), n * (1000 if level.endswith("k") else 1_000_000)):
            return level
    return None


def published(dataset: str, task: str) -> tuple[str, ...]:
    """The lengths a dataset publishes for a task (see the module docstring)."""
    n = int(task[2:])
    if dataset == "babilong":
        return LEVELS if n <= 5 else LEVELS[:-1] if n <= 10 else ("0k",)
    return LEVELS[: LEVELS.index("128k") + 1] if n <= 5 else ("0k",)


def source(dataset: str, task: str, level: str) -> DataSource:
    """The Hub file of one task at one length."""
    if dataset == "babilong":
        return DataSource(REPOS[dataset], f"data/{task}/{level}.json", setting="babilong")
    return DataSource(REPOS[dataset], f"{level}/{task}-00000-of-00001.parquet", setting="babilong")


class BabilongOptions(BaseModel):
    """`options:` of every BABILong task: the data set and run_model_on_babilong.py's --use_* prompt parts."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["babilong", "babilong-1k-samples"] = "babilong"
    instruction: bool = True
    examples: bool = True
    post_prompt: bool = True


def choose_levels(task: str, dataset: str, settings: dict[str, Any]) -> list[str]:
    """The entry's `levels`, else the suite's lengths as published labels; anything unpublished is refused."""
    pub = published(dataset, task)
    where = f"{task}: {REPOS[dataset]} publishes {task} at {', '.join(pub)}"
    levels = settings.get("levels")
    if levels is None:
        levels = []
        for n in settings.get("lengths") or [4096]:
            label = level_of(int(n))
            if label is None:
                raise ConfigError(
                    f"{where}; length {n} is none of them (write 1k-128k as 1024-131072 tokens, or "
                    "name them with the task's levels:)"
                )
            levels.append(label)
    bad = next((lv for lv in levels if lv not in pub), None)
    if bad is not None:
        raise ConfigError(f"{where}; length {bad} is not published")
    return list(dict.fromkeys(levels))


def _fetched(task: str, level: str, src: DataSource) -> Path:
    """One file through the Hub cache (eval.fetch); offline and missing, one line that says how to get it."""
    from longkit.eval import fetch as hub

    try:
        return hub.fetch_source(task, src)
    except InputError:
        if not hub.offline() or (level == "0k" and src.repo == REPOS["babilong"]):  # as `eval fetch <task>` says
            raise
        raise InputError(
            f"{task}: official data not available (not in the cache {hub.hub_cache()} and "
            f"HF_HUB_OFFLINE is set): needs {src.describe()} from the Hugging Face Hub; run the suite "
            f"once online (it fetches each length it runs; `longkit eval fetch {task}` fetches only "
            "0k) or set data.babilong to a local copy"
        ) from None


def _local(root: Path, task: str, level: str, levels: list[str]) -> Path:
    """A task's file at one length under a local copy in either published layout (a file stands for one length)."""
    if root.is_file() and len(levels) == 1:
        return root
    candidates = [
        f"data/{task}/{level}.json",
        f"{task}/{level}.json",
        f"{level}/{task}-00000-of-00001.parquet",
        f"data/{task}/{level}.jsonl",
        f"{task}/{level}.jsonl",
    ]
    for name in candidates:
        if (root / name).is_file():
            return root / name
    raise InputError(f"BABILong {task} at {level}: none of {', '.join(candidates)} found in {root}")


def level_files(task: str, settings: dict[str, Any], dataset: str, levels: list[str]) -> list[tuple[str, Path]]:
    """(length label, file) for each length: from the local copy when one is given, else fetched by name."""
    given = settings.get("path") or settings.get("data", {}).get("babilong")
    if given:
        root = Path(given)
        if not root.exists():
            raise InputError(f"BABILong {task}: {root} does not exist")
        return [(lv, _local(root, task, lv, levels)) for lv in levels]
    return [(lv, _fetched(task, lv, source(dataset, task, lv))) for lv in levels]


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(item number, row) of a published file (a JSON array, Parquet or JSONL), checked against the row format."""
    from longkit.io import iter_jsonl, read_text

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            items, where = list(pq.read_table(path).to_pylist()), "row"
        except Exception as exc:  # noqa: BLE001 -- any unreadable file is one line naming it
            raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    else:
        text = read_text(path, "BABILong data")
        if not text.lstrip().startswith("["):
            rows = list(iter_jsonl(path, REQUIRED))
            for lineno, row in rows:
                _check(row, f"{path}:{lineno}")
            return rows
        try:
            items, where = json.loads(text), "item"
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    rows = []
    for i, row in enumerate(items, start=1):
        if not isinstance(row, dict):
            raise InputError(f"{path}: {where} {i}: expected an object, got {type(row).__name__}")
        missing = next((f for f in REQUIRED if f not in row), None)
        if missing:
            raise InputError(f"{path}: {where} {i}: missing field '{missing}'")
        _check(row, f"{path}: {where} {i}")
        rows.append((i, row))
    return rows


def _check(row: dict[str, Any], at: str) -> None:
    for field in REQUIRED:
        if not isinstance(row[field], str):
            raise InputError(f"{at}: field '{field}': expected a string, got {type(row[field]).__name__}")


class BabilongTask(FileTask):
    """One BABILong task at one or more published lengths (one file each)."""

    required = REQUIRED
    max_new_tokens = MAX_NEW_TOKENS

    def __init__(self, task: str, files: list[tuple[str, Path]], options: BabilongOptions | None = None, **kwargs: Any):
        super().__init__(files[0][1], **kwargs)
        self.name = task
        self.files = files
        self.options = options or BabilongOptions()
        full = PROMPTS[task]
        self.prompt = Prompt(
            full.instruction if self.options.instruction else "",
            full.examples if self.options.examples else "",
            full.post_prompt if self.options.post_prompt else "",
        )

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        """Rows of every length's file (the first `samples` of each), tagged with their length label."""
        if self._rows is None:
            rows = []
            for level, path in self.files:
                kept = read_rows(path)[: self.limit] if self.limit is not None else read_rows(path)
                if not kept:
                    raise InputError(f"{path}: no samples")
                rows += [(i, {**row, "_level": level}) for i, row in kept]
            self._rows = rows
        return self._rows

    def row_id(self, row: dict[str, Any], lineno: int) -> str:
        """Length label and item number (the published rows carry no id)."""
        return f"{row['_level']}-{lineno}"

    def user_text(self, row: dict[str, Any]) -> str:
        """get_formatted_input with this task's prompt parts."""
        return format_input(str(row["input"]), str(row["question"]), self.prompt)

    def references(self, row: dict[str, Any]) -> list[str]:
        """The target."""
        return [str(row["target"])]

    def extra_meta(self, row: dict[str, Any]) -> dict[str, Any]:
        """The question (compare_answers reads it) and the length label."""
        return {"question": row["question"], "level": row["_level"]}

    def length_of(self, row: dict[str, Any], tokens: int) -> Any:
        """The published length label, in tokens (4k -> 4096)."""
        return level_tokens(row["_level"])

    def fingerprint(self) -> dict[str, Any]:
        """Files, lengths, data set and prompt parts."""
        return {
            **super().fingerprint(),
            "files": [str(p) for _, p in self.files],
            "levels": [lv for lv, _ in self.files],
            **self.options.model_dump(),
        }

    def describe(self) -> str:
        """Said only where the run leaves the official setup (a prompt part off)."""
        off = [part for part in ("instruction", "examples", "post_prompt") if not getattr(self.options, part)]
        return f"prompt without {', '.join(off)} (run_model_on_babilong.py's --use_* off)" if off else ""

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """compare_answers on the stripped answer, with this task's labels."""
        correct = compare_answers(
            sample.references[0], prediction.strip(), str(sample.meta["question"]), LABELS[self.name]
        )
        return {"score": float(correct)}


def _factory(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    options = BabilongOptions(**settings.get("options", {}))
    levels = choose_levels(spec.name, options.dataset, settings)
    files = level_files(spec.name, settings, options.dataset, levels)
    return BabilongTask(spec.name, files, options, **file_kwargs(settings))


def declare() -> list[TaskSpec]:
    """qa1..qa20 at their published lengths; qa1-qa5 form the benchmark's average."""
    specs = []
    for task in PROMPTS:
        pub = published("babilong", task)
        span = f"{pub[0]}-{pub[-1]}" if len(pub) > 1 else pub[0]
        specs.append(
            TaskSpec(
                task,
                "BABILong",
                f"bAbI {TITLES[task]} in PG-19 text, {span}",
                Metric("accuracy", **X100),
                False,
                _factory,
                _CODE,
                data=source("babilong", task, "0k"),
                options=BabilongOptions,
                answer_budget=MAX_NEW_TOKENS,
                aliases=(f"babilong_{task}",),
                average_group="BABILong" if int(task[2:]) <= 5 else None,
            )
        )
    return specs
