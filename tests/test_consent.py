"""The consent ledger and its enforcement: STOP/START keywords in several languages and
spellings through the real channel and the emulator, the send-time guard refusing what
the ledger forbids, the user_preferences webhook and 131050 written to the ledger."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from connectors.whatsapp import WhatsAppOutput
from salon.config import Settings
from salon.consent.keywords import CONFIRMATIONS, confirmation, keyword_of
from salon.guard.decision import Refuse, decide
from salon.identity import ClientRef
from tests.test_whatsapp_sender import (
    CLAIRE,
    T0,
    outbox,
    say,
    settle,
    wired,
)
from tests.whatsapp_support import PNID, envelope, messages_change, status

STRANGER = "33699999999"


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", "Stop.", " stop! ", "ARRET", "Arrêt", "ARRÊT", "arrêt merci", "STOPP", "Basta!", "basta",
     "UNSUBSCRIBE", "unsubscribe please", "DÉSABONNER", "désabonner svp", "Stop please 🙏", "opt out",
     "S\u200bTOP", "\u200fSTOP\u200f", "AR\u200dRÊT",
     "BASTA", "Basta, grazie", "basta per favore", "Stop grazie mille", "DISISCRIVIMI", "disiscrivimi grazie",
     "Cancellami", "cancellatemi per favore", "voglio disiscrivermi"],
)
def test_stop_keywords(text: str) -> None:
    assert keyword_of(text) == "stop"


@pytest.mark.parametrize("text", ["START", "start", "Start!", "COMMENCER", "commencer svp", "Resume", "subscribe",
                                  "RIPRENDI", "riprendi grazie", "Ricomincia", "ISCRIVIMI", "iscrivimi per favore"])
def test_start_keywords(text: str) -> None:
    assert keyword_of(text) == "start"


@pytest.mark.parametrize(
    "text",
    ["when does the sale stop?", "stop by the boutique tomorrow at 5", "STOP START", "Bonjour",
     "can I start a return for my order", "", "/opt_out", "stop " * 30,
     # Italian sentences are the assistant's to understand, not keywords
     "non scrivetemi più", "basta così, grazie", "ricomincia la stessa borsa in nero?",
     "cancellami l'appuntamento di domani", "basta riprendi"],
)
def test_sentences_that_merely_contain_the_word_are_not_keywords(text: str) -> None:
    assert keyword_of(text) is None


@pytest.mark.parametrize(
    ("keyword", "text", "client_language", "expected"),
    [
        ("stop", "BASTA", None, "it"), ("stop", "BASTA", "fr", "it"), ("stop", "ARRÊT", None, "fr"),
        ("stop", "ARRÊT", "it", "fr"), ("stop", "STOP", None, "en"), ("stop", "STOP", "it", "it"),
        ("stop", "STOP", "fr", "fr"), ("stop", "Disiscrivimi", "en", "it"), ("stop", "cancellami", None, "it"),
        ("stop", "stop grazie", "en", "it"), ("stop", "stop merci", None, "fr"), ("stop", "stop please", "fr", "en"),
        ("stop", "Unsubscribe", "it", "en"),
        ("start", "RIPRENDI", None, "it"), ("start", "ricomincia", "en", "it"), ("start", "iscrivimi", "fr", "it"),
        ("start", "COMMENCER", "it", "fr"), ("start", "START", None, "en"), ("start", "START", "it-IT", "it"),
    ],
)
def test_each_keyword_is_confirmed_in_the_language_it_was_written_in(
        keyword: str, text: str, client_language: str | None, expected: str) -> None:
    assert keyword_of(text) == keyword
    assert confirmation(keyword, text, client_language) == (expected, CONFIRMATIONS[keyword][expected])


def test_the_italian_confirmations_use_the_formal_lei() -> None:
    stop, start = CONFIRMATIONS["stop"]["it"], CONFIRMATIONS["start"]["it"]
    assert "Lei" in stop and "Le basterà" in stop and "START" in stop
    assert "Sue richieste" in start and "Suo consenso" in start and "STOP" in start
    for text in (stop, start):
        assert not any(word in text.split() for word in ("tu", "ti", "tuo", "tua", "scrivi"))


async def _ledger(ch, ref: ClientRef):  # type: ignore[no-untyped-def]
    book = ch.runtime.service.consents
    profile = await book.profile(ref)
    return await book.ledger.history(book.subjects(ref, profile))


async def test_stop_in_french_is_recorded_confirmed_once_and_enforced_then_start_restores(settings: Settings
) -> None:
    ref = ClientRef(PNID, wa_id=CLAIRE)
    async with wired(settings) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "ARRÊT", "name": "Claire Laurent"})
        [confirm] = await settle(ch, admin, CLAIRE, 1)
        # One confirmation, in French (the keyword's language and Claire's), and the
        # assistant was never asked: no model can argue with it.
        assert confirm["body"] == CONFIRMATIONS["stop"]["fr"] and ch.received == []
        entries = await _ledger(ch, ref)
        assert {(e.category, e.granted, e.source, e.actor) for e in entries} == {
            ("utility", False, "whatsapp_keyword", "client"), ("marketing", False, "whatsapp_keyword", "client")}
        assert entries[0].text_shown == CONFIRMATIONS["stop"]["fr"]
        consents = ch.runtime.service.consents
        consent = await consents.consent_for(ref)
        assert not consent.messaging and not consent.marketing
        # The connector's output refuses marketing and utility alike ...
        out = WhatsAppOutput(ch.runtime)
        await out.send_response(CLAIRE, {"text": "Our winter collection is here.",
                                         "metadata": {"purpose": "new_collection"}})
        await out.send_response(CLAIRE, {"text": "Your order has shipped.", "metadata": {"purpose": "order_update"}})
        await ch.settle()
        assert len(await outbox(admin, CLAIRE)) == 1
        # ... and so does the decision every sender goes through.
        state = await ch.runtime.service.sessions.get(ref)
        registry = ch.runtime.service.registry
        for purpose in ("new_collection", "order_update", "reengage_update"):
            assert isinstance(decide(state, purpose, None, consent, T0 + timedelta(days=3), registry=registry),
                              Refuse)
        # A question afterwards is still answered: it is the client's own message.
        await say(admin, **{"from": CLAIRE, "text": "Bonjour, ma commande ?", "name": "Claire Laurent"})
        await ch.settle()
        assert [m.text for m in ch.received] == ["Bonjour, ma commande ?"]

        await say(admin, **{"from": CLAIRE, "text": "start", "name": "Claire Laurent"})
        box = await settle(ch, admin, CLAIRE, 2)
        assert box[-1]["body"] == CONFIRMATIONS["start"]["fr"]
        consent = await consents.consent_for(ref)
        # START brings back messages about her requests, not marketing: that needs her own,
        # explicit agreement (her STOP withdrew the one she had given)
        assert consent.messaging and not consent.marketing_allowed


@pytest.mark.parametrize(("word", "language"), [("STOPP", "de"), ("Basta", "it"), ("Unsubscribe", "en"),
                                                ("désabonner", "fr"), ("BASTA", "it"), ("ARRÊT", "fr"),
                                                ("STOP", "en"), ("Disiscrivimi", "it")])
async def test_a_stranger_is_confirmed_in_the_keywords_language(settings: Settings
, word: str, language: str) -> None:
    async with wired(settings) as (ch, emu, admin):
        await say(admin, **{"from": STRANGER, "text": word, "name": "A. Stranger"})
        [confirm] = await settle(ch, admin, STRANGER, 1)
        assert confirm["body"] == CONFIRMATIONS["stop"][language]
        entries = await _ledger(ch, ClientRef(PNID, wa_id=STRANGER))
        assert {e.category for e in entries} == {"utility", "marketing"} and not any(e.granted for e in entries)


async def test_user_preferences_and_131050_write_the_ledger(settings: Settings
) -> None:
    ref = ClientRef(PNID, wa_id=CLAIRE)
    async with wired(settings) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Hello", "name": "Claire Laurent"})
        await ch.settle()
        async with admin.post("/_emulator/preferences", json={"from": CLAIRE, "value": "stop"}) as r:
            assert r.status == 200, await r.text()
        for _ in range(100):
            entries = await _ledger(ch, ref)
            if entries:
                break
            await asyncio.sleep(0.05)
        assert [(e.category, e.granted, e.source) for e in entries] == [("marketing", False, "user_preferences")]
        consent = await ch.runtime.service.consents.consent_for(ref)
        assert consent.messaging and not consent.marketing_allowed
        # resume: back to what Claire agreed in the boutique (marketing: yes)
        async with admin.post("/_emulator/preferences", json={"from": CLAIRE, "value": "resume"}) as r:
            assert r.status == 200, await r.text()
        for _ in range(100):
            entries = await _ledger(ch, ref)
            if len(entries) == 2:
                break
            await asyncio.sleep(0.05)
        assert (entries[-1].granted, entries[-1].source) == (True, "user_preferences")
        assert (await ch.runtime.service.consents.consent_for(ref)).marketing_allowed

        # 131050: Meta says the client stopped marketing from us.
        failed = status("wamid.MKT131050", "failed", int(T0.timestamp()) + 60, CLAIRE,
                        errors=[{"code": 131050, "title": "Unable to deliver the message: user stopped marketing"}])
        code, _ = await ch.post(envelope(messages_change([], statuses=[failed])))
        assert code == 200
        entries = await _ledger(ch, ref)
        assert (entries[-1].category, entries[-1].granted, entries[-1].source) == ("marketing", False, "error_131050")
        assert not (await ch.runtime.service.consents.consent_for(ref)).marketing_allowed
        assert isinstance(ch.http, aiohttp.ClientSession)


async def test_an_opt_out_the_assistant_understood_in_a_sentence_is_recorded_before_its_confirmation(
    settings: Settings,
) -> None:
    ref = ClientRef(PNID, wa_id=CLAIRE)

    async def rasa_confirms(message):  # type: ignore[no-untyped-def]
        await message.output_channel.send_response(message.sender_id, {
            "text": "Understood. You will no longer receive news from us on WhatsApp.",
            "utter_action": "utter_opt_out"})

    async with wired(settings, rasa_confirms) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "please stop contacting me on whatsapp", "name": "Claire Laurent"})
        [confirm] = await settle(ch, admin, CLAIRE, 1)
        assert confirm["body"].startswith("Understood.")
        entries = await _ledger(ch, ref)
        assert {(e.category, e.granted, e.source) for e in entries} == {
            ("utility", False, "whatsapp_message"), ("marketing", False, "whatsapp_message")}
        assert not (await ch.runtime.service.consents.consent_for(ref)).messaging


async def test_only_a_confirmed_opt_out_is_recorded_from_the_assistants_words(settings: Settings) -> None:
    """The book records a withdrawal for ``utter_opt_out`` and never infers an agreement
    (``utter_opt_in``) or anything from another response."""
    from salon.consent.book import ConsentBook

    book = ConsentBook(settings.effective_database_url)
    await book.initialize()
    ref = ClientRef(PNID, wa_id=CLAIRE)
    try:
        profile = await book.profile(ref)
        for action in ("utter_opt_in", "utter_greet", None):
            assert not await book.record_understood_opt_out(ref, action, "Merci.", T0)
        assert await book.ledger.history(book.subjects(ref, profile)) == []
        assert await book.record_understood_opt_out(ref, "utter_opt_out", "C'est entendu.", T0)
        entries = await book.ledger.history(book.subjects(ref, profile))
        assert {(e.category, e.granted, e.source, e.text_shown) for e in entries} == {
            ("utility", False, "whatsapp_message", "C'est entendu."),
            ("marketing", False, "whatsapp_message", "C'est entendu.")}
        assert not (await book.consent_for(ref)).messaging
    finally:
        await book.close()


async def test_the_llm_context_reads_the_ledger_too(settings: Settings) -> None:
    """A withdrawal recorded in the ledger (by an advisor) outranks the boutique form."""
    from salon.consent.ledger import ConsentLedger
    from salon.llm.context import load_client_context
    from salon.storage.db import make_async_engine

    engine = make_async_engine(settings.effective_database_url)
    try:
        before = await load_client_context(engine, wa_id=CLAIRE, user_id=None)
        assert before.llm_consent and before.personalisation and before.purchases
        ledger = ConsentLedger(engine=engine)
        await ledger.initialize()
        await ledger.record(["c:C-001"], ["llm", "personalisation"], False, source="advisor", at=T0,
                            actor="sophie-marchand", text_shown="Souhaitez-vous que nous n'utilisions plus ...")
        after = await load_client_context(engine, wa_id=CLAIRE, user_id=None)
        assert not after.llm_consent and not after.personalisation and after.purchases == ()
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- review M8


async def test_stop_opts_the_client_out_until_she_writes_start(settings: Settings) -> None:
    """Her latest STOP/START decides ``opted_out``, for the guard's one-client question and
    for the outbound worker's batched one; every purpose the maison starts is then refused
    as opted out, whatever the book says she agreed to."""
    ref = ClientRef(PNID, wa_id=CLAIRE)
    async with wired(settings) as (ch, emu, admin):
        consents = ch.runtime.service.consents
        assert not (await consents.consent_for(ref)).opted_out
        await say(admin, **{"from": CLAIRE, "text": "STOP", "name": "Claire Laurent"})
        await settle(ch, admin, CLAIRE, 1)
        consent = await consents.consent_for(ref)
        [(_, batched)] = await consents.contexts_many([ref])
        assert consent.opted_out and batched.opted_out and batched == consent
        state = await ch.runtime.service.sessions.get(ref)
        registry = ch.runtime.service.registry
        for purpose in ("order_update", "appointment_reminder", "new_collection"):
            decision = decide(state, purpose, None, consent, T0 + timedelta(days=3), registry=registry)
            assert isinstance(decision, Refuse) and decision.reason == "opted_out", purpose

        await say(admin, **{"from": CLAIRE, "text": "START", "name": "Claire Laurent"})
        box = await settle(ch, admin, CLAIRE, 2)
        consent = await consents.consent_for(ref)
        assert not consent.opted_out and consent.messaging and not consent.marketing_allowed
        # The confirmation says what START brings back, and that news needs her agreement.
        assert box[-1]["body"] == CONFIRMATIONS["start"]["fr"]
        assert "nouveautés et invitations, uniquement avec votre accord explicite" in box[-1]["body"]


async def test_an_erased_client_who_had_stopped_is_still_stopped_when_the_crm_imports_her_again(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Erasure removes the ledger (her STOP) and the book; the suppression list keeps, hashed,
    what she had stopped, and a CRM import that brings her back (her old boutique consents,
    even a newer CRM grant) does not lift it. Her own START does, for utility only."""
    from datetime import datetime, timezone

    from sqlalchemy import insert

    from salon.config import PROJECT_ROOT
    from salon.consent.book import ConsentBook
    from salon.consent.ledger import ConsentLedger, suppressions_table
    from salon.integrations.schema import consents as consents_table
    from salon.integrations.seed import seed_database
    from salon.privacy.rights import default_registry
    from salon.storage.db import make_sync_engine

    monkeypatch.setenv("SALON_PRIVACY_SALT", "consent-test-salt")
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("action_endpoint:\n  url: http://127.0.0.1:5055/webhook\n")  # trackers in memory
    monkeypatch.setenv("SALON_RASA_ENDPOINTS", str(endpoints))
    ref = ClientRef(PNID, wa_id=CLAIRE)
    async with wired(settings) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "STOP", "name": "Claire Laurent"})
        await settle(ch, admin, CLAIRE, 1)
        assert (await ch.runtime.service.consents.consent_for(ref)).opted_out

    registry = default_registry(settings)
    try:
        report = await registry.erase(await registry.resolve(CLAIRE), actor="dpo")
    finally:
        await registry.close()
    assert report["consent_ledger"] > 0 and report["maison_clients"] == 1 and report.suppressions > 0

    seed_database(settings.database_url, PROJECT_ROOT / "data" / "maison")  # the CRM brings her back
    later = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    engine = make_sync_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(insert(consents_table), [
            {"client_id": "C-001", "purpose": purpose, "granted": True, "source": "crm_import",
             "recorded_at": later, "text_shown": "imported"} for purpose in ("utility", "marketing")])
        kept = conn.execute(suppressions_table.select()).mappings().all()
    engine.dispose()
    assert kept and not any(CLAIRE in str(dict(row)) or "C-001" in str(dict(row)) for row in kept)

    book = ConsentBook(settings.database_url)
    await book.initialize()
    try:
        assert (await book.profile(ref)) is not None  # she is in the book again
        consent = await book.consent_for(ref)
        assert consent.opted_out and not consent.messaging and not consent.marketing
        [(_, batched)] = await book.contexts_many([ref])
        assert batched == consent
        # She writes START herself, later: utility again, never marketing.
        ledger = ConsentLedger(engine=book.engine)
        await ledger.record(book.subjects(ref, await book.profile(ref)), ["utility"], True,
                            source="whatsapp_keyword", at=later + timedelta(days=1), actor="client",
                            text_shown=CONFIRMATIONS["start"]["fr"])
        consent = await book.consent_for(ref)
        assert not consent.opted_out and consent.messaging and not consent.marketing_allowed
    finally:
        await book.close()
