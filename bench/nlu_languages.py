"""One NLU model for English, French and Italian, or one per language? Measured.

Trains Rasa NLU models with the project's pipeline (config.yml) in two shapes and scores
each language's held-out set (tests/nlu/test_nlu.yml, test_nlu_fr.yml, test_nlu_it.yml):

- ``multilingual``: one model on every language's examples (data/nlu and its fr/, it/
  folders), as the assistant runs;
- baseline ``per_language``: one model per language on that language's examples alone
  (English: data/nlu/*.yml; French: data/nlu/fr; Italian: data/nlu/it), each scored on its
  own language, as a deployment routing each client to her language's model would run.

Figures per shape: weighted F1 per language, training seconds (wall clock, summed over
the models of the shape), and the model files' size. The last line is one JSON object:
``multilingual_f1``, ``per_language_f1`` (each a mapping language → F1),
``multilingual_train_s``, ``per_language_train_s``, ``multilingual_mb``,
``per_language_mb``. Takes several minutes: it trains four models.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RASA = str(Path(sys.executable).with_name("rasa"))
HELD_OUT = {"en": ROOT / "tests/nlu/test_nlu.yml", "fr": ROOT / "tests/nlu/test_nlu_fr.yml",
            "it": ROOT / "tests/nlu/test_nlu_it.yml"}


def language_data(language: str, into: Path) -> Path:
    """A folder holding one language's training examples."""
    into.mkdir(parents=True, exist_ok=True)
    source = ROOT / "data" / "nlu"
    files = sorted(source.glob("*.yml")) if language == "en" else sorted((source / language).glob("*.yml"))
    for path in files:
        shutil.copy(path, into / path.name)
    return into


def train(nlu: Path, out: Path, name: str) -> tuple[Path, float]:
    """Trains an NLU model on ``nlu``; its path and the seconds it took."""
    started = time.perf_counter()
    subprocess.run([RASA, "train", "nlu", "--config", str(ROOT / "config.yml"), "--nlu", str(nlu),
                    "--out", str(out), "--fixed-model-name", name],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return out / f"{name}.tar.gz", time.perf_counter() - started


def score(model: Path, held_out: Path, out: Path) -> float:
    """Weighted F1 of ``model`` on the held-out file."""
    subprocess.run([RASA, "test", "nlu", "--model", str(model), "--nlu", str(held_out),
                    "--out", str(out), "--no-plot"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    report = json.loads((out / "intent_report.json").read_text())
    return round(float(report["weighted avg"]["f1-score"]), 3)


def main() -> int:
    """Runs both shapes and prints the figures, then the JSON line."""
    argparse.ArgumentParser(description=__doc__).parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="salon-nlu-bench-") as tmp:
        work = Path(tmp)
        model, seconds = train(ROOT / "data" / "nlu", work / "models", "multilingual")
        result["multilingual_f1"] = {code: score(model, path, work / f"multi-{code}")
                                     for code, path in HELD_OUT.items()}
        result["multilingual_train_s"] = round(seconds, 1)
        result["multilingual_mb"] = round(model.stat().st_size / 1e6, 1)
        per_f1: dict[str, float] = {}
        per_seconds = 0.0
        per_size = 0
        for code, path in HELD_OUT.items():
            data = language_data(code, work / "data" / code)
            model, seconds = train(data, work / "models", f"only-{code}")
            per_f1[code] = score(model, path, work / f"only-{code}")
            per_seconds += seconds
            per_size += model.stat().st_size
        result["per_language_f1"] = per_f1
        result["per_language_train_s"] = round(per_seconds, 1)
        result["per_language_mb"] = round(per_size / 1e6, 1)
    for shape in ("multilingual", "per_language"):
        scores = result[f"{shape}_f1"]
        print(f"{shape:>13}: F1 {scores}, trained in {result[f'{shape}_train_s']} s, "
              f"{result[f'{shape}_mb']} MB")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
