"""The maison's template registry: selection, parameter checks, lifecycle, sync."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from salon.config import PROJECT_ROOT
from salon.emulator import rules as emulator_rules
from salon.emulator.template_store import TemplateStore
from salon.purposes import PURPOSE_CATEGORY
from salon.templates.model import (
    LANGUAGE_FALLBACK,
    LanguageMatch,
    Template,
    TemplateDefinitionError,
    language_chain,
    language_fallback,
    normalise_language,
)
from salon.templates.params import check_params, sanitize_text_param
from salon.templates.registry import NoTemplate, NoTemplateReason, TemplateChoice, TemplateRegistry
from salon.templates.sync import GraphTemplatePageFetcher
from salon.whatsapp.addressing import Recipient
from salon.whatsapp.errors import AuthError

UTC = timezone.utc
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "whatsapp"
OWN_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "whatsapp"
PARAMS = {
    "first_name": "Claire",
    "order_ref": "MS-10422",
    "boutique": "Paris Saint-Honoré",
    "date": "Wednesday 3 June",
    "time": "15:00",
    "product_name": "Saddle bag in tan",
    "item": "watch",
    "advisor_name": "Sophie",
    "event_name": "the Haute Joaillerie evening",
    "collection_name": "Autumn",
    "service": "styling session",
}
MAISON_LANGUAGES = ("en", "fr", "it")
MAX_LABEL = 20  # our own limit for button texts (Meta allows 25)


def shared_fixture(name: str) -> dict[str, Any]:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"shared fixtures folder absent: {SHARED_FIXTURES}")
    [path] = sorted(SHARED_FIXTURES.glob(f"{name}_*.json"))
    return json.loads(path.read_text(encoding="utf-8"))


def own_fixture(name: str) -> dict[str, Any]:
    return json.loads((OWN_FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture()
def registry() -> TemplateRegistry:
    return TemplateRegistry.load_default()


def chosen(result: TemplateChoice | NoTemplate) -> TemplateChoice:
    assert isinstance(result, TemplateChoice), result
    return result


# --------------------------------------------------------------------------- the YAML


def test_templates_yml_has_ten_templates_in_english_and_french(registry: TemplateRegistry) -> None:
    names = {t.name for t in registry.all()}
    bilingual = {n for n in names if registry.get(n, "en") and registry.get(n, "fr")}
    assert len(bilingual) >= 10
    assert all(t.status == "APPROVED" for t in registry.all())
    assert {"UTILITY", "MARKETING"} <= {t.category for t in registry.all()}
    purposes = set().union(*(t.purposes for t in registry.all()))
    assert {"reengage_update", "order_update", "appointment_reminder", "restock_alert",
            "event_invitation", "advisor_followup", "aftercare_update"} <= purposes
    assert any(t.parameter_format == "positional" for t in registry.all())


def test_templates_speak_in_the_maisons_voice(registry: TemplateRegistry) -> None:
    for template in registry.all():
        body = template.component("BODY")
        assert body is not None and body.text
        assert "!" not in body.text and "??" not in body.text
        assert len(body.text) <= 250  # brief: a knock on the door
        personal = set(template.required_params) - {
            "first_name", "order_ref", "boutique", "date", "time", "product_name", "item",
            "advisor_name", "event_name", "collection_name", "service",
        }
        assert personal == set(), f"{template.name} asks for {personal}"
        if template.category == "MARKETING":
            footer = template.component("FOOTER")
            assert footer is not None and "STOP" in (footer.text or "")


def test_branded_reengagement_template(registry: TemplateRegistry) -> None:
    nudge = registry.get("advisor_update_nudge", "en")
    assert nudge is not None and nudge.category == "UTILITY"
    buttons = nudge.component("BUTTONS")
    assert buttons is not None and [b.text for b in buttons.buttons] == ["View update"]
    assert buttons.buttons[0].type == "QUICK_REPLY"
    body = nudge.component("BODY")
    assert body is not None and "client advisor" in (body.text or "")
    assert nudge.required_params == ("first_name",)


def test_invalid_definitions_are_rejected() -> None:
    base: dict[str, Any] = {
        "name": "ok_name", "category": "UTILITY", "purposes": ["order_update"],
        "translations": {"en": {"status": "APPROVED", "components": [
            {"type": "BODY", "text": "Hello {{first_name}}."},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "View update"}]},
        ]}},
    }
    TemplateRegistry.from_mapping({"templates": [base]})
    bad_cases = [
        {**base, "name": "Bad-Name"},
        {**base, "category": "PROMO"},
        {**base, "purposes": ["nonsense"]},
        {**base, "translations": {"en": {"components": [
            {"type": "BODY", "text": "x"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "A" * 26}]}]}}},
        {**base, "translations": {"en": {"components": [{"type": "BODY", "text": "x" * 1025}]}}},
        {**base, "parameter_format": "positional",
         "translations": {"en": {"components": [{"type": "BODY", "text": "{{2}} {{1}}"}]}}},
        {**base, "translations": {"en": {"components": [{"type": "BODY", "text": "{{First}}"}]}}},
    ]
    for case in bad_cases:
        with pytest.raises(TemplateDefinitionError):
            TemplateRegistry.from_mapping({"templates": [case]})


# --------------------------------------------------------------------------- languages


def test_language_normalisation_and_chain() -> None:
    assert normalise_language("fr-FR") == "fr_FR"
    assert normalise_language("EN_gb") == "en_GB"
    assert normalise_language("FR") == "fr"
    assert language_chain("fr_FR", "en", ["en", "en_GB", "fr", "fr_CA"]) == [
        "fr_FR", "fr", "fr_CA", "en", "en_GB"
    ]
    assert language_chain(None, "en", ["en"]) == ["en"]
    assert language_chain("en-US", "en", ["en", "en_GB"]) == ["en_US", "en", "en_GB"]


def test_selection_follows_the_language_chain(registry: TemplateRegistry) -> None:
    assert chosen(registry.select("reengage_update", "fr_FR", PARAMS)).language == "fr"
    assert chosen(registry.select("reengage_update", "de_DE", PARAMS)).language == "en"
    assert chosen(registry.select("reengage_update", None, PARAMS)).language == "en"
    assert chosen(registry.select("appointment_reminder", "en_GB", PARAMS)).language == "en_GB"
    assert chosen(registry.select("appointment_reminder", "en_US", PARAMS)).language == "en"


def test_selection_payload_named(registry: TemplateRegistry) -> None:
    choice = chosen(registry.select("reengage_update", "en", {"first_name": "Claire"}))
    assert choice.payload == {
        "name": "advisor_update_nudge",
        "language": {"code": "en"},
        "components": [
            {"type": "body", "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Claire"}]},
            {"type": "button", "sub_type": "quick_reply", "index": 0,
             "parameters": [{"type": "payload", "payload": "VIEW_UPDATE"}]},
        ],
    }
    assert choice.rendered["body"].startswith("Good day Claire, your client advisor")
    message = choice.message(Recipient(wa_id="33612345678"), biz_opaque_callback_data="outbound-1")
    assert message["type"] == "template" and message["to"] == "33612345678"
    assert message["messaging_product"] == "whatsapp" and "recipient" not in message
    assert message["template"] is choice.payload
    by_bsuid = choice.message(Recipient(user_id="FR.5772156649015328606"))
    assert by_bsuid["recipient"] == "FR.5772156649015328606" and "to" not in by_bsuid
    assert by_bsuid["recipient_type"] == "individual"
    with_ref = chosen(registry.select("reengage_update", "en", {**PARAMS, "nudge_ref": "NUDGE:42"}))
    assert with_ref.payload["components"][1]["parameters"][0]["payload"] == "NUDGE:42"


def test_selection_payload_positional_in_order(registry: TemplateRegistry) -> None:
    choice = chosen(registry.select("order_shipped", "fr", PARAMS))
    header, body, button = choice.payload["components"]
    assert header == {"type": "header", "parameters": [{"type": "text", "text": "MS-10422"}]}
    assert body["parameters"] == [{"type": "text", "text": "Claire"},
                                  {"type": "text", "text": "MS-10422"}]
    assert all("parameter_name" not in p for p in body["parameters"])
    assert button == {"type": "button", "sub_type": "url", "index": 0,
                      "parameters": [{"type": "text", "text": "MS-10422"}]}
    assert choice.rendered["body"] == (
        "Bonjour Claire, votre commande MS-10422 a quitté notre atelier et est en route vers vous."
    )


def test_params_at_hand_choose_among_templates(registry: TemplateRegistry) -> None:
    ready = chosen(registry.select("order_update", "en", {"first_name": "Claire",
                                                          "boutique": "London"}))
    assert ready.name == "order_ready_for_collection"
    shipped = chosen(registry.select("order_update", "en", PARAMS))
    assert shipped.name == "order_shipped"  # higher priority when both fit
    missing = registry.select("order_update", "en", {"first_name": "Claire"})
    assert isinstance(missing, NoTemplate)
    assert missing.reason is NoTemplateReason.MISSING_PARAMS


def test_typed_reasons(registry: TemplateRegistry) -> None:
    unknown = registry.select("horoscope", "en", PARAMS)
    assert isinstance(unknown, NoTemplate) and unknown.reason is NoTemplateReason.UNKNOWN_PURPOSE
    marketing = registry.select("event_invitation", "fr", PARAMS)
    assert isinstance(marketing, NoTemplate)
    assert marketing.reason is NoTemplateReason.CONSENT_REQUIRED
    assert chosen(registry.select("event_invitation", "fr", PARAMS, marketing_allowed=True)).language == "fr"
    only_it = TemplateRegistry(
        [t for t in registry.all() if t.language == "fr"], default_language="it"
    )
    no_lang = only_it.select("reengage_update", "it", PARAMS)
    assert isinstance(no_lang, NoTemplate) and no_lang.reason is NoTemplateReason.NO_LANGUAGE
    none_for = TemplateRegistry([registry.get("restock_alert", "en")])  # type: ignore[list-item]
    no_purpose = none_for.select("order_update", "en", PARAMS)
    assert isinstance(no_purpose, NoTemplate)
    assert no_purpose.reason is NoTemplateReason.NO_TEMPLATE_FOR_PURPOSE


# --------------------------------------------------------------------------- en, fr, it


def _yaml() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "templates.yml").read_text(encoding="utf-8"))


def _listed_purposes() -> set[str]:
    """The purposes named in the comment at the top of templates.yml."""
    header = (PROJECT_ROOT / "templates.yml").read_text(encoding="utf-8").split("\nmaison:")[0]
    listed = header.split("Purposes (our own tags) are what senders ask for:", 1)[1]
    return set(re.findall(r"[a-z]+(?:_[a-z]+)+", listed))


def _button_texts(spec: Mapping[str, Any]) -> list[str]:
    return [str(button["text"]) for comp in spec.get("components") or []
            for button in comp.get("buttons") or []]


def test_templates_yml_has_every_template_in_english_french_and_italian() -> None:
    data = _yaml()
    assert data["default_language"] == "en"
    ids: list[str] = []
    for entry in data["templates"]:
        translations = entry["translations"]
        assert set(MAISON_LANGUAGES) <= set(translations), entry["name"]
        for language, spec in translations.items():
            ids.append(str(spec["id"]))
            for text in _button_texts(spec):
                assert 1 <= len(text) <= MAX_LABEL, f"{entry['name']}/{language}: {text!r}"
        italian = translations["it"]
        assert (italian["status"], italian["quality"]) == ("APPROVED", "GREEN"), entry["name"]
    assert len(ids) == len(set(ids)), "template ids must be unique"


def test_every_listed_purpose_has_a_template_in_each_language() -> None:
    listed = _listed_purposes()
    assert listed == set(PURPOSE_CATEGORY)
    data = _yaml()
    for purpose in listed:
        for language in MAISON_LANGUAGES:
            assert any(purpose in entry["purposes"] and language in entry["translations"]
                       for entry in data["templates"]), (purpose, language)


def _shape(template: Template) -> tuple[Any, ...]:
    """What must not differ between a template's translations: the component kinds, the
    parameters (as a set for named templates, in order for positional ones) and the
    buttons apart from their text."""
    named = template.parameter_format == "named"
    return tuple(
        (
            comp.type,
            frozenset(comp.params) if named else comp.params,
            tuple((b.type, b.payload, b.payload_param, b.url, b.url_param) for b in comp.buttons),
        )
        for comp in template.components
    )


def test_translations_share_parameters_and_button_payloads(registry: TemplateRegistry) -> None:
    for name in sorted({t.name for t in registry.all()}):
        english = registry.get(name, "en")
        assert english is not None
        for language in ("fr", "it"):
            other = registry.get(name, language)
            assert other is not None and _shape(other) == _shape(english), (name, language)
            assert other.category == english.category and other.purposes == english.purposes


def test_italian_uses_the_courtesy_form(registry: TemplateRegistry) -> None:
    informal = re.compile(r"\b(tu|ti|te|tuo|tua|tuoi|tue)\b", re.IGNORECASE)
    for template in registry.all():
        if template.language != "it":
            continue
        texts = [c.text or "" for c in template.components]
        texts += [b.text for c in template.components for b in c.buttons]
        for text in texts:
            assert not informal.search(text), f"{template.name}: {text!r}"
        body = template.component("BODY")
        assert body is not None and "{{" in (body.text or "")
        if template.category == "MARKETING":
            assert "Risponda STOP" in (template.component("FOOTER").text or "")  # type: ignore[union-attr]


def test_italian_quick_replies_speak_in_the_client_voice(registry: TemplateRegistry) -> None:
    """A quick reply's title goes into the chat as the client's own message: never a
    Lei-imperative, which would have her addressing herself ("Scopra la novità")."""
    to_her = re.compile(r"^(Scopra|Scelga|Legga|Prenoti|Segua|Veda|Guardi)\b")
    for template in registry.all():
        if template.language != "it":
            continue
        titles = [b.text for c in template.components for b in c.buttons if b.type == "QUICK_REPLY"]
        assert not [t for t in titles if to_her.match(t)], (template.name, titles)
    nudge = registry.get("advisor_update_nudge", "it")
    assert nudge is not None
    assert [b.text for b in nudge.component("BUTTONS").buttons] == ["Vedere i dettagli"]  # type: ignore[union-attr]


def test_language_fallback_steps() -> None:
    assert LANGUAGE_FALLBACK == (LanguageMatch.EXACT, LanguageMatch.BASE, LanguageMatch.DEFAULT)
    exact, base, default = LANGUAGE_FALLBACK
    assert language_fallback("it_IT", "en", ["en", "fr", "it"]) == [
        ("it_IT", exact), ("it", base), ("en", default)
    ]
    assert language_fallback("en", "en", ["en", "en_GB", "fr"]) == [("en", exact), ("en_GB", base)]
    assert language_fallback("de", "en", ["en", "en_GB", "it"]) == [
        ("de", exact), ("en", default), ("en_GB", default)
    ]
    assert language_fallback(None, "en", ["en", "it"]) == [("en", default)]
    assert language_fallback("IT-ch", "en", ["it", "it_IT"]) == [
        ("it_CH", exact), ("it", base), ("it_IT", base), ("en", default)
    ]
    assert not exact.fell_back and base.fell_back and default.fell_back


@pytest.mark.parametrize("language", MAISON_LANGUAGES)
@pytest.mark.parametrize("purpose", sorted(PURPOSE_CATEGORY))
def test_each_purpose_resolves_in_the_clients_language(
    registry: TemplateRegistry, purpose: str, language: str
) -> None:
    choice = chosen(registry.select(purpose, language, PARAMS, marketing_allowed=True))
    assert purpose in choice.template.purposes
    assert choice.language == language and choice.payload["language"] == {"code": language}
    assert choice.requested_language == language
    assert choice.language_match is LanguageMatch.EXACT and not choice.fell_back


@pytest.mark.parametrize(("asked", "used"), [("it_IT", "it"), ("it-CH", "it"), ("fr_FR", "fr"),
                                             ("fr_BE", "fr"), ("en_GB", "en"), ("EN-us", "en")])
def test_a_region_code_falls_back_to_its_base_language(
    registry: TemplateRegistry, asked: str, used: str
) -> None:
    choice = chosen(registry.select("restock_alert", asked, PARAMS))
    assert choice.language == used
    assert choice.requested_language == normalise_language(asked)
    assert choice.language_match is LanguageMatch.BASE and choice.fell_back
    assert choice.language_log == {"language": used, "requested_language": normalise_language(asked),
                                   "language_match": "base", "language_fell_back": True}
    # a registered regional variant is still preferred when it is the one asked for
    reminder = chosen(registry.select("appointment_reminder", "en_GB", PARAMS))
    assert reminder.language == "en_GB" and not reminder.fell_back


@pytest.mark.parametrize("asked", ["de", "de_DE", "es", "pt_BR"])
def test_a_language_without_translation_falls_back_to_the_default(
    registry: TemplateRegistry, asked: str
) -> None:
    for purpose in sorted(PURPOSE_CATEGORY):
        choice = chosen(registry.select(purpose, asked, PARAMS, marketing_allowed=True))
        assert choice.language == registry.default_language == "en"
        assert choice.language_match is LanguageMatch.DEFAULT and choice.fell_back
        assert choice.requested_language == normalise_language(asked)
        assert choice.language_log["language_fell_back"] is True
    unknown = chosen(registry.select("restock_alert", None, PARAMS))
    assert unknown.language == "en" and unknown.requested_language is None
    assert unknown.language_match is LanguageMatch.DEFAULT


@pytest.mark.parametrize("status", ["PAUSED", "REJECTED", "DISABLED", "PENDING"])
def test_an_unusable_italian_translation_falls_back_to_the_default_language(
    registry: TemplateRegistry, status: str
) -> None:
    registry.apply_status_update({"event": status, "message_template_name": "restock_alert",
                                  "message_template_language": "it"})
    for asked in ("it", "it_IT"):
        choice = chosen(registry.select("restock_alert", asked, PARAMS))
        assert (choice.name, choice.language) == ("restock_alert", "en")  # never French
        assert choice.language_match is LanguageMatch.DEFAULT and choice.fell_back
        built = chosen(registry.build_in_language("restock_alert", asked, PARAMS))
        assert built.language == "en" and built.language_match is LanguageMatch.DEFAULT
    # the default language is the file's, whatever it is
    data = _yaml()
    french_default = TemplateRegistry.from_mapping({**data, "default_language": "fr"})
    french_default.apply_status_update({"event": status, "message_template_name": "restock_alert",
                                        "message_template_language": "it"})
    assert chosen(french_default.select("restock_alert", "it", PARAMS)).language == "fr"
    # with the default unusable too, there is no template (and French is still not chosen)
    registry.apply_status_update({"event": status, "message_template_name": "restock_alert",
                                  "message_template_language": "en"})
    none = registry.select("restock_alert", "it", PARAMS)
    assert isinstance(none, NoTemplate) and none.reason is NoTemplateReason.NOT_APPROVED
    assert f"restock_alert/it={status}" in none.detail and f"restock_alert/en={status}" in none.detail
    assert "restock_alert/fr" not in none.detail
    built_none = registry.build_in_language("restock_alert", "it", PARAMS)
    assert isinstance(built_none, NoTemplate) and built_none.reason is NoTemplateReason.NOT_APPROVED
    assert chosen(registry.select("restock_alert", "fr", PARAMS)).language == "fr"


def test_an_italian_template_of_another_name_wins_over_the_default_language(
    registry: TemplateRegistry,
) -> None:
    registry.apply_status_update({"event": "PAUSED", "message_template_name": "order_shipped",
                                  "message_template_language": "it"})
    choice = chosen(registry.select("order_update", "it", PARAMS))
    assert (choice.name, choice.language) == ("order_ready_for_collection", "it")
    assert not choice.fell_back


def test_build_in_language_follows_the_same_rule(registry: TemplateRegistry) -> None:
    exact = chosen(registry.build_in_language("advisor_update_nudge", "it", PARAMS))
    assert exact.language == "it" and exact.language_match is LanguageMatch.EXACT
    assert chosen(registry.build_in_language("advisor_update_nudge", "it_IT", PARAMS)).language == "it"
    assert chosen(registry.build_in_language("appointment_reminder", "en_GB", PARAMS)).language == "en_GB"
    german = chosen(registry.build_in_language("advisor_update_nudge", "de", PARAMS))
    assert german.language == "en" and german.fell_back
    unknown = registry.build_in_language("no_such_template", "it", PARAMS)
    assert isinstance(unknown, NoTemplate)
    assert unknown.reason is NoTemplateReason.NO_TEMPLATE_FOR_PURPOSE
    explicit = chosen(registry.build("advisor_update_nudge", "it", PARAMS))
    assert explicit.requested_language == "it" and not explicit.fell_back


ITALIAN = {**PARAMS, "date": "mercoledì 3 giugno", "boutique": "Milano Montenapoleone",
           "item": "orologio", "product_name": "Saddle bag color cuoio",
           "event_name": "Presentazione Haute Joaillerie", "collection_name": "Autunno",
           "service": "consulenza di stile", "nudge_ref": "NUDGE:42"}


def test_italian_components_render_with_parameters_filled(registry: TemplateRegistry) -> None:
    shipped = chosen(registry.select("order_shipped", "it", ITALIAN))
    assert shipped.rendered == {
        "header": "Il Suo ordine MS-10422",
        "body": "Buongiorno Claire, il Suo ordine MS-10422 ha lasciato il nostro atelier ed è in "
                "viaggio verso di Lei.",
    }
    assert shipped.payload["components"][2] == {
        "type": "button", "sub_type": "url", "index": 0,
        "parameters": [{"type": "text", "text": "MS-10422"}]}
    reminder = chosen(registry.select("appointment_reminder", "it", ITALIAN))
    assert reminder.rendered["body"] == (
        "Buongiorno Claire, Le ricordiamo il Suo appuntamento di mercoledì 3 giugno alle 15:00 "
        "nella nostra boutique di Milano Montenapoleone. Saremo lieti di accoglierLa."
    )
    assert [c["parameters"][0]["payload"] for c in reminder.payload["components"][1:]] == [
        "APPOINTMENT_CONFIRM", "APPOINTMENT_RESCHEDULE"]
    nudge = chosen(registry.select("reengage_update", "it", ITALIAN))
    assert nudge.rendered == {
        "body": "Buongiorno Claire, Maison Solenne ha un aggiornamento sulla Sua richiesta.",
        "footer": "Maison Solenne",
    }
    assert nudge.payload["components"][1]["parameters"] == [{"type": "payload", "payload": "NUDGE:42"}]
    body_params = nudge.payload["components"][0]["parameters"]
    assert body_params == [{"type": "text", "parameter_name": "first_name", "text": "Claire"}]
    for purpose in sorted(PURPOSE_CATEGORY):
        choice = chosen(registry.select(purpose, "it", ITALIAN, marketing_allowed=True))
        for part, text in choice.rendered.items():
            assert "{{" not in text and "}}" not in text, (purpose, part, text)
        assert choice.rendered["body"].startswith("Buongiorno Claire, "), purpose
    invitation = chosen(registry.select("event_invitation", "it", ITALIAN, marketing_allowed=True))
    assert invitation.rendered["body"] == (
        "Buongiorno Claire, Maison Solenne sarebbe lieta di accoglierLa mercoledì 3 giugno in "
        "occasione di Presentazione Haute Joaillerie.")


FRENCH = {**PARAMS, "date": "mercredi 3 juin", "time": "15 h", "boutique": "Paris",
          "item": "Astre bracelet", "product_name": "Saddle bag en tan",
          "event_name": "Présentation Haute Joaillerie", "collection_name": "Automne",
          "service": "essayage", "nudge_ref": "NUDGE:42"}


def test_french_templates_greet_her_and_agree(registry: TemplateRegistry) -> None:
    for purpose in sorted(PURPOSE_CATEGORY):
        choice = chosen(registry.select(purpose, "fr", FRENCH, marketing_allowed=True))
        assert choice.rendered["body"].startswith("Bonjour Claire, "), purpose
    confirmed = chosen(registry.select("appointment_confirmation", "fr", FRENCH))
    assert confirmed.rendered["body"] == (
        "Bonjour Claire, votre rendez-vous (essayage) est confirmé dans notre boutique de Paris "
        "le mercredi 3 juin à 15 h.")
    ready = chosen(registry.select("aftercare_update", "fr", FRENCH))
    assert ready.rendered["body"].startswith(
        "Bonjour Claire, votre pièce (Astre bracelet) est revenue de notre atelier")
    invitation = chosen(registry.select("event_invitation", "fr", FRENCH, marketing_allowed=True))
    assert "vous accueillir à « Présentation Haute Joaillerie » le mercredi 3 juin." in (
        invitation.rendered["body"])


def test_templates_do_not_fix_the_advisor_gender(registry: TemplateRegistry) -> None:
    """The client's advisor may be a man or a woman, and an approved body cannot agree
    with her: the nudge and the collection news speak for the maison instead."""
    for name in ("advisor_update_nudge", "new_collection_preview"):
        for language in ("fr", "it"):
            template = registry.get(name, language)
            assert template is not None
            body = template.component("BODY").text or ""  # type: ignore[union-attr]
            assert not re.search(r"conseill|consulent", body, re.IGNORECASE), (name, language, body)
    nudge = chosen(registry.select("reengage_update", "fr", FRENCH))
    assert nudge.rendered["body"] == "Bonjour Claire, Maison Solenne a du nouveau concernant votre demande."


def test_the_emulator_accepts_every_italian_template(registry: TemplateRegistry) -> None:
    store = TemplateStore.from_file()
    for purpose in sorted(PURPOSE_CATEGORY):
        choice = chosen(registry.select(purpose, "it", ITALIAN, marketing_allowed=True))
        known = store.get(choice.name, "it")
        assert known is not None and known.status == "APPROVED"
        assert known.template_id == choice.template.template_id
        assert emulator_rules.check_template_send(
            known, choice.payload, language="it", api_version="v23.0") is None, purpose
        shown = emulator_rules.render_template(known, choice.payload)
        assert shown["body"] == choice.rendered["body"], purpose


# --------------------------------------------------------------------------- params


def test_param_checks(registry: TemplateRegistry) -> None:
    template = registry.get("restock_alert", "en")
    assert template is not None
    problems, _, _ = check_params(template, {**PARAMS, "product_name": "Saddle\nbag"})
    assert [(p.param, p.problem) for p in problems] == [("product_name", "newline_or_tab")]
    problems, _, _ = check_params(template, {**PARAMS, "product_name": "Saddle\tbag"})
    assert problems[0].problem == "newline_or_tab"
    problems, _, _ = check_params(template, {**PARAMS, "boutique": "Paris     Rive Gauche"})
    assert problems[0].problem == "too_many_spaces"
    problems, _, _ = check_params(template, {**PARAMS, "boutique": "Paris    Rive Gauche"})
    assert problems == []  # four spaces are allowed
    problems, _, _ = check_params(template, {**PARAMS, "boutique": "  "})
    assert problems[0].problem == "empty"
    problems, _, _ = check_params(template, {"first_name": "Claire"})
    assert {p.param for p in problems if p.problem == "missing"} == {"product_name", "boutique"}
    problems, _, _ = check_params(template, {**PARAMS, "boutique": ["x"]})
    assert problems[0].problem == "not_text"
    problems, _, _ = check_params(template, PARAMS, strict=True)
    assert {p.problem for p in problems} == {"unexpected"}


def test_selection_sanitises_by_default(registry: TemplateRegistry) -> None:
    choice = chosen(registry.select("restock_alert", "en",
                                    {**PARAMS, "product_name": "Saddle\n\nbag      in tan"}))
    assert "the Saddle bag in tan you asked about" in choice.rendered["body"]
    strict = registry.select("restock_alert", "en", {**PARAMS, "product_name": "Saddle\nbag"},
                             sanitize=False)
    assert isinstance(strict, NoTemplate) and strict.reason is NoTemplateReason.INVALID_PARAMS
    assert sanitize_text_param(" a\tb\r\nc      d ") == "a b c d"


def test_length_limits_after_substitution(registry: TemplateRegistry) -> None:
    header = registry.select("order_shipped", "en", {**PARAMS, "order_ref": "R" * 50})
    assert isinstance(header, NoTemplate) and header.reason is NoTemplateReason.TOO_LONG
    assert any(p.param == "header" for p in header.problems)
    fits = chosen(registry.select("order_shipped", "en", {**PARAMS, "order_ref": "R" * 49}))
    assert len(fits.rendered["header"]) == 60
    template = registry.get("restock_alert", "en")
    assert template is not None
    static = len(template.component("BODY").text or "") - len(  # type: ignore[union-attr]
        "{{first_name}}{{product_name}}{{boutique}}"
    )
    room = 1024 - static - len("Claire") - len("Paris")
    ok, _, rendered = check_params(template, {**PARAMS, "boutique": "Paris", "product_name": "x" * room})
    assert ok == [] and len(rendered["body"]) == 1024
    too_long = registry.select("restock_alert", "en",
                               {**PARAMS, "boutique": "Paris", "product_name": "x" * (room + 1)})
    assert isinstance(too_long, NoTemplate) and too_long.reason is NoTemplateReason.TOO_LONG


# --------------------------------------------------------------------------- lifecycle


def test_paused_template_is_skipped_then_unpaused(registry: TemplateRegistry) -> None:
    changes = registry.apply_webhook(own_fixture("template_status_paused_advisor_update_nudge_fr.json"))
    assert [(c.field, c.old, c.new) for c in changes] == [("status", "APPROVED", "PAUSED")]
    assert chosen(registry.select("reengage_update", "fr", PARAMS)).language == "en"
    registry.apply_webhook(own_fixture("template_status_approved_advisor_update_nudge_fr.json"))
    assert chosen(registry.select("reengage_update", "fr", PARAMS)).language == "fr"
    # replaying the older PAUSED event does not pause it again
    replay = registry.apply_webhook(own_fixture("template_status_paused_advisor_update_nudge_fr.json"))
    assert replay[0].applied is False
    assert chosen(registry.select("reengage_update", "fr", PARAMS)).language == "fr"


@pytest.mark.parametrize("status", ["PAUSED", "DISABLED", "REJECTED", "PENDING", "FLAGGED",
                                    "SOMETHING_NEW"])
def test_non_approved_is_never_selected(registry: TemplateRegistry, status: str) -> None:
    for language in ("en", "fr"):
        registry.apply_status_update({"event": status, "message_template_name": "restock_alert",
                                      "message_template_language": language})
    result = registry.select("restock_alert", "fr", PARAMS)
    assert isinstance(result, NoTemplate) and result.reason is NoTemplateReason.NOT_APPROVED


def test_real_status_fixtures(registry: TemplateRegistry) -> None:
    rejected = registry.apply_webhook(shared_fixture("13"))
    assert [(c.name, c.language, c.new) for c in rejected] == [
        ("schedule_confirmation4", "pt_BR", "REJECTED")
    ]
    unknown = registry.get("schedule_confirmation4", "pt-BR")
    assert unknown is not None and unknown.rejected_reason == "SCAM"
    assert not unknown.selectable
    registry.apply_webhook(shared_fixture("14"))
    approved = registry.get("order_confirmation", "en_US")
    assert approved is not None and approved.status == "APPROVED"
    assert approved.template_id == "1689556908129832"
    assert not approved.selectable  # no purposes, no components: we never send it
    registry.apply_webhook(shared_fixture("14b"))
    cart = registry.get("abandoned_cart", "en")
    assert cart is not None and cart.status == "REJECTED" and cart.rejected_reason == "INVALID_FORMAT"
    assert cart.category == "MARKETING"


def test_real_quality_and_category_fixtures(registry: TemplateRegistry) -> None:
    [quality] = registry.apply_webhook(shared_fixture("15"))
    assert (quality.field, quality.new) == ("quality", "YELLOW")
    assert registry.get("welcome_template", "en_US").quality == "YELLOW"  # type: ignore[union-attr]
    [pending] = registry.apply_webhook(shared_fixture("16"))
    assert pending.field == "pending_category" and pending.new == "MARKETING"
    welcome = registry.get("welcome_template", "en_US")
    assert welcome is not None and welcome.category == "UTILITY"
    assert welcome.pending_category_at == datetime.fromtimestamp(1746169200, tz=UTC)
    [done] = registry.apply_webhook(shared_fixture("16b"))
    assert (done.old, done.new) == ("UTILITY", "MARKETING")
    welcome = registry.get("welcome_template", "en_US")
    assert welcome is not None and welcome.category == "MARKETING"
    assert welcome.pending_category is None


def test_red_quality_ranks_lower(registry: TemplateRegistry) -> None:
    registry.apply_webhook(own_fixture("template_quality_red_order_shipped_en.json"))
    assert registry.get("order_shipped", "en").quality == "RED"  # type: ignore[union-attr]
    # still sendable, but another fitting template of equal language now wins
    assert chosen(registry.select("order_update", "en", PARAMS)).name == "order_ready_for_collection"
    assert chosen(registry.select("order_shipped", "en", PARAMS)).name == "order_shipped"


def test_recategorised_template_needs_marketing_consent(registry: TemplateRegistry) -> None:
    registry.apply_webhook(own_fixture("template_category_update_impending_advisor_followup_en.json"))
    due = datetime.fromtimestamp(1780387200, tz=UTC)
    before = registry.select("advisor_followup", "en", PARAMS, now=due - timedelta(seconds=1))
    assert chosen(before).category == "UTILITY"
    after = registry.select("advisor_followup", "en", PARAMS, now=due)
    # now marketing: not for a client without marketing consent, and an English client
    # is never sent the French template instead
    assert isinstance(after, NoTemplate)
    assert after.reason is NoTemplateReason.CONSENT_REQUIRED
    assert chosen(registry.select("advisor_followup", "fr_FR", PARAMS, now=due)).language == "fr"
    registry.apply_webhook(own_fixture("template_category_update_completed_advisor_followup_en.json"))
    done = registry.get("advisor_followup", "en")
    assert done is not None and done.category == "MARKETING" and done.pending_category is None
    assert isinstance(registry.select("advisor_followup", "en", PARAMS), NoTemplate)
    marketing_ok = registry.select("advisor_followup", "en", PARAMS, marketing_allowed=True)
    assert chosen(marketing_ok).category == "MARKETING"


# --------------------------------------------------------------------------- sync


def _graph_item(template: Template, **overrides: Any) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    for comp in template.components:
        raw: dict[str, Any] = {"type": comp.type}
        if comp.type == "HEADER":
            raw["format"] = comp.format
        if comp.text is not None:
            raw["text"] = comp.text
        if comp.buttons:
            raw["buttons"] = [{"type": b.type, "text": b.text, **({"url": b.url} if b.url else {})}
                              for b in comp.buttons]
        components.append(raw)
    item = {
        "name": template.name, "language": template.language, "status": "APPROVED",
        "category": template.category, "id": template.template_id,
        "parameter_format": template.parameter_format.upper(), "components": components,
        "quality_score": {"score": "GREEN"},
    }
    item.update(overrides)
    return item


def _remote_listing(registry: TemplateRegistry) -> list[dict[str, Any]]:
    items = []
    for template in sorted(registry.all(), key=lambda t: t.key):
        if template.key == ("new_collection_preview", "fr"):
            continue  # deleted on Meta's side
        if template.key == ("restock_alert", "en"):
            items.append(_graph_item(template, status="PAUSED", quality_score={"score": "RED"}))
        elif template.key == ("aftercare_ready", "fr"):
            changed = _graph_item(template)
            changed["components"][0]["text"] = "{{first_name}}, votre pièce est prête."
            items.append(changed)
        else:
            items.append(_graph_item(template))
    items.append({"name": "hello_world", "language": "en_US", "status": "APPROVED",
                  "category": "UTILITY", "id": "999",
                  "components": [{"type": "BODY", "text": "Hello World"}]})
    return items


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
async def graph_server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A local stand-in for GET /{version}/{waba_id}/message_templates (3 per page)."""
    state: dict[str, Any] = {"items": [], "requests": [], "bad_cursor_once": False}

    async def handler(request: web.Request) -> web.Response:
        state["requests"].append(dict(request.query))
        if request.headers.get("Authorization") != "Bearer test-token":
            return web.json_response({"error": {"message": "Invalid OAuth access token",
                                                "type": "OAuthException", "code": 190,
                                                "fbtrace_id": "T1"}}, status=401)
        after = request.query.get("after")
        if after and state["bad_cursor_once"]:
            state["bad_cursor_once"] = False
            error = json.loads((OWN_FIXTURES / "graph_error_131059_cursor.json").read_text())
            return web.json_response(error, status=400)
        limit = int(request.query.get("limit", "3"))
        start = int(after[1:]) if after else 0
        page = state["items"][start : start + limit]
        body: dict[str, Any] = {"data": page}
        end = start + len(page)
        body["paging"] = {"cursors": {"before": f"c{start}", "after": f"c{end}"}}
        if end < len(state["items"]):
            body["paging"]["next"] = str(request.rel_url.with_query({"after": f"c{end}"}))
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/v27.0/{waba}/message_templates", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        await runner.cleanup()


