"""Every response of the domain speaks English, French and Italian alike.

Each response has a variation conditioned on ``language: fr``, one on ``language: it``
and an unconditioned English default after them; every variation offers the same
``{placeholders}``, button payloads and metadata; button titles fit WhatsApp's 20
characters; French says "vous" and Italian "Lei", never the informal forms.

A French or Italian response that names the client's own advisor comes in three
variations, also conditioned on ``advisor_gender``: ``f`` ("votre conseillère
{advisor_name}"), ``m`` ("il Suo consulente {advisor_name}") and ``null`` (no advisor:
"un conseiller", "uno dei nostri consulenti"). Only the first two may say
``{advisor_name}``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from salon.whatsapp.merging import LEAD

DOMAIN = Path(__file__).resolve().parents[1] / "domain.yml"
LANGUAGES = ("fr", "it")
GENDERS = ("f", "m", None)
ADVISOR_NAME = "advisor_name"
MAX_TITLE = 20
PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
INFORMAL = {
    "fr": re.compile(r"\b(tu|toi|te|ton|ta|tes)\b", re.IGNORECASE),
    "it": re.compile(r"\b(tu|ti|te|tuo|tua|tuoi|tue)\b", re.IGNORECASE),
}


def load_responses(path: Path = DOMAIN) -> dict[str, list[dict[str, Any]]]:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)["responses"]


def language_of(variation: dict[str, Any]) -> str | None:
    """The value of the variation's ``language`` slot condition; None when unconditioned."""
    for condition in variation.get("condition") or []:
        if condition.get("type") == "slot" and condition.get("name") == "language":
            return str(condition.get("value"))
    return None


def gendered(variation: dict[str, Any]) -> bool:
    """Whether the variation is conditioned on the advisor's gender."""
    return any(c.get("name") == "advisor_gender" for c in variation.get("condition") or [])


def gender_of(variation: dict[str, Any]) -> str | None:
    for condition in variation.get("condition") or []:
        if condition.get("type") == "slot" and condition.get("name") == "advisor_gender":
            value = condition.get("value")
            return None if value is None else str(value)
    return None


def language_problems(name: str, variations: list[dict[str, Any]]) -> list[str]:
    """What a response lacks: a French and an Italian variation, an unconditioned
    default last, conditioned ones only on the language slot (and, for the three
    variations that name the client's advisor, on ``advisor_gender``).
    """
    problems = []
    languages = [language_of(v) for v in variations]
    for language in LANGUAGES:
        if language not in languages:
            problems.append(f"{name}: no variation for language {language}")
        mine = [v for v, lang in zip(variations, languages, strict=True) if lang == language]
        if any(gendered(v) for v in mine):
            said = sorted((gender_of(v) or "null") for v in mine)
            if not all(gendered(v) for v in mine) or said != ["f", "m", "null"]:
                problems.append(f"{name}: {language} is split by the advisor's gender but its "
                                f"variations are {said}, not f, m and null")
    if None not in languages:
        problems.append(f"{name}: no unconditioned (English) default")
    elif languages[-1] is not None:
        problems.append(f"{name}: the unconditioned default is not the last variation")
    for variation, language in zip(variations, languages, strict=True):
        others = [c.get("name") for c in variation.get("condition") or []
                  if c.get("name") not in ("language", "advisor_gender")]
        if variation.get("condition") and (language is None or others):
            problems.append(f"{name}: a variation is conditioned on something other than language")
        elif language is not None and language not in LANGUAGES:
            problems.append(f"{name}: a variation is for unknown language {language!r}")
    return problems


def placeholders(variation: dict[str, Any]) -> set[str]:
    return set(PLACEHOLDER.findall(str(variation.get("text") or "")))


def payloads(variation: dict[str, Any]) -> list[str]:
    return [str(button.get("payload")) for button in variation.get("buttons") or []]


def words_of(variation: dict[str, Any]) -> str:
    titles = " ".join(str(b.get("title")) for b in variation.get("buttons") or [])
    return f"{variation.get('text') or ''} {titles}"


