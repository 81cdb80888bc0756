"""Does a person get the messages a person must answer? Numbers, not pass/fail.

The sets in ``tests/handoff/`` hold, per language (English, French, Italian), 50 messages
that must reach a client advisor and 50 the assistant answers itself: ``heldout.yml`` was
written apart from the screen's patterns, ``eval.yml`` is the set they were written
against. For each set and language:

- ``pipeline``: the trained model's NLU (``models/salon.tar.gz``, the person screen as its
  last step), a message counting as handed over when its intent is ``talk_to_advisor`` or
  ``complaint`` (the rules' handoff intents);
- ``screen``: :func:`salon.advisors.screen.person_needed` alone;
- baseline ``nlu_intent_only``: the same model's intent classifier without the screen
  (the intent the screen replaced, or kept).

``recall`` is the share of the first kind handed over, ``false_handoff_rate`` the share
of the second. Goals: recall ≥ 0.97 and false handoffs ≤ 0.05 in every language. Missed
and wrongly handed-over messages of the held-out set are listed. The last line is one
JSON object: ``recall`` and ``false_handoff_rate`` per language (held-out set, pipeline),
then every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from salon.advisors.screen import person_needed
from salon.config import PROJECT_ROOT

SETS = {name: PROJECT_ROOT / "tests" / "handoff" / f"{name}.yml"
        for name in ("heldout", "development-1", "development-2")}
LANGUAGES = ("en", "fr", "it")
HANDOFF_INTENTS = frozenset({"talk_to_advisor", "complaint"})

Judge = Callable[[str], Awaitable[bool]]


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


async def rates(data: dict[str, Any], language: str, judge: Judge) -> dict[str, Any]:
    person = [text for texts in data["person"][language].values() for text in texts]
    assistant = list(data["assistant"][language])
    missed = [text for text in person if not await judge(text)]
    wrongly = [text for text in assistant if await judge(text)]
    return {"recall": round(1 - len(missed) / len(person), 3),
            "false_handoff_rate": round(len(wrongly) / len(assistant), 3),
            "missed": missed, "false_handoffs": wrongly}


async def model_judges(model: Path) -> tuple[Judge, Judge]:
    """The pipeline's judge and the baseline's, from one loaded model."""
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    logging.getLogger("rasa").setLevel(logging.ERROR)
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    cache: dict[str, dict[str, Any]] = {}

    async def parse(text: str) -> dict[str, Any]:
        if text not in cache:
            cache[text] = await agent.parse_message(text)
        return cache[text]

    async def pipeline(text: str) -> bool:
        return (await parse(text))["intent"]["name"] in HANDOFF_INTENTS

    async def nlu_only(text: str) -> bool:
        parsed = await parse(text)
        screened = parsed.get("person_screen")
        intent = screened["replaced_intent"] if screened else parsed["intent"]["name"]
        return intent in HANDOFF_INTENTS

    return pipeline, nlu_only


async def screen_judge(text: str) -> bool:
    return person_needed(text) is not None


async def main(model: Path | None) -> dict[str, Any]:
    judges: dict[str, Judge] = {"screen": screen_judge}
    if model is not None:
        judges["pipeline"], judges["nlu_intent_only"] = await model_judges(model)
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    for set_name, path in SETS.items():
        data = load(path)
        for name, judge in judges.items():
            for language in LANGUAGES:
                result = await rates(data, language, judge)
                figures[f"{set_name}.{name}.{language}"] = result
                print(f"{set_name:<14} {name:<16} {language}  recall {result['recall']:.3f}  "
                      f"false handoffs {result['false_handoff_rate']:.3f}")
    headline = "pipeline" if model is not None else "screen"
    for language in LANGUAGES:
        result = figures[f"heldout.{headline}.{language}"]
        for text in result["missed"]:
            print(f"  missed ({language}): {text}")
        for text in result["false_handoffs"]:
            print(f"  handed over ({language}): {text}")
    summary: dict[str, Any] = {
        "recall": {lang: figures[f"heldout.{headline}.{lang}"]["recall"] for lang in LANGUAGES},
        "false_handoff_rate": {lang: figures[f"heldout.{headline}.{lang}"]["false_handoff_rate"]
                               for lang in LANGUAGES},
        "measured_with": headline,
    }
    for key, result in figures.items():
        summary[key] = {"recall": result["recall"], "false_handoff_rate": result["false_handoff_rate"]}
    summary["bench_runtime_s"] = round(time.perf_counter() - started, 1)
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "models" / "salon.tar.gz",
                        help="the trained model (default: models/salon.tar.gz)")
    parser.add_argument("--screen-only", action="store_true", help="measure the screen alone, no model")
    args = parser.parse_args()
    model = None if args.screen_only else args.model
    if model is not None and not model.exists():
        parser.error(f"no model at {model}: run `make train`, or pass --screen-only")
    print(json.dumps(asyncio.run(main(model))))
