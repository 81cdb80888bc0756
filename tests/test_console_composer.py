"""The advisor console's composer as data (salon/console/composer.py): the mode the
client's window calls for, the templates she can receive now (the maison's real
templates.yml, consents read from the seeded book on SQLite and PostgreSQL), each
rendered as WhatsApp shows it, and the gentle notes on a draft. The preview is checked
against what the guard sends: the Cloud API payload, the emulator's own rendering of it,
and a send through the guard to the emulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from salon.clock import ManualClock
from salon.config import Settings
from salon.consent.book import ConsentBook
from salon.console.composer import (
    FREE_TEXT,
    TEMPLATES,
    ClientTemplateParams,
    ComposerMode,
    TemplateOption,
    client_template_params,
    template_options,
    voice_check,
)
from salon.emulator.config import EmulatorConfig
from salon.emulator.rules import check_and_render
from salon.emulator.testing import WebhookReceiver, running_emulator
from salon.identity import ClientRef
from salon.templates.model import Template
from salon.templates.params import build_template_payload
from salon.templates.registry import TemplateRegistry
from salon.webhook.inbox import Inbox, InboxItem
from salon.webhook.runtime import open_sender
from salon.whatsapp.errors import from_status_error
from salon.window.rules import WINDOW
from salon.window.sql_store import SqlSessionStore
from tests.outbound_support import emulator_graph
from tests.seeding import seed_maison
from tests.whatsapp_support import APP_SECRET

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
PNID = "100000000000001"  # the emulator's business number
CLAIRE = "33600000001"  # French, utility and marketing opt-in
JULIEN = "33600000005"  # French, utility opt-in, marketing declined
ITALIAN = "it"
STRANGER = "33699999999"  # not in the maison's book
MARKETING_NAMES = {"event_invitation", "new_collection_preview", "maison_news_nudge"}
EXTRA = {"advisor_name": "Sophie", "boutique": "Paris", "event_name": "Soirée Solenne",
         "date": "jeudi 3 décembre", "collection_name": "Hiver", "order_ref": "SOL-482913"}


# --------------------------------------------------------------------------- helpers


@dataclass
class Book:
    consents: ConsentBook
    inbox: Inbox

    async def client(self, wa_id: str, extra: dict[str, str] | None = None,
                     language: str | None = None) -> ClientTemplateParams:
        return await client_template_params(
            ClientRef(PNID, wa_id=wa_id), consents=self.consents,
            profile_name=self.inbox.latest_profile_name, extra=extra, language=language)


@pytest.fixture()
async def book(database_url: str) -> AsyncIterator[Book]:
    """The seeded maison's book and inbox, on SQLite then PostgreSQL."""
    seed_maison(database_url)
    consents = ConsentBook(database_url)
    inbox = Inbox(database_url)
    await consents.initialize()
    await inbox.initialize()
    try:
        yield Book(consents, inbox)
    finally:
        await consents.close()
        await inbox.close()


def offered(ctx: ClientTemplateParams, registry: TemplateRegistry | None = None,
            **kwargs: Any) -> dict[str, TemplateOption]:
    options = template_options(registry or TemplateRegistry.load_default(), language=ctx.language,
                               consent=ctx.consent, params=ctx.params, now=T0, **kwargs)
    return {option.name: option for option in options}


def _pause(registry: TemplateRegistry, name: str, language: str, event: str = "PAUSED") -> None:
    changes = registry.apply_status_update(
        {"message_template_name": name, "message_template_language": language, "event": event})
    assert changes and changes[0].new == event


def _substitute(template: Template, kind: str, payload: dict[str, Any]) -> str | None:
    """The component's text with the payload's parameters put where WhatsApp puts them:
    by ``parameter_name`` (named) or by position (positional)."""
    component = template.component(kind.upper())
    if component is None or component.text is None:
        return None
    sent = next((c for c in payload.get("components", []) if c["type"] == kind), {"parameters": []})
    if template.parameter_format == "named":
        values = {p["parameter_name"]: p["text"] for p in sent["parameters"]}
    else:
        values = {str(i + 1): p["text"] for i, p in enumerate(sent["parameters"])}
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values[m.group(1)], component.text)


