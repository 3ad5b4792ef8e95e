"""Test data in BFCL's file layout, written for these tests (never BFCL's own), and fake-server replies for it.

One or two tasks per single-turn category, shaped like BFCL's: dotted function names, ``"type": "dict"``,
``float`` parameters, optional parameters marked by ``""`` in the accepted values, a live task with a system
message. ``write_bfcl`` lays them out as ``BFCL_v<N>_<category>.json`` plus ``possible_answer/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from LLM.core.evaluation.bfcl.convert import to_openai_tools

FACTORIAL = {"name": "math.factorial", "description": "Compute the factorial of a number.",
             "parameters": {"type": "dict", "properties": {"number": {"type": "integer", "description": "The number."}},
                            "required": ["number"]}}
TRIANGLE = {"name": "calculate_triangle_area", "description": "Area of a triangle from its base and height.",
            "parameters": {"type": "dict", "properties": {
                "base": {"type": "integer", "description": "The base."},
                "height": {"type": "integer", "description": "The height."},
                "unit": {"type": "string", "description": "The unit, default 'units'."}},
                "required": ["base", "height"]}}
WEATHER = {"name": "weather.get", "description": "Current weather of a city.",
           "parameters": {"type": "dict", "properties": {
               "city": {"type": "string", "description": "The city."},
               "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "The unit."}},
               "required": ["city"]}}
CLOCK = {"name": "time.now", "description": "Current local time of a city.",
         "parameters": {"type": "dict", "properties": {"city": {"type": "string", "description": "The city."}},
                        "required": ["city"]}}
PLAY = {"name": "spotify.play", "description": "Play songs of an artist for some minutes.",
        "parameters": {"type": "dict", "properties": {
            "artist": {"type": "string", "description": "The artist."},
            "duration": {"type": "integer", "description": "Minutes."}}, "required": ["artist", "duration"]}}
INTEREST = {"name": "finance.interest", "description": "Simple interest.",
            "parameters": {"type": "dict", "properties": {
                "principal": {"type": "float", "description": "The principal."},
                "rate": {"type": "float", "description": "The yearly rate."}}, "required": ["principal", "rate"]}}

# (category, id, messages, functions, ground truth or None)
TASKS: list[tuple[str, str, list[dict[str, str]], list[dict[str, Any]], list[dict[str, Any]] | None]] = [
    ("simple_python", "simple_python_0", [{"role": "user", "content": "What is the factorial of 5?"}], [FACTORIAL],
     [{"math.factorial": {"number": [5]}}]),
    ("simple_python", "simple_python_1",
     [{"role": "user", "content": "Area of a triangle with base 10 and height 5?"}], [TRIANGLE],
     [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}]),
    ("multiple", "multiple_0", [{"role": "user", "content": "What time is it in Paris right now?"}],
     [WEATHER, CLOCK], [{"time.now": {"city": ["Paris", "paris"]}}]),
    ("parallel", "parallel_0",
     [{"role": "user", "content": "Play Taylor Swift for 20 minutes and Maroon 5 for 15 minutes."}], [PLAY],
     [{"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
      {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}}]),
    ("parallel_multiple", "parallel_multiple_0",
     [{"role": "user", "content": "Weather in Oslo, and the interest on 1000 at 0.05?"}], [WEATHER, INTEREST],
     [{"weather.get": {"city": ["Oslo"], "unit": ["", "celsius"]}},
      {"finance.interest": {"principal": [1000.0], "rate": [0.05]}}]),
    ("irrelevance", "irrelevance_0", [{"role": "user", "content": "Write a haiku about autumn leaves."}],
     [TRIANGLE], None),
    ("live_simple", "live_simple_0-0-0",
     [{"role": "system", "content": "You are a helpful weather assistant."},
      {"role": "user", "content": "How warm is it in Lima, in fahrenheit?"}], [WEATHER],
     [{"weather.get": {"city": ["Lima", "Lima, Peru"], "unit": ["fahrenheit"]}}]),
    ("live_relevance", "live_relevance_0-0-0", [{"role": "user", "content": "Check the weather in Rome for me."}],
     [WEATHER], None),
    ("live_irrelevance", "live_irrelevance_0-0-0", [{"role": "user", "content": "Tell me a joke about cats."}],
     [CLOCK], None),
]
CATEGORY_NAMES = tuple(dict.fromkeys(t[0] for t in TASKS))


def write_bfcl(folder: Path, version: int = 4, tasks: list[Any] = TASKS) -> Path:
    """The tasks as BFCL files in ``folder`` (v3 spells simple_python as plain ``simple``)."""
    (folder / "possible_answer").mkdir(parents=True, exist_ok=True)
    by_category: dict[str, list[Any]] = {}
    for task in tasks:
        by_category.setdefault(task[0], []).append(task)
    for category, items in by_category.items():
        name = "simple" if (category == "simple_python" and version == 3) else category
        file = f"BFCL_v{version}_{name}.json"
        questions = [json.dumps({"id": i, "question": [m], "function": f}) for _c, i, m, f, _g in items]
        (folder / file).write_text("\n".join(questions) + "\n")
        if items[0][4] is not None:
            answers = [json.dumps({"id": i, "ground_truth": g}) for _c, i, _m, _f, g in items]
            (folder / "possible_answer" / file).write_text("\n".join(answers) + "\n")
    return folder


def question(task: Any) -> str:
    return task[2][-1]["content"]


def right_calls(task: Any) -> list[tuple[str, dict[str, Any]]]:
    """The ground truth's calls with legal names and, per argument, the first accepted value ('' = left out)."""
    _category, _id, _messages, functions, ground = task
    names = to_openai_tools(functions)[1]
    calls = []
    for entry in ground or []:
        (name, arguments), = entry.items()
        chosen = {key: next(v for v in values if v != "") for key, values in arguments.items()
                  if any(v != "" for v in values)}
        calls.append((names.legal(name), chosen))
    return calls


def reply(task: Any, mode: str, calls: list[tuple[str, dict[str, Any]]] | None = None,
          text: str = "I cannot help with that using these tools.", **extra: Any) -> dict[str, Any]:
    """The fake server's answer to ``task`` in ``mode``: these calls (default: the right ones), or ``text``."""
    calls = right_calls(task) if calls is None else calls
    if not calls:
        return {"when": question(task), "text": text, **extra}
    if mode == "native":
        return {"when": question(task), "tool_calls": [{"name": n, "arguments": a} for n, a in calls], **extra}
    blocks = "\n".join(f"<tool_call>\n{json.dumps({'name': n, 'arguments': a})}\n</tool_call>" for n, a in calls)
    return {"when": question(task), "text": blocks, **extra}
