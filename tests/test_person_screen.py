"""Which messages a person must answer (salon/advisors/screen.py) and the NLU step that
applies it to every message (components/person_screen.py).

The sets are in tests/handoff/. ``development-1.yml`` and ``development-2.yml`` are the
ones the screen's patterns were written against: the patterns must read them as labelled.
``heldout.yml`` and ``heldout-2.yml`` were written blind to the patterns and to the
learned model's training data; together they are the evaluation set bench/handoff.py
measures against the goals (recall ≥ 0.97, false handoffs ≤ 0.05 per language), which
the screen must keep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa.shared.nlu.training_data.message import Message

from components.person_screen import SCREEN_KEY, PersonScreen, screened_intent
from salon.advisors.screen import HANDOFF_REASONS, pattern_reason, person_needed

SETS = Path(__file__).resolve().parent / "handoff"
LANGUAGES = ("en", "fr", "it")


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((SETS / name).read_text(encoding="utf-8"))


def _rates(sets: list[dict[str, Any]], language: str) -> tuple[float, float]:
    person = [text for data in sets for texts in data["person"][language].values() for text in texts]
    assistant = [text for data in sets for text in data["assistant"][language]]
    recall = sum(person_needed(text) is not None for text in person) / len(person)
    false = sum(person_needed(text) is not None for text in assistant) / len(assistant)
    return recall, false


SET_NAMES = ("development-1.yml", "development-2.yml", "heldout.yml", "heldout-2.yml")


@pytest.mark.parametrize("name", SET_NAMES)
def test_each_set_has_fifty_and_fifty_messages_per_language_and_every_reason(name: str) -> None:
    data = _load(name)
    for language in LANGUAGES:
        by_reason = data["person"][language]
        assert set(by_reason) == set(HANDOFF_REASONS), language
        assert sum(len(texts) for texts in by_reason.values()) == 50
        assert len(data["assistant"][language]) == 50
    # No sentence is shared with another set (a lone "ok" or "STOP" may be).
    others = [text for other in SET_NAMES if other != name for text in _all_texts(_load(other))]
    assert {text for text in set(_all_texts(data)) & set(others) if len(text) > 12} == set()


def _all_texts(data: dict[str, Any]) -> list[str]:
    texts = [t for language in data["person"].values() for ts in language.values() for t in ts]
    return texts + [t for ts in data["assistant"].values() for t in ts]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_first_development_set_is_read_by_the_patterns_as_labelled(language: str) -> None:
    data = _load("development-1.yml")
    wrong = [(reason, text, pattern_reason(text))
             for reason, texts in data["person"][language].items() for text in texts
             if pattern_reason(text) != reason]
    assert wrong == []
    assert [text for text in data["assistant"][language] if pattern_reason(text)] == []
    # The screen (patterns, then the learned model) gives the patterns' reason.
    assert all(person_needed(text) == reason
               for reason, texts in data["person"][language].items() for text in texts)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_second_development_set_reaches_a_person_with_the_right_reason(language: str) -> None:
    data = _load("development-2.yml")
    recall, false = _rates([data], language)
    assert recall >= 0.98 and false <= 0.04, (recall, false)
    wrong = [(reason, text) for reason, texts in data["person"][language].items() for text in texts
             if pattern_reason(text) not in (None, reason)]
    assert wrong == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_held_out_sets_reach_the_goals(language: str) -> None:
    recall, false = _rates([_load("heldout.yml"), _load("heldout-2.yml")], language)
    assert recall >= 0.97 and false <= 0.05, (language, recall, false)


@pytest.mark.parametrize(("text", "reason"), [
    ("I'm dying to see the new collection", None),
    ("is it real leather?", None),
    ("la borsa c'è ancora?", None),
    ("le colis est parti hier ?", None),
    ("I'm having a hard time choosing between the two bags", None),
    ("am I talking to a bot?", None),  # questions the assistant answers (bot_challenge)
    ("are you a real human?", None),
    ("vous êtes humain ?", None),
    ("sei un essere umano?", None),
    ("c'est un robot ?", None),
    ("sei un bot?", None),
    ("le manteau est en rupture de stock ?", None),
    ("Ma mère est décédée la semaine dernière", "distress"),
    ("Qualcuno ha usato il mio account!! non ero io", "fraud"),
    ("ARRÊTEZ de me prélever deux fois", "payment"),
])
def test_accents_capitals_and_lookalikes(text: str, reason: str | None) -> None:
    assert person_needed(text) == reason


def test_being_left_a_voicemail_is_not_being_left() -> None:
    # Not distress; asking to be called back is a request the advisor answers.
    assert pattern_reason("you left me a voicemail, call back please") is None
    assert person_needed("you left me a voicemail, call back please") in (None, "human_request")


def _message(text: str, intent: str) -> Message:
    return Message(data={"text": text, "intent": {"name": intent, "confidence": 0.81},
                         "intent_ranking": [{"name": intent, "confidence": 0.81}]})


@pytest.mark.parametrize("text", [
    # Asking who answers is a question the assistant answers itself.
    "vous êtes une IA ou une vraie conseillère ?",
    "c'est une vraie personne qui écrit ou un programme ?",
    "y a quelqu'un de réel derrière ce compte ?",
    "sto parlando con una persona vera?",
    "sono risposte automatiche?",
    "c'è qualcuno in carne e ossa dall'altra parte?",
    # ... also with a remark after it, or asked of an "automated assistant".
    "Are you a real person or an AI? The replies are very fast haha",
    "Vous êtes une vraie personne ou un assistant virtuel ? Pure curiosité",
    "sei un bot? per curiosità",
    "are you a bot? just curious",
    # "reporter" is French for postponing, not a journalist.
    "j'aimerais reporter mon rendez-vous à la semaine prochaine",
    # A hole to mend is a repair request, not a complaint, unless the piece came that way.
    "il cappotto ha un buco di tarma, si può sistemare?",
    # Speaking a language is asking for another language, not for a person.
    "je préfère parler anglais",
    "preferisco parlare italiano",
    "I would rather speak French",
    # How a refund works is the returns policy's to say (action_returns).
    "et le remboursement ?",
    "how long does the refund take?",
    "e il rimborso?",
])
def test_what_sounds_like_a_reason_but_is_not(text: str) -> None:
    assert person_needed(text) is None


@pytest.mark.parametrize(("text", "reason"), [
    ("a reporter from the Times was waiting outside the boutique", "discretion"),
    ("il pacco è arrivato con un buco enorme nella borsa", "complaint"),
    ("je veux parler à une vraie personne, pas à un robot", "human_request"),
    # Where her refund stands is for a person: the assistant cannot see it.
    ("où en est mon remboursement ?", "payment"),
    ("a che punto è il mio rimborso?", "payment"),
    ("where is my refund?", "payment"),
])
def test_the_narrowed_patterns_still_catch_their_reason(text: str, reason: str) -> None:
    assert person_needed(text) == reason


def test_the_nlu_step_sends_what_a_person_must_answer_to_the_handoff_intents() -> None:
    screen = PersonScreen()
    grief, anger, booking, stop, button = (
        _message("mon père est décédé dimanche, annulez le rendez-vous", "cancel_appointment"),
        _message("This is unacceptable, the strap broke again", "aftercare_repair"),
        _message("Book me in on Saturday at 3, no later", "book_appointment"),
        _message("STOP, you people are a disgrace", "opt_out"),
        _message("/talk_to_advisor", "talk_to_advisor"),
    )
    human = _message("stop, get me someone from the boutique", "opt_out")
    screen.process([grief, anger, booking, stop, button, human])
    assert human.get("intent")["name"] == "talk_to_advisor"
    assert grief.get("intent") == {"name": "talk_to_advisor", "confidence": 1.0}
    assert grief.as_dict(only_output_properties=True)[SCREEN_KEY] == {
        "reason": "distress", "replaced_intent": "cancel_appointment"}
    assert grief.get("intent_ranking")[0]["name"] == "cancel_appointment"  # the classifier's, kept
    assert anger.get("intent")["name"] == "complaint" == screened_intent("complaint")
    for untouched, intent in ((booking, "book_appointment"), (stop, "opt_out"), (button, "talk_to_advisor")):
        assert untouched.get("intent")["name"] == intent and untouched.get(SCREEN_KEY) is None


@pytest.mark.parametrize("text", [
    # Idioms and ordinary requests that borrow a reason's words (see screen._HARMLESS).
    "Do you have court shoes in navy, size 40?",
    "un portadocumenti in pelle con le sue iniziali, mi dite i tempi?",
    "le manteau existe-t-il en version courte, type petite/court ?",
    "Sorry, phone died! Yes Thursday 3pm works",
    "sono morta dal ridere per la campagna nuova 😂",
    "Can't complain at all, the scarf is perfect. Thanks!",
    "Is the leather genuine calfskin?",
    "Quella cintura è vera pelle di coccodrillo?",
    "Je cherche une police d'écriture élégante pour la gravure",
    "Des idées de cadeaux pour les maîtresses en fin d'année ?",
    "Cerco un regalo per il mio avvocato, qualcosa di classico per la scrivania.",
    "I work at the hospital round the corner, are you open after 7 on Thursdays?",
    "My sister's pregnant with twins, what's a lovely gift for her?",
])
def test_borrowed_words_do_not_trigger_the_patterns(text: str) -> None:
    assert pattern_reason(text) is None


@pytest.mark.parametrize(("text", "reason"), [
    ("I'll be filing a claim at the county court on Monday", "legal"),
    ("sono l'avvocato Ferraris e scrivo per conto della mia assistita", "legal"),
    ("Is the fragrance safe while pregnant? It was a gift", "health"),
    ("I will sue you if the bag is not replaced", "legal"),
])
def test_what_the_harmless_phrases_must_not_hide(text: str, reason: str) -> None:
    assert pattern_reason(text) == reason


def test_an_unsure_opt_out_gives_way_to_a_person_a_sure_one_is_kept() -> None:
    screen = PersonScreen()
    unsure = _message("arrêtez tout, quelqu'un a changé mon mot de passe, ce n'est pas moi", "opt_out")
    unsure.set("intent", {"name": "opt_out", "confidence": 0.6})
    sure = _message("STOP, you people are a disgrace", "opt_out")
    sure.set("intent", {"name": "opt_out", "confidence": 0.97})
    screen.process([unsure, sure])
    assert unsure.get("intent") == {"name": "talk_to_advisor", "confidence": 1.0}
    assert sure.get("intent")["name"] == "opt_out" and sure.get(SCREEN_KEY) is None


def _ranked(text: str, ranking: list[tuple[str, float]]) -> Message:
    return Message(data={"text": text, "intent": {"name": ranking[0][0], "confidence": ranking[0][1]},
                         "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking]})


def test_a_handoff_the_screen_finds_no_reason_for_takes_the_next_intent() -> None:
    screen = PersonScreen()
    gold = _ranked("È oro vero o placcato?", [("complaint", 0.52), ("product_inquiry", 0.41)])
    unsure = _ranked("il colore della Capri è il nero?", [("complaint", 0.7), ("product_inquiry", 0.1)])
    anger = _ranked("the strap snapped AGAIN, third time", [("complaint", 0.9), ("aftercare_repair", 0.05)])
    screen.process([gold, unsure, anger])
    assert gold.get("intent") == {"name": "product_inquiry", "confidence": 0.41}
    assert gold.get(SCREEN_KEY) == {"reason": None, "replaced_intent": "complaint"}
    assert unsure.get("intent") == {"name": "nlu_fallback", "confidence": 1.0}
    assert anger.get("intent")["name"] == "complaint"


def test_a_sure_opt_out_is_kept_when_only_the_learned_model_hears_a_person_in_it() -> None:
    # "I no longer want to be contacted on WhatsApp": the learned model hears "contacted"
    # as asking for someone; her words ask for nobody, and her STOP is honoured.
    screen = PersonScreen()
    worded = _message("non voglio più essere contattata su whatsapp", "opt_out")
    worded.set("intent", {"name": "opt_out", "confidence": 0.99})
    assert pattern_reason(worded.get("text")) is None
    assert person_needed(worded.get("text")) == "human_request"  # the learned model's verdict
    # Her words ask for a person: the person comes first, as before.
    asked = _message("stop, get me someone from the boutique", "opt_out")
    asked.set("intent", {"name": "opt_out", "confidence": 0.99})
    screen.process([worded, asked])
    assert worded.get("intent")["name"] == "opt_out" and worded.get(SCREEN_KEY) is None
    assert asked.get("intent") == {"name": "talk_to_advisor", "confidence": 1.0}


def test_a_start_is_recorded_only_when_the_classifier_is_sure_of_it() -> None:
    # Consent to be written to must be unambiguous: "I want to return the belt" read as a
    # START at 0.60 would record her agreement to messages she never gave.
    screen = PersonScreen()
    unsure = _ranked("I want to return the belt", [("opt_in", 0.6), ("purchase", 0.1), ("talk_to_advisor", 0.08)])
    next_one = _ranked("posso riavere le novità sulle borse?", [("opt_in", 0.55), ("product_inquiry", 0.35)])
    sure = _ranked("please resume sending me messages", [("opt_in", 0.99), ("affirm", 0.01)])
    screen.process([unsure, next_one, sure])
    assert unsure.get("intent") == {"name": "nlu_fallback", "confidence": 1.0}
    assert unsure.get(SCREEN_KEY) == {"reason": None, "replaced_intent": "opt_in"}
    assert next_one.get("intent") == {"name": "product_inquiry", "confidence": 0.35}
    assert sure.get("intent") == {"name": "opt_in", "confidence": 0.99} and sure.get(SCREEN_KEY) is None