# --------------------------------------------------------------------------- templates


async def test_a_french_client_gets_french_templates_with_her_first_name(book: Book) -> None:
    claire = await book.client(CLAIRE, EXTRA)
    assert claire.language == "fr" and claire.params["first_name"] == "Claire"
    options = offered(claire)
    # Every template whose parameters her data and the advisor's fill; not the reminder
    # (no time), the restock alert (no piece), the repair (no item).
    assert set(options) == {"advisor_followup", "order_shipped", "order_ready_for_collection",
                            "new_collection_preview", "event_invitation", "advisor_update_nudge",
                            "maison_news_nudge"}
    for option in options.values():
        assert option.language == "fr" and option.requested_language == "fr" and not option.fell_back
        assert option.body.startswith(("Bonjour Claire", "Claire")), option.body
        assert "{{" not in option.body and "{{" not in (option.header or "")
    followup = options["advisor_followup"]
    assert followup.body == ("Bonjour Claire, Sophie de Maison Solenne souhaite reprendre contact "
                             "avec vous au sujet de votre demande.")
    assert followup.buttons == ("Voir le message",) and followup.category == "UTILITY"
    assert followup.params == {"first_name": "Claire", "advisor_name": "Sophie"}
    shipped = options["order_shipped"]
    assert shipped.header == "Votre commande SOL-482913" and shipped.buttons == ("Suivre ma commande",)
    # Without the advisor's name the follow-up cannot be filled: it is not offered.
    bare = offered(await book.client(CLAIRE))
    assert "advisor_followup" not in bare and "order_shipped" not in bare
    assert bare["advisor_update_nudge"].body.startswith("Bonjour Claire,")


async def test_a_client_without_marketing_consent_sees_no_marketing_template(book: Book) -> None:
    claire = offered(await book.client(CLAIRE, EXTRA))
    julien = offered(await book.client(JULIEN, EXTRA))
    assert MARKETING_NAMES <= set(claire)
    assert {o.category for o in claire.values()} == {"UTILITY", "MARKETING"}
    assert not MARKETING_NAMES & set(julien)
    assert {o.category for o in julien.values()} == {"UTILITY"}
    assert julien["advisor_followup"].body.startswith("Bonjour Julien,")
    # The nudges are listed, flagged, after the others.
    assert [name for name, o in claire.items() if o.nudge] == ["advisor_update_nudge", "maison_news_nudge"]
    assert list(claire)[-2:] == ["advisor_update_nudge", "maison_news_nudge"]
    assert [name for name, o in julien.items() if o.nudge] == ["advisor_update_nudge"]


async def test_stopping_on_whatsapp_takes_the_templates_away(book: Book) -> None:
    ref = ClientRef(PNID, wa_id=CLAIRE)
    # She stopped marketing messages in the app: marketing goes, utility stays.
    await book.consents.record_preference(ref, "stop", T0 - timedelta(hours=2))
    after_pref = await book.client(CLAIRE, EXTRA)
    assert after_pref.consent.marketing_stopped
    names = set(offered(after_pref))
    assert names and not MARKETING_NAMES & names and "advisor_followup" in names
    # Then STOP: nothing the maison starts is offered any more.
    await book.consents.record_keyword(ref, "stop", "STOP", T0 - timedelta(hours=1))
    stopped = await book.client(CLAIRE, EXTRA)
    assert stopped.consent.opted_out
    assert offered(stopped) == {}


