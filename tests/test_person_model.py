"""The learned half of the person screen (salon/advisors/person_model.py): its training
data, its mechanics on a small set, and the project's model on messages it never saw.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from salon.advisors.person_model import (
    NONE,
    Example,
    PersonModel,
    cached_model,
    default_model,
    training_examples,
)
from salon.advisors.screen import HANDOFF_REASONS, person_needed
from salon.config import PROJECT_ROOT

HANDOFF_DATA = PROJECT_ROOT / "data" / "handoff"
HELD_OUT = [PROJECT_ROOT / "tests" / "handoff" / name for name in ("heldout.yml", "heldout-2.yml")]
LANGUAGES = ("en", "fr", "it")


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_language_has_training_messages_for_every_reason_and_ordinary_ones(language: str) -> None:
    files = sorted(HANDOFF_DATA.glob(f"{language}*.yml"))
    assert files
    by_reason: dict[str, int] = {}
    ordinary = 0
    for path in files:
        data = _load(path)
        assert set(data.get("person") or {}) <= set(HANDOFF_REASONS), path
        for reason, texts in (data.get("person") or {}).items():
            by_reason[reason] = by_reason.get(reason, 0) + len(texts)
        ordinary += len(data["assistant"])
    assert set(by_reason) == set(HANDOFF_REASONS)
    assert min(by_reason.values()) >= 40 and ordinary >= 200, (by_reason, ordinary)


def test_the_nlu_examples_join_the_training_with_their_annotations_removed() -> None:
    examples = training_examples()
    labels = {example.label for example in examples}
    assert labels == set(HANDOFF_REASONS) | {NONE}
    texts = {example.text: example.label for example in examples}
    # data/nlu/care.yml: a request for a person, and an ordinary request with an entity.
    assert texts["can I speak to a human"] == "human_request"
    assert not any("](" in text or "]{" in text for text in texts)


def test_no_held_out_message_is_a_training_message() -> None:
    trained = {example.text.strip().casefold() for example in training_examples()}
    for path in HELD_OUT:
        data = _load(path)
        held = [t for lang in data["person"].values() for ts in lang.values() for t in ts]
        held += [t for ts in data["assistant"].values() for t in ts]
        assert {t for t in held if t.strip().casefold() in trained and len(t) > 12} == set(), path


SMALL = [
    Example("my father died last night", "distress"),
    Example("we buried my mother on monday", "distress"),
    Example("grief is heavy since my husband died", "distress"),
    Example("someone hacked my account", "fraud"),
    Example("my account was hacked yesterday", "fraud"),
    Example("a hacker changed my password", "fraud"),
    Example("book me a fitting on saturday", NONE),
    Example("what time do you open on saturday", NONE),
    Example("is the saddle bag in stock", NONE),
    Example("can I book a fitting for the coat", NONE),
    Example("thank you, see you saturday", NONE),
    Example("do you have the tote in black", NONE),
]


def test_a_small_model_reads_what_it_was_taught_and_says_why() -> None:
    model = PersonModel(SMALL, threshold=0.5)
    grief, hacked, booking = model.read_many(
        ["my mother died", "my account got hacked", "book a fitting on saturday"])
    assert grief.reason == "distress" and grief.person > 0.5
    assert hacked.reason == "fraud" and hacked.person > 0.5
    assert booking.person < 0.5
    assert model.needs_person("my account got hacked") == "fraud"
    assert model.needs_person("book a fitting on saturday") is None
    assert model.read_many([]) == []


def test_the_threshold_decides() -> None:
    text = "my mother died"
    chance = PersonModel(SMALL).read(text).person
    assert PersonModel(SMALL, threshold=chance - 0.01).needs_person(text) == "distress"
    assert PersonModel(SMALL, threshold=chance + 0.01).needs_person(text) is None


def test_training_without_both_kinds_of_message_is_refused() -> None:
    with pytest.raises(ValueError, match="ordinary messages and messages for a person"):
        PersonModel([example for example in SMALL if example.label == NONE])
    with pytest.raises(ValueError):
        PersonModel([example for example in SMALL if example.label != NONE])


def test_the_screen_asks_the_model_given_to_it_after_its_patterns() -> None:
    small = PersonModel(SMALL, threshold=0.5)
    # No pattern knows this wording; the model was taught its neighbours.
    assert person_needed("grief since we buried my father", small) == "distress"
    # A pattern's reason comes first, whatever the model says.
    assert person_needed("I want to speak to a lawyer about the bag", small) == "legal"
    # A question about who answers stays the assistant's.
    assert person_needed("are you a bot?", small) is None


def test_the_project_model_is_trained_once_per_process() -> None:
    assert default_model() is default_model()


def test_a_trained_model_is_kept_as_plain_arrays_and_read_back_the_same(tmp_path: Path) -> None:
    trained = cached_model(SMALL, tmp_path)
    [kept] = list(tmp_path.glob("person-model-*.npz"))
    with np.load(kept, allow_pickle=False) as state:  # no pickled objects in it
        assert set(state.files) >= {"reasons", "weights", "intercepts", "chars_terms", "words_idf"}
    again = cached_model(SMALL, tmp_path)
    texts = ["my mother died", "book a fitting on saturday", "someone hacked my account"]
    assert again.read_many(texts) == trained.read_many(texts)
    # Other examples, another model: the cache is keyed by what the model was trained on.
    cached_model([*SMALL, Example("my account was taken over", "fraud")], tmp_path)
    assert len(list(tmp_path.glob("person-model-*.npz"))) == 2


def test_a_broken_or_unwritable_cache_is_trained_around(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cached_model(SMALL, tmp_path)
    [kept] = list(tmp_path.glob("person-model-*.npz"))
    kept.write_bytes(b"not an archive")
    with caplog.at_level(logging.WARNING, logger="salon.advisors.person_model"):
        model = cached_model(SMALL, tmp_path)
    assert model.needs_person("my account got hacked") == "fraud"
    assert "unreadable" in caplog.text
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING, logger="salon.advisors.person_model"):
        assert cached_model(SMALL, blocked / "cache").needs_person("my account got hacked") == "fraud"
    assert "not cached" in caplog.text
