"""Retrieval quality of the styling fallback: numbers, not pass/fail.

The held-out questions in ``tests/fixtures/styling_questions.yml`` (each with the catalog
pieces a grounded answer needs) are ranked against the seeded catalog, read through the
catalog port from a fresh SQLite database. Printed for each ranker:

- ``recall_at_5``: over all questions, the mean share of expected pieces found in the top
  five (goal ≥ 0.9);
- ``hit_at_1``: share of questions whose first result is an expected piece;
- ``ms_per_question``: ranking time.

``catalog_index`` is the fallback's ranking (:class:`salon.llm.retrieval.CatalogIndex`);
the baseline ``keyword_overlap`` ranks by the number of words a product's text shares
with the question. Questions the ranking misses are listed. The last line is one JSON
object with ``recall_at_5`` and ``questions``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from salon.config import PROJECT_ROOT
from salon.integrations.catalog import ProductFacts, SqlCatalog
from salon.integrations.seed import seed_database
from salon.llm.retrieval import CatalogIndex, KeywordOverlapIndex
from salon.storage.db import make_async_engine

QUESTIONS = PROJECT_ROOT / "tests" / "fixtures" / "styling_questions.yml"


def load_questions(path: Path = QUESTIONS) -> list[tuple[str, list[str]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(str(item["q"]), [str(i) for i in item["expected"]]) for item in data["questions"]]


async def load_products() -> list[ProductFacts]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'salon.db'}"
        seed_database(url, PROJECT_ROOT / "data" / "maison")
        engine = make_async_engine(url)
        try:
            return await SqlCatalog(engine).all_products()
        finally:
            await engine.dispose()


def evaluate(ranker: Any, questions: list[tuple[str, list[str]]], k: int = 5) -> dict[str, Any]:
    recalls: list[float] = []
    hits = 0
    misses: list[str] = []
    started = time.perf_counter()
    for question, expected in questions:
        ranked = [r.product.id for r in ranker.rank(question, k)]
        found = len(set(expected) & set(ranked))
        recalls.append(found / len(expected))
        hits += bool(ranked) and ranked[0] in expected
        if found < len(expected):
            misses.append(f"{question!r}: expected {expected}, got {ranked}")
    elapsed = time.perf_counter() - started
    return {
        "recall_at_5": round(sum(recalls) / len(recalls), 3),
        "hit_at_1": round(hits / len(questions), 3),
        "ms_per_question": round(1000 * elapsed / len(questions), 3),
        "misses": misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    args = parser.parse_args()
    questions = load_questions(args.questions)
    products = asyncio.run(load_products())
    started = time.perf_counter()
    index = CatalogIndex(products)
    build_ms = 1000 * (time.perf_counter() - started)
    ours = evaluate(index, questions)
    baseline = evaluate(KeywordOverlapIndex(products), questions)
    print(f"{len(questions)} held-out questions, {len(products)} products (index built in {build_ms:.1f} ms)")
    for name, figures in (("catalog_index", ours), ("keyword_overlap (baseline)", baseline)):
        print(f"  {name:28} recall@5 {figures['recall_at_5']:.3f}   hit@1 {figures['hit_at_1']:.3f}"
              f"   {figures['ms_per_question']:.2f} ms/question")
    for miss in ours["misses"]:
        print(f"  missed: {miss}")
    print(json.dumps({
        "recall_at_5": ours["recall_at_5"],
        "questions": len(questions),
        "hit_at_1": ours["hit_at_1"],
        "ms_per_question": ours["ms_per_question"],
        "baseline": "keyword_overlap",
        "baseline_recall_at_5": baseline["recall_at_5"],
        "baseline_hit_at_1": baseline["hit_at_1"],
    }))


if __name__ == "__main__":
    main()