async def test_sync_with_paging_over_http(
    registry: TemplateRegistry, graph_server: tuple[str, dict[str, Any]]
) -> None:
    base, state = graph_server
    state["items"] = _remote_listing(registry)
    async with GraphTemplatePageFetcher("102290129340398", "test-token", base_url=base,
                                        limit=3) as fetch:
        report = await registry.sync(fetch)
    expected_pages = -(-len(state["items"]) // 3)
    assert report.pages == expected_pages
    assert report.seen == len(state["items"])
    assert [q.get("after") for q in state["requests"]][:2] == [None, "c3"]
    assert all(q["fields"].startswith("name,language,status") for q in state["requests"])
    restock = registry.get("restock_alert", "en")
    assert restock is not None and restock.status == "PAUSED" and restock.quality == "RED"
    assert report.missing == [("new_collection_preview", "fr")]
    assert registry.get("new_collection_preview", "fr").status == "MISSING"  # type: ignore[union-attr]
    assert report.mismatched == [("aftercare_ready", "fr")]
    assert report.added == [("hello_world", "en_US")]
    hello = registry.get("hello_world", "en_US")
    assert hello is not None and not hello.purposes
    # consequences for selection
    paused = registry.select("restock_alert", "en", PARAMS)
    assert isinstance(paused, NoTemplate) and paused.reason is NoTemplateReason.NOT_APPROVED
    assert "restock_alert/en=PAUSED" in paused.detail
    assert chosen(registry.select("restock_alert", "fr", PARAMS)).language == "fr"
    assert chosen(registry.select("aftercare_update", "fr", PARAMS)).language == "en"
    preview = registry.select("new_collection", "fr", PARAMS, marketing_allowed=True)
    assert chosen(preview).language == "en"


async def test_sync_restarts_once_on_invalid_cursor(
    registry: TemplateRegistry, graph_server: tuple[str, dict[str, Any]]
) -> None:
    base, state = graph_server
    state["items"] = _remote_listing(registry)
    state["bad_cursor_once"] = True
    async with GraphTemplatePageFetcher("1", "test-token", base_url=base, limit=5) as fetch:
        report = await registry.sync(fetch)
    assert report.restarted
    assert report.seen == len(state["items"])


async def test_sync_surfaces_typed_graph_errors(
    registry: TemplateRegistry, graph_server: tuple[str, dict[str, Any]]
) -> None:
    base, _ = graph_server
    async with GraphTemplatePageFetcher("1", "wrong-token", base_url=base) as fetch:
        with pytest.raises(AuthError) as caught:
            await registry.sync(fetch)
    assert caught.value.http_status == 401 and caught.value.fbtrace_id == "T1"


async def test_sync_with_an_injected_fetcher(registry: TemplateRegistry) -> None:
    items = _remote_listing(registry)
    pages: dict[str | None, Mapping[str, Any]] = {
        None: {"data": items[:10], "paging": {"cursors": {"after": "A"}, "next": "x"}},
        "A": {"data": items[10:], "paging": {"cursors": {"after": "B"}}},
    }
    calls: list[str | None] = []

    async def fetch(after: str | None) -> Mapping[str, Any]:
        calls.append(after)
        return pages[after]

    report = await registry.sync(fetch)
    assert calls == [None, "A"]
    assert report.pages == 2 and report.seen == len(items)
    assert re.match(r"^\d+$", registry.get("hello_world", "en_US").template_id or "")  # type: ignore[union-attr]