RESPONSES = load_responses()


def test_the_domain_has_responses() -> None:
    assert len(RESPONSES) > 30


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_every_response_exists_in_every_language(name: str) -> None:
    assert language_problems(name, RESPONSES[name]) == []


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_button_titles_fit_whatsapp(name: str) -> None:
    too_long = [
        (language_of(v) or "en", b.get("title"))
        for v in RESPONSES[name]
        for b in v.get("buttons") or []
        if len(str(b.get("title"))) > MAX_TITLE
    ]
    assert too_long == []


def sending(variation: dict[str, Any]) -> dict[str, Any]:
    """A variation's metadata without its lead: what the send-time guard decides by."""
    return {k: v for k, v in (variation.get("metadata") or {}).items() if k != LEAD}


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_variations_carry_the_same_placeholders_payloads_and_metadata(name: str) -> None:
    variations = RESPONSES[name]
    default = next(v for v in reversed(variations) if language_of(v) is None)
    for variation in variations:
        language = language_of(variation) or "en"
        said = placeholders(variation)
        if gendered(variation) and gender_of(variation) is not None:
            assert ADVISOR_NAME in said, (language, variation.get("text"))
            said = said - {ADVISOR_NAME}
        assert said == placeholders(default), (language, variation.get("text"))
        assert payloads(variation) == payloads(default), language
        # The same purpose and origin in every language; a lead is the variation's own words.
        assert sending(variation) == sending(default), language
        lead = (variation.get("metadata") or {}).get(LEAD)
        assert (lead is None) == ((default.get("metadata") or {}).get(LEAD) is None), language
        assert lead is None or str(variation.get("text")).startswith(lead), (language, lead)


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_french_and_italian_stay_formal(name: str) -> None:
    informal = [
        (language, match.group(0), variation.get("text"))
        for variation in RESPONSES[name]
        if (language := language_of(variation)) in INFORMAL
        for match in INFORMAL[language].finditer(words_of(variation))
    ]
    assert informal == []


def test_a_missing_language_is_caught() -> None:
    name = next(iter(RESPONSES))
    for language in LANGUAGES:
        without = [v for v in RESPONSES[name] if language_of(v) != language]
        assert f"{name}: no variation for language {language}" in language_problems(name, without)
    only_conditioned = [v for v in RESPONSES[name] if language_of(v) is not None]
    assert f"{name}: no unconditioned (English) default" in language_problems(
        name, only_conditioned
    )


def test_the_gendered_advisor_variations_are_complete() -> None:
    split = [name for name, variations in RESPONSES.items() if any(map(gendered, variations))]
    assert "utter_media_received" in split and len(split) >= 10
    french = {gender_of(v): str(v["text"]) for v in RESPONSES["utter_media_received"]
              if language_of(v) == "fr"}
    assert "votre conseillère {advisor_name}" in french["f"]
    assert "votre conseiller {advisor_name}" in french["m"]
    assert "{advisor_name}" not in french[None]
    italian = {gender_of(v): str(v["text"]) for v in RESPONSES["utter_media_received"]
               if language_of(v) == "it"}
    assert "alla Sua consulente {advisor_name}" in italian["f"]
    assert "al Suo consulente {advisor_name}" in italian["m"]
    without_m = [v for v in RESPONSES["utter_media_received"]
                 if not (language_of(v) == "fr" and gender_of(v) == "m")]
    assert any("split by the advisor's gender" in problem
               for problem in language_problems("utter_media_received", without_m))


def test_the_informal_check_bites() -> None:
    assert INFORMAL["fr"].search("Que puis-je faire pour toi ? Ton sac est prêt.")
    assert (
        INFORMAL["it"].search("Come posso aiutarti? Il tuo ordine è partito. Ti scrivo domani.")
        is not None
    )
    assert not INFORMAL["fr"].search("Votre commande est en route ; souhaitez-vous le suivi ?")
    assert not INFORMAL["it"].search("Il Suo ordine è partito: desidera il link?")
