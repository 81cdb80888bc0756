"""The line a client hears once when she writes while her advisor has the conversation."""

from __future__ import annotations

import pytest

from salon.advisors.paused import should_acknowledge, waiting_note


@pytest.mark.parametrize(("intents", "told", "expected"), [
    (["aftercare_repair"], False, True),  # something more for the advisor: told once
    (["complaint", "inform"], True, False),  # already told since the handover
    (["thank"], False, False),  # a thank-you needs no answer
    (["affirm"], False, False),
    (["goodbye"], False, False),
    (["thank", "check_order_status"], False, True),  # the first real message after a thanks
    ([None], False, True),  # not understood: still something for the advisor
    ([], False, False),
])
def test_when_the_note_is_due(intents: list[str | None], told: bool, expected: bool) -> None:
    assert should_acknowledge(intents, told) is expected


def test_the_note_in_the_clients_language() -> None:
    assert waiting_note("fr") == ("Votre message est bien parvenu à nos conseillers ; l'un d'eux "
                                  "vous répondra ici personnellement.")
    assert waiting_note("it").startswith("Il Suo messaggio è arrivato ai nostri consulenti")
    assert waiting_note("de") == waiting_note("en") == waiting_note(None)
    assert "!" not in waiting_note("en")


def test_the_note_names_the_advisor_and_agrees_with_them() -> None:
    assert waiting_note("fr", "Sophie", "f") == ("Votre conseillère Sophie a bien reçu votre "
                                                 "message et vous répondra ici personnellement.")
    assert waiting_note("fr", "James", "m").startswith("Votre conseiller James a bien reçu")
    assert waiting_note("it", "Giulia", "f").startswith("La Sua consulente Giulia ha ricevuto")
    assert waiting_note("it", "James", "m").startswith("Il Suo consulente James ha ricevuto")
    assert waiting_note("en", "Olivia", "f").startswith("Your client advisor Olivia has your")
    # a book that does not record the advisor's gender: her name, no noun to guess
    assert waiting_note("fr", "Camille", None).startswith("Camille a bien reçu votre message")
