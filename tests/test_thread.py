"""A piece pointed at, not named: "the other one", "l'autre", "il secondo"."""

from __future__ import annotations

import pytest

from salon.conversation.thread import points_elsewhere, the_other_piece

SUGGESTED = ["Aurore tote", "Céleste saddle bag", "Mistral clutch"]


@pytest.mark.parametrize("text", [
    "and the other one?", "what about the other one", "How much is the second one?",
    "et l'autre ?", "le deuxième me plaît", "e l'altro?", "mi parli della seconda",
])
def test_words_that_point_at_another_piece(text: str) -> None:
    assert points_elsewhere(text)


@pytest.mark.parametrize("text", ["and in camel?", "is it in stock in Paris?", "autrement dit", "", None])
def test_words_that_do_not(text: str | None) -> None:
    assert not points_elsewhere(text)


def test_which_piece_is_meant() -> None:
    assert the_other_piece("and the other one?", SUGGESTED, "Aurore tote") == "Céleste saddle bag"
    assert the_other_piece("et l'autre ?", SUGGESTED, "Céleste saddle bag") == "Aurore tote"
    assert the_other_piece("the third one?", SUGGESTED, "Aurore tote") == "Mistral clutch"
    assert the_other_piece("il secondo?", SUGGESTED, None) == "Céleste saddle bag"
    assert the_other_piece("the other one", ["Aurore tote"], "Aurore tote") is None
    assert the_other_piece("the third one", SUGGESTED[:2], "Aurore tote") == "Céleste saddle bag"
