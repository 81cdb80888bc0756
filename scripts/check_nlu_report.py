"""Fail when the held-out NLU evaluation falls below the project's thresholds.

Reads what `rasa test nlu --successes` writes (the intent report and every prediction)
and checks the weighted-average F1 over all held-out examples (default 0.90), the F1 of
every single intent (default 0.75) and, given the held-out file of each language
(``--language fr=tests/nlu/test_nlu_fr.yml``), the weighted F1 of each language on its
own (default 0.93): a language whose examples the model serves poorly cannot hide behind
the others.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml
from sklearn.metrics import f1_score

_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def _plain(example: str) -> str:
    """The text of an annotated example, as Rasa evaluates it."""
    return _ANNOTATION.sub(r"\1", example).strip()


def _texts(path: Path) -> set[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    texts: set[str] = set()
    for block in data.get("nlu", []):
        for line in str(block.get("examples", "")).splitlines():
            if line.strip().startswith("- "):
                texts.add(_plain(line.strip()[2:]))
    return texts


def _predictions(results: Path) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for name in ("intent_successes.json", "intent_errors.json"):
        path = results / name
        if path.is_file():
            found.extend(json.loads(path.read_text(encoding="utf-8")))
    return found


def language_scores(results: Path, languages: dict[str, Path]) -> dict[str, tuple[float, int]]:
    """Weighted F1 and number of examples per language, from the predictions in ``results``."""
    predictions = _predictions(results)
    scores: dict[str, tuple[float, int]] = {}
    for code, path in languages.items():
        texts = _texts(path)
        mine = [p for p in predictions if str(p["text"]).strip() in texts]
        if not mine:
            scores[code] = (0.0, 0)
            continue
        truth = [str(p["intent"]) for p in mine]
        guess = [str((p.get("intent_prediction") or {}).get("name")) for p in mine]  # type: ignore[union-attr]
        scores[code] = (float(f1_score(truth, guess, average="weighted", zero_division=0)), len(mine))
    return scores


def _language(value: str) -> tuple[str, Path]:
    code, _, path = value.partition("=")
    if not code or not path:
        raise argparse.ArgumentTypeError(f"expected CODE=FILE, got {value!r}")
    return code, Path(path)


def _overall(report: dict[str, dict[str, float]], args: argparse.Namespace) -> list[str]:
    weighted = report["weighted avg"]["f1-score"]
    macro = report["macro avg"]["f1-score"]
    per_intent = {
        name: scores["f1-score"]
        for name, scores in report.items()
        if isinstance(scores, dict) and "support" in scores and not name.endswith(" avg")
    }
    weakest = sorted(per_intent.items(), key=lambda item: item[1])[:3]
    print(
        f"NLU held-out: weighted F1 {weighted:.3f}, macro F1 {macro:.3f}, "
        f"{len(per_intent)} intents; weakest "
        + ", ".join(f"{name} {score:.2f}" for name, score in weakest)
    )
    failures = []
    if weighted < args.min_weighted_f1:
        failures.append(f"weighted F1 {weighted:.3f} < {args.min_weighted_f1}")
    low = [name for name, score in per_intent.items() if score < args.min_intent_f1]
    if low:
        failures.append(f"intents below {args.min_intent_f1}: {low}")
    return failures


def main(argv: list[str] | None = None) -> int:
    """Print the figures; exit 1 when one is below its threshold."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", type=Path, help="intent_report.json from rasa test nlu")
    parser.add_argument("--min-weighted-f1", type=float, default=0.90)
    parser.add_argument("--min-intent-f1", type=float, default=0.75)
    parser.add_argument("--language", type=_language, action="append", default=[],
                        metavar="CODE=FILE", help="a language's held-out file (repeatable)")
    parser.add_argument("--min-language-f1", type=float, default=0.93)
    args = parser.parse_args(argv)

    if not args.report.is_file():
        print(f"NLU check: no report at {args.report}", file=sys.stderr)
        return 1
    failures = _overall(json.loads(args.report.read_text()), args)
    if args.language:
        scores = language_scores(args.report.parent, dict(args.language))
        print("NLU held-out by language: " + ", ".join(
            f"{code} F1 {score:.3f} ({count} examples)" for code, (score, count) in scores.items()))
        failures += [f"{code} F1 {score:.3f} < {args.min_language_f1}"
                     for code, (score, _) in scores.items() if score < args.min_language_f1]
    for failure in failures:
        print(f"NLU check FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
