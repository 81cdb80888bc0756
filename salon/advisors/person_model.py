"""The learned half of the person screen: a classifier for what no pattern foresaw.

The patterns of :mod:`salon.advisors.screen` are precise and say why, but a client in
distress does not use the words a pattern expects ("it's been a rough few weeks since
mum", "le fermoir a lâché pour la troisième fois, sans commentaire", "mi scrivono a nome
vostro chiedendo il codice della carta"). This model reads the rest: logistic regressions
(scikit-learn) over character and word n-grams of the folded text, with its emoji, its ``?``
and ``!`` and its length kept as words, trained on

- ``data/handoff/*.yml``: per language, messages a person must answer, grouped by reason
  (:data:`salon.advisors.screen.HANDOFF_REASONS`), and ordinary messages the assistant
  answers itself, many of them close to the sensitive ones on the surface (the
  ``-indirect`` files: understated, sarcastic, in passing; the ``-mixed`` files: longer
  messages where the sensitive part sits inside an ordinary request);
- the NLU examples in ``data/nlu/``: ``complaint`` and ``talk_to_advisor`` as complaints
  and requests for a person, every other intent as ordinary.

:data:`THRESHOLD` is 0.5, each regression's even odds (the two kinds are weighted alike);
it was not tuned. The choices (the features, one regression per reason, the data) were
made by cross-validation on the training data (``bench/person_model.py``);
``bench/handoff.py`` reports the held-out sets. Training takes a few seconds and is done
once per process, at first use or when a server starts (:func:`warm`): the data files
are the model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import sklearn
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from salon.config import PROJECT_ROOT
from salon.integrations.catalog import fold

__all__ = ["NONE", "THRESHOLD", "Example", "PersonModel", "Verdict", "cache_dir", "cached_model",
           "default_model", "features", "fingerprint", "handoff_examples", "nlu_examples", "reading", "training_examples",
           "warm"]

logger = logging.getLogger(__name__)

NONE: Final = "none"
"""The label of a message the assistant answers itself."""

THRESHOLD: Final = 0.5
"""The chance of a person being needed from which the model hands a message over."""

HANDOFF_DATA: Final = PROJECT_ROOT / "data" / "handoff"
NLU_DATA: Final = PROJECT_ROOT / "data" / "nlu"

# The NLU intents whose examples are messages for a person, and the reason they stand for.
_NLU_REASONS: Final = {"complaint": "complaint", "talk_to_advisor": "human_request"}
_ANNOTATION: Final = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def reading(text: str) -> str:
    """What the model reads of ``text``: its folded words, then as words its emoji, its
    ``?`` and ``!`` (folding drops them, but "😂" or "!!!" tell a joke from a grievance) and
    its length (a short message carries little evidence either way).
    """
    folded = fold(text)
    signs = [f"emoji{ord(char):x}" for char in text if unicodedata.category(char) == "So"]
    if "?" in text:
        signs.append("qmark")
    if "!" in text:
        signs.append("xmark")
    words = len(folded.split())
    signs.append("lenxs" if words <= 4 else "lens" if words <= 8 else "lenm" if words <= 16 else "lenl")
    return " ".join([folded, *signs])


@dataclass(frozen=True, slots=True)
class Example:
    """One training message and its label (a handoff reason or :data:`NONE`)."""

    text: str
    label: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The model's reading of one message."""

    person: float
    """The chance that a person must answer it, from 0 to 1."""
    reason: str
    """The most likely handoff reason (given even when ``person`` is low)."""


def features() -> FeatureUnion:
    """The n-grams both regressions read: characters 2 to 5 within words, words 1 and 2."""
    return FeatureUnion([
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                  token_pattern=r"(?u)\b\w+\b")),
    ])