async def test_a_paused_or_unapproved_template_is_not_offered(book: Book) -> None:
    claire = await book.client(CLAIRE, EXTRA)
    registry = TemplateRegistry.load_default()
    for language in ("en", "en_GB", "fr", "it"):
        if registry.get("restock_alert", language) is not None:
            _pause(registry, "restock_alert", language)
    _pause(registry, "event_invitation", "fr", "DISABLED")
    _pause(registry, "event_invitation", "en", "REJECTED")
    options = offered(claire, registry)
    assert "restock_alert" not in options and "event_invitation" not in options
    assert "new_collection_preview" in options
    # Only her language paused: the same template in the default language, said so.
    _pause(registry, "advisor_followup", "fr")
    fallback = offered(claire, registry)["advisor_followup"]
    assert (fallback.language, fallback.requested_language, fallback.fell_back) == ("en", "fr", True)
    assert fallback.body == ("Good day Claire, Sophie from Maison Solenne would like to follow up "
                             "on your recent request.")
    # A template Meta never approved is not offered either.
    pending = TemplateRegistry.from_mapping({"default_language": "en", "templates": [
        {"name": "atelier_note", "category": "UTILITY", "purposes": ["aftercare_update"],
         "translations": {"fr": {"status": "PENDING", "components": [
             {"type": "BODY", "text": "Bonjour {{first_name}}, une nouvelle de l'atelier."}]}}}]})
    assert offered(claire, pending) == {}


def _small_registry() -> TemplateRegistry:
    body = {"type": "BODY", "text": "{{first_name}}, {{advisor_name}} has news of your piece."}
    return TemplateRegistry.from_mapping({"default_language": "en", "templates": [
        {"name": "atelier_news", "category": "UTILITY", "purposes": ["aftercare_update"],
         "translations": {
             "en": {"status": "APPROVED", "components": [body]},
             "fr": {"status": "APPROVED", "components": [
                 {"type": "BODY", "text": "Bonjour {{first_name}}, {{advisor_name}} a des nouvelles de votre pièce."}]}}},
        {"name": "visit_reminder", "category": "UTILITY", "purposes": ["appointment_reminder"],
         "translations": {
             "en": {"status": "APPROVED", "components": [
                 {"type": "BODY", "text": "{{first_name}}, we look forward to your visit."}]},
             "it": {"status": "APPROVED", "components": [
                 {"type": "BODY", "text": "Buongiorno {{first_name}}, La attendiamo in boutique."},
                 {"type": "FOOTER", "text": "Maison Solenne"}]}}},
    ]})


async def test_italian_falls_back_explicitly_when_a_template_has_no_italian(book: Book) -> None:
    italian = replace(await book.client(CLAIRE, {"advisor_name": "Giulia"}), language=ITALIAN)
    options = offered(italian, _small_registry())
    news, visit = options["atelier_news"], options["visit_reminder"]
    assert (news.language, news.requested_language, news.fell_back) == ("en", "it", True)
    assert news.body == "Claire, Giulia has news of your piece."
    assert (visit.language, visit.fell_back) == ("it", False)
    assert visit.body == "Buongiorno Claire, La attendiamo in boutique." and visit.footer == "Maison Solenne"
    # A regional code finds the base language: a fallback too, and said so.
    regional = offered(replace(italian, language="it-IT"), _small_registry())["visit_reminder"]
    assert (regional.language, regional.requested_language, regional.fell_back) == ("it", "it_IT", True)


async def test_a_stranger_is_named_from_her_whatsapp_profile_and_needs_an_opt_in(book: Book) -> None:
    ref = ClientRef(PNID, wa_id=STRANGER)
    assert (await book.client(STRANGER)).params == {}  # never wrote, not in the book: no name
    item = InboxItem(wamid="wamid.STRANGER1", phone_number_id=PNID, sender_id=STRANGER,
                     sent_at=T0 - WINDOW + timedelta(minutes=2), text="Bonjour",
                     metadata={"profile_name": "Maud Perrin"}, state="done", attempts=1)
    assert await book.inbox.claim_inbound([item], T0 - WINDOW + timedelta(minutes=2)) == [True]
    stranger = await book.client(STRANGER, {"advisor_name": "Sophie"}, language="fr")
    assert stranger.params == {"first_name": "Maud", "advisor_name": "Sophie"}
    assert not stranger.consent.messaging
    # No opt-in and the window closed: nothing may knock.
    assert offered(stranger) == {}
    # Her window still open, in its last minutes (free text no longer): utility only.
    sessions = SqlSessionStore(engine=book.inbox.engine, clock=ManualClock(T0))
    await sessions.initialize()
    await sessions.record_inbound(ref, item.sent_at, message_id=item.wamid)
    state = await sessions.get(ref)
    mode = ComposerMode.of(state, T0)
    assert mode.mode == TEMPLATES and mode.window_open
    assert state is not None
    closing = offered(stranger, window=state.window(T0))
    assert closing and {o.category for o in closing.values()} == {"UTILITY"}
    assert closing["advisor_followup"].body.startswith("Bonjour Maud, Sophie de Maison Solenne")


