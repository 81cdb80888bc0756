"""Fail when the held-out NLU evaluation falls below the project's thresholds.

Reads the intent report that `rasa test nlu` writes and checks the weighted-average F1
(default 0.90) and the F1 of every single intent (default 0.75).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", type=Path, help="intent_report.json from rasa test nlu")
    parser.add_argument("--min-weighted-f1", type=float, default=0.90)
    parser.add_argument("--min-intent-f1", type=float, default=0.75)
    args = parser.parse_args(argv)

    if not args.report.is_file():
        print(f"NLU check: no report at {args.report}", file=sys.stderr)
        return 1
    report = json.loads(args.report.read_text())
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
    failures = [name for name, score in per_intent.items() if score < args.min_intent_f1]
    if weighted < args.min_weighted_f1:
        print(f"NLU check FAILED: weighted F1 {weighted:.3f} < {args.min_weighted_f1}", file=sys.stderr)
        return 1
    if failures:
        print(f"NLU check FAILED: intents below {args.min_intent_f1}: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