class PersonModel:
    """A trained classifier: :meth:`read` a message, :meth:`needs_person` for the verdict.

    One logistic regression per reason, each against the ordinary messages (the two kinds
    weighted alike, however many ordinary messages there are), over the same n-grams: the
    chance that a person is needed is the highest of theirs, and its reason the one given.
    (One regression for every reason at once mixes ten unlike things into one class and
    hands over more ordinary messages: ``bench/person_model.py``.)
    """

    def __init__(self, examples: Sequence[Example], threshold: float = THRESHOLD) -> None:
        labels = np.array([example.label for example in examples])
        reasons = sorted(set(labels.tolist()) - {NONE})
        if not reasons or NONE not in labels:
            raise ValueError("training needs ordinary messages and messages for a person")
        grams_of = features()
        grams = grams_of.fit_transform([reading(example.text) for example in examples])
        weights, intercepts = [], []
        for reason in reasons:
            kept = (labels == reason) | (labels == NONE)
            regression = LogisticRegression(C=10.0, class_weight="balanced", solver="liblinear", dual=True,
                                            max_iter=1000, random_state=0)
            regression.fit(grams[kept], labels[kept] == reason)
            weights.append(regression.coef_[0])
            intercepts.append(regression.intercept_[0])
        self._setup(reasons, grams_of, np.vstack(weights), np.array(intercepts), threshold)

    def _setup(self, reasons: list[str], grams_of: FeatureUnion, weights: np.ndarray,
               intercepts: np.ndarray, threshold: float) -> None:
        self.reasons = reasons
        self.threshold = threshold
        self._features = grams_of
        self._weights = weights
        self._intercepts = intercepts

    def state(self) -> dict[str, np.ndarray]:
        """Everything the model is, as plain arrays (no pickled objects): see :meth:`restored`."""
        state: dict[str, np.ndarray] = {"reasons": np.array(self.reasons), "weights": self._weights,
                                        "intercepts": self._intercepts}
        for name, vectorizer in self._features.transformer_list:
            terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
            state[f"{name}_terms"] = np.array(terms)
            state[f"{name}_idf"] = np.asarray(vectorizer.idf_)
        return state

    @classmethod
    def restored(cls, state: Mapping[str, np.ndarray], threshold: float = THRESHOLD) -> PersonModel:
        """The model :meth:`state` described, without training."""
        grams_of = features()
        for name, vectorizer in grams_of.transformer_list:
            terms = [str(term) for term in state[f"{name}_terms"]]
            vectorizer.set_params(vocabulary={term: index for index, term in enumerate(terms)})
            vectorizer.idf_ = np.asarray(state[f"{name}_idf"], dtype=np.float64)
        model = cls.__new__(cls)
        model._setup([str(reason) for reason in state["reasons"]], grams_of,
                     np.asarray(state["weights"]), np.asarray(state["intercepts"]), threshold)
        return model

    def read(self, text: str) -> Verdict:
        """How likely ``text`` needs a person, and for which reason."""
        return self.read_many([text])[0]

    def read_many(self, texts: Iterable[str]) -> list[Verdict]:
        """:meth:`read` for many messages at once (faster than one by one)."""
        read = [reading(text) for text in texts]
        if not read:
            return []
        scores = self._features.transform(read) @ self._weights.T + self._intercepts
        chances = 1.0 / (1.0 + np.exp(-np.asarray(scores)))
        best = chances.argmax(axis=1)
        return [Verdict(person=float(chances[row, column]), reason=self.reasons[column])
                for row, column in enumerate(best)]

    def needs_person(self, text: str) -> str | None:
        """The reason a person must answer ``text``, or None below the threshold."""
        verdict = self.read(text)
        return verdict.reason if verdict.person >= self.threshold else None


def handoff_examples(path: Path) -> Iterator[Example]:
    """The examples of one ``data/handoff/`` file: its reasons, then its ordinary messages."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for reason, texts in (data.get("person") or {}).items():
        for text in texts or ():
            yield Example(str(text), str(reason))
    for text in data.get("assistant") or ():
        yield Example(str(text), NONE)


def nlu_examples(path: Path) -> Iterator[Example]:
    """The examples of one Rasa NLU file, annotations removed: ``complaint`` and
    ``talk_to_advisor`` as their reasons, every other intent as :data:`NONE`.
    """
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for block in data.get("nlu") or ():
        intent = block.get("intent") if isinstance(block, dict) else None
        examples = block.get("examples") if isinstance(block, dict) else None
        if not intent or not isinstance(examples, str):
            continue
        label = _NLU_REASONS.get(str(intent), NONE)
        for line in examples.splitlines():
            line = line.strip()
            if line.startswith("- "):
                yield Example(_ANNOTATION.sub(r"\1", line[2:]).strip(), label)


def training_examples(handoff_dir: Path = HANDOFF_DATA, nlu_dir: Path = NLU_DATA) -> list[Example]:
    """Every training example: the handoff sets, then the NLU examples, sorted by file."""
    examples = [example for path in sorted(handoff_dir.glob("*.yml"))
                for example in handoff_examples(path)]
    examples += [example for path in sorted(nlu_dir.rglob("*.yml"))
                 for example in nlu_examples(path)]
    return [example for example in examples if example.text]


def fingerprint(examples: Sequence[Example]) -> str:
    """What a trained model depends on: its examples, this module's code, scikit-learn's
    version. A cached model is used only under the same fingerprint.
    """
    digest = hashlib.sha256()
    digest.update(Path(__file__).read_bytes())
    digest.update(sklearn.__version__.encode())
    for example in examples:
        digest.update(f"{example.label}\t{example.text}\n".encode())
    return digest.hexdigest()[:20]


def cache_dir() -> Path:
    """Where trained models are kept between processes: ``SALON_CACHE_DIR``, else
    ``var/cache`` in the project.
    """
    configured = os.environ.get("SALON_CACHE_DIR")
    return Path(configured).expanduser() if configured else PROJECT_ROOT / "var" / "cache"


def cached_model(examples: Sequence[Example], directory: Path) -> PersonModel:
    """The model for ``examples``: read from ``directory`` when one was trained on them
    before (arrays only, no pickle), else trained now and kept there. A cache that cannot
    be read or written is said in the log and trained around.
    """
    path = directory / f"person-model-{fingerprint(examples)}.npz"
    try:
        with np.load(path, allow_pickle=False) as state:
            return PersonModel.restored(state)
    except FileNotFoundError:
        logger.info("person model not in the cache yet (%s): training it", path.name)
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("person model cache %s unreadable (%s): training it again", path.name, exc)
    model = PersonModel(examples)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".npz", delete=False) as handle:
            np.savez(handle, **model.state())
        os.replace(handle.name, path)
    except OSError as exc:
        logger.warning("person model not cached in %s (%s)", directory, exc)
    return model


@lru_cache(maxsize=1)
def default_model() -> PersonModel:
    """The model of the project's data, once per process (from the cache when it can)."""
    return cached_model(training_examples(), cache_dir())


def warm() -> None:
    """Train :func:`default_model` now (a server calls it at start, not on a client's turn)."""
    default_model()