async def test_the_preview_is_the_payload_the_guard_sends(book: Book) -> None:
    # A line break in a value is made sendable the same way in the preview and the payload.
    claire = await book.client(CLAIRE, {**EXTRA, "boutique": "Paris\nFaubourg"})
    registry = TemplateRegistry.load_default()
    options = offered(claire, registry)
    assert options["order_ready_for_collection"].params["boutique"] == "Paris Faubourg"
    for option in options.values():
        template = registry.get(option.name, option.language)
        assert template is not None
        payload = build_template_payload(template, option.params)
        assert _substitute(template, "body", payload) == option.body
        assert _substitute(template, "header", payload) == option.header
        # The emulator (an implementation of Meta's rules apart from ours) shows the same.
        shown = check_and_render(template, payload, language=option.language)
        assert isinstance(shown, dict), shown
        assert (shown.get("header"), shown["body"], shown.get("footer")) == (
            option.header, option.body, option.footer)
        assert tuple(b["text"] for b in shown["buttons"]) == option.buttons


# --------------------------------------------------------------------------- through the guard


@pytest.fixture()
def maison(database_url: str, tmp_path: Path) -> Settings:
    seed_maison(database_url)
    return Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=database_url, redis_url=None)


async def test_an_offered_template_reaches_the_phone_as_previewed(maison: Settings) -> None:
    clock = ManualClock(T0)
    async with WebhookReceiver(app_secret=APP_SECRET) as receiver:
        config = EmulatorConfig(app_secret=APP_SECRET, webhook_url=receiver.url, status_sent_delay=0.01,
                                status_delivered_delay=0.02, status_read_delay=None)
        async with running_emulator(config, clock=clock) as emu:
            parts = await open_sender(maison, emulator_graph(emu), clock)
            try:
                await parts.registry.refresh(force=True)
                ref = ClientRef(PNID, wa_id=CLAIRE)
                ctx = await client_template_params(ref, consents=parts.sender.consents,
                                                   profile_name=parts.sender.profile_name, extra=EXTRA)
                assert ComposerMode.of(await parts.sessions.get(ref), clock.now()).mode == TEMPLATES
                options = offered(ctx, parts.registry)
                sent: list[TemplateOption] = [options["advisor_followup"], options["order_shipped"],
                                              options["event_invitation"]]
                for option in sent:
                    outcome = await parts.sender.send(ref, option.outgoing())
                    assert (outcome.action, outcome.template) == ("template", option.name), outcome
                async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                    async with admin.get("/_emulator/outbox", params={"to": CLAIRE}) as r:
                        box = list(await r.json())
                shown = [(m["template"], m["language"], m.get("header"), m["body"], m.get("footer"),
                          tuple(m["buttons"])) for m in box]
                assert shown == [(o.name, o.language, o.header, o.body, o.footer, o.buttons) for o in sent]
                # Julien is not offered marketing; asked by name anyway, the guard refuses it.
                julien = ClientRef(PNID, wa_id=JULIEN)
                refused = await parts.sender.send(julien, options["event_invitation"].outgoing())
                assert (refused.action, refused.reason) == ("refused", "no_marketing_consent")
            finally:
                await parts.close()


# --------------------------------------------------------------------------- mode


async def test_the_mode_follows_the_window_the_guard_reads(sqlite_url: str) -> None:
    clock = ManualClock(T0)
    sessions = SqlSessionStore(sqlite_url, clock=clock)
    await sessions.initialize()
    try:
        ref = ClientRef(PNID, wa_id=CLAIRE)
        never = ComposerMode.of(await sessions.get(ref), T0)
        assert (never.mode, never.reason, never.closes_at, never.window_open) == (
            TEMPLATES, "never_wrote", None, False)
        wrote = T0 - timedelta(hours=3)
        await sessions.record_inbound(ref, wrote, message_id="wamid.IN1")
        state = await sessions.get(ref)
        mode = ComposerMode.of(state, T0)
        assert mode.mode == FREE_TEXT and mode.free_text and mode.closes_at == wrote + WINDOW
        assert mode.free_text_until == wrote + WINDOW - timedelta(minutes=5)
        assert mode.as_dict()["closes_at"] == (wrote + WINDOW).isoformat()
        closing = ComposerMode.of(state, wrote + WINDOW - timedelta(minutes=2))
        assert (closing.mode, closing.reason, closing.window_open) == (TEMPLATES, "closing", True)
        expired = ComposerMode.of(state, wrote + WINDOW)
        assert (expired.mode, expired.reason, expired.window_open) == (TEMPLATES, "expired", False)
        # Meta said the window was closed (131047): templates, whatever our clock says.
        error = from_status_error({"code": 131047, "title": "Re-engagement message"})
        await sessions.record_failure(ref, error, T0 - timedelta(hours=1))
        assert ComposerMode.of(await sessions.get(ref), T0).reason == "closed_by_failure"
        # A nudge already knocked: the page can say a typed reply just waits.
        await sessions.record_nudge(ref, T0 - timedelta(minutes=30))
        assert ComposerMode.of(await sessions.get(ref), T0).nudge_pending
    finally:
        await sessions.close()


# --------------------------------------------------------------------------- voice


def test_voice_check_leaves_the_maisons_own_voice_alone() -> None:
    assert voice_check("Good evening, Ms Laurent. How may I help you tonight?", "en") == []
    assert voice_check("Bonsoir Madame Laurent, votre sac vous attend à Paris. "
                       "Souhaitez-vous que nous le mettions de côté ?", "fr") == []
    assert voice_check("Buongiorno Signora, Le confermiamo il Suo appuntamento. "
                       "Saremo lieti di accoglierLa.", "it") == []
    assert voice_check("Merci, à jeudi ! 🙂", "fr") == []  # one mark, one emoji: fine


def test_voice_check_notes() -> None:
    assert voice_check("   \n ", "en") == ["The message is empty."]
    [split] = voice_check("A sentence of the maison. " * 200, "en")
    assert "4,096" in split and "split in 2 messages" in split
    [long] = voice_check("A sentence of the maison. " * 30, "en")
    assert "a shorter message reads better on a phone" in long
    assert voice_check("A sentence of the maison. " * 20, "en") == []  # 520 characters
    bad = voice_check("Hello! I am the virtual assistant of Maison X! How can I help you today?? 😊😊", "en")
    assert len(bad) == 2 and "Repeated punctuation" in bad[0] and "Emoji cascade" in bad[1]
    assert "exclamation marks" in voice_check("Thank you! See you Saturday! Have a lovely day!", "en")[0]
    assert "shouting" in voice_check("YOUR ORDER HAS ARRIVED IN PARIS", "en")[0]
    assert voice_check("Your order SOL-482913 is in Paris.", "en") == []
    assert "Emoji cascade" in voice_check("Merci 🎉 ✨ 🥂", "fr")[0]
    assert "apology" in voice_check("We are so sorry for the delay 🙏", "en")[0]
    [french] = voice_check("Bonjour Claire, je t'envoie les photos de ton sac, tu me diras ?", "fr")
    assert french.startswith('Informal address in French ("t\'", "ton", "tu")') and '"vous"' in french
    [italian] = voice_check("Ciao Francesca, ti scrivo per dirti che il tuo ordine è pronto.", "it_IT")
    assert '"ciao", "ti", "dirti", "tuo"' in italian and "Lei" in italian
    # The client's language decides: "tu" in an English message is no one's business.
    assert voice_check("Thank you, Claire; see you tu-morrow.", "en") == []
