"""End to end: `rasa run` with the trained model, the action server and the WhatsApp
channel, against the local Cloud API emulator (separate processes, real HTTP, signed
webhooks, one shared clock file for time travel).

Needs the trained model (`make train`); `make e2e` runs this after training.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from salon.config import PROJECT_ROOT
from salon.dev.stack import Stack, StackConfig
from salon.integrations.schema import appointments
from salon.storage.db import make_sync_engine
from salon.webhook.companion import CHILD_NAME
from tests.instants import suite_now
from tests.log_scan import Needles, scan

MODEL = PROJECT_ROOT / "models" / "salon.tar.gz"
NOW = suite_now()  # every process's clock starts here, whatever the day of the run
CLAIRE = "33600000001"  # in the maison's book (C-001, VIC, advisor Sophie), utility opt-in
CLAIRE_BSUID = "FR.4820193746581029374"  # her business-scoped user id in the book
SOPHIE_TOKEN = "e2e-sophie-token-0123456789"
CRM_TOKEN = "e2e-crm-token-0123456789"
NAME = "Claire Laurent"  # her WhatsApp profile name
SAID: list[str] = []  # every text a client or an advisor wrote in this run


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not MODEL.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{MODEL} is missing: make e2e trains it first")
        pytest.skip(f"no trained model at {MODEL} (run `make train`)")
    config = StackConfig(
        model=MODEL, workdir=Path(tmp_path_factory.mktemp("stack")),
        emulator_port=0, rasa_port=0, actions_port=0, outbound_api_port=0,  # free ones
        start_at=NOW,
        extra_env={"SALON_API_TOKENS": json.dumps([
            {"name": "sophie", "token": SOPHIE_TOKEN, "scopes": ["advisor"],
             "advisor_id": "sophie-marchand"},
            {"name": "crm", "token": CRM_TOKEN, "scopes": ["outbound"]}])},
        log_level="DEBUG",  # where leaks hide: the log scan at the end reads every line
        quick_model_load=True,  # predictions on TensorFlow's graphs all the same
    )
    with Stack(config).running() as running:
        yield running


def _settled(stack: Stack, to: str, count: int) -> list[dict]:  # type: ignore[type-arg]
    """Her outbox once it holds ``count`` messages and every turn has been answered: what
    a turn sends has left before its message counts as answered, so nothing more of it
    can arrive later."""
    stack.wait_outbox(to, count)
    stack.wait_settled()
    return stack.outbox(to)


def test_signed_inbound_text_gets_exactly_one_reply(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")
    sent = _say(stack, "Hello")
    assert sent["wamid"].startswith("wamid.")
    box = _settled(stack, CLAIRE, 1)
    assert len(box) == 1, box
    reply = box[0]
    assert reply["type"] == "interactive" and reply["template"] is None
    # Known from her first message: in her record's language (a lone "Hello" does not
    # switch it), by name; a VIC: her advisor offered first.
    assert reply["body"].startswith("Bonjour Madame Laurent. Sophie se tient à votre disposition")
    assert reply["buttons"] == ["Parler à Sophie", "Prendre rendez-vous", "Suivre une commande"]
    # The reply was delivered (status webhooks flowed back into the channel).
    deadline = time.monotonic() + 10
    while stack.outbox(CLAIRE)[0]["status"] not in ("delivered", "read") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.outbox(CLAIRE)[0]["status"] in ("delivered", "read")


def test_turn_across_the_window_boundary_sends_a_template_never_free_form(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")
    _say(stack, "Hello")
    _settled(stack, CLAIRE, 1)

    stack.emulator("POST", "/_emulator/clock", json={"advance_seconds": 25 * 3600})
    # The assistant speaks first, 25 h later (a reminder or an external event).
    assert stack.trigger(CLAIRE, "greet", purpose="advisor_followup").status_code == 200
    box = _settled(stack, CLAIRE, 2)
    assert len(box) == 2, box
    nudge = box[1]
    assert nudge["type"] == "template", box
    assert nudge["template"] == "advisor_update_nudge"
    assert "Claire" in nudge["body"]
    assert nudge["status"] != "failed" and nudge["error_code"] is None
    assert all(m["error_code"] != 131047 for m in box)

    # The client taps the nudge's button: the parked message arrives, nothing else.
    _tap(stack, nudge, "0")
    box = _settled(stack, CLAIRE, 3)
    assert len(box) == 3, box
    delivered = box[2]
    assert delivered["template"] is None and delivered["type"] == "interactive"
    assert "Madame Laurent" in delivered["body"]
    assert delivered["error_code"] is None


def _say(stack: Stack, text: str) -> dict:  # type: ignore[type-arg]
    SAID.append(text)
    return dict(stack.emulator("POST", "/_emulator/inbound", json={"from": CLAIRE, "text": text, "name": NAME}))


def _tap(stack: Stack, message: dict, button: str) -> None:  # type: ignore[type-arg]
    stack.emulator("POST", "/_emulator/inbound", json={
        "from": CLAIRE, "reply_to": message["wamid"], "button": button, "name": NAME})


def test_book_an_appointment_with_buttons(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")
    _say(stack, "I'd like to book a private viewing in Paris")
    box = _settled(stack, CLAIRE, 1)
    assert "Which day and time" in box[-1]["body"], box
    _say(stack, "next Tuesday afternoon")
    box = _settled(stack, CLAIRE, 2)
    offer = box[-1]
    assert "free times in Paris" in offer["body"] and 1 <= len(offer["buttons"]) <= 3, box
    assert all(len(title) <= 20 for title in offer["buttons"])
    _tap(stack, offer, "0")
    box = _settled(stack, CLAIRE, 3)
    assert box[-1]["buttons"] == ["Just me", "Two of us", "Three of us"], box
    _tap(stack, box[-1], "1")
    box = _settled(stack, CLAIRE, 4)
    summary = box[-1]
    assert "private viewing on Tuesday" in summary["body"] and "for 2" in summary["body"], box
    assert summary["buttons"] == ["Yes, please confirm", "Another time"]
    _tap(stack, summary, "0")
    box = _settled(stack, CLAIRE, 5)
    booked = box[-1]["body"]
    assert booked.startswith("It is booked: a private viewing on Tuesday"), box
    assert "Sophie will be expecting you" in booked
    reference = booked.rsplit("Your reference is ", 1)[1].rstrip(".")
    engine = make_sync_engine(stack.config.effective_database_url)
    with engine.connect() as conn:
        row = conn.execute(select(appointments).where(appointments.c.id == reference)).one()
    engine.dispose()
    assert (row.client_id, row.boutique_id, row.service, row.status, row.notes) == (
        "C-001", "paris", "private_viewing", "booked", "Party of 2.")
    assert all(m["template"] is None and m["error_code"] is None for m in box)


FRANCESCA = "393470001001"  # C-023, Italian, advisor Giulia (Milan)


def test_an_italian_client_books_in_italian(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")

    def say(words: str) -> None:
        SAID.append(words)
        stack.emulator("POST", "/_emulator/inbound", json={"from": FRANCESCA, "text": words,
                                                          "name": "Francesca Bellini"})

    def tap(message: dict, button: str) -> None:  # type: ignore[type-arg]
        stack.emulator("POST", "/_emulator/inbound", json={
            "from": FRANCESCA, "reply_to": message["wamid"], "button": button, "name": "Francesca Bellini"})

    say("Buongiorno, vorrei prenotare una visione privata a Milano")
    box = _settled(stack, FRANCESCA, 1)
    assert box[-1]["body"].startswith("Quale giorno"), box
    say("martedì prossimo nel pomeriggio")
    box = _settled(stack, FRANCESCA, 2)
    offer = box[-1]
    assert "Milano" in offer["body"] and 1 <= len(offer["buttons"]) <= 3, box
    assert all(len(title) <= 20 for title in offer["buttons"])
    tap(offer, "0")
    box = _settled(stack, FRANCESCA, 3)
    assert box[-1]["body"] == "Ci sarà qualcuno con Lei?"
    assert box[-1]["buttons"] == ["Solo io", "Saremo in due", "Saremo in tre"], box
    tap(box[-1], "0")
    box = _settled(stack, FRANCESCA, 4)
    summary = box[-1]
    assert summary["body"].startswith(
        "Prenoto quindi il Suo appuntamento (presentazione privata) per martedì"), box
    assert summary["buttons"] == ["Sì, confermo", "Un altro orario"]
    tap(summary, "0")
    box = _settled(stack, FRANCESCA, 5)
    booked = box[-1]["body"]
    assert booked.startswith("Prenotazione confermata"), box
    assert "Giulia La accoglierà" in booked
    reference = booked.rsplit("Il Suo codice di riferimento è ", 1)[1].rstrip(".")
    engine = make_sync_engine(stack.config.effective_database_url)
    with engine.connect() as conn:
        row = conn.execute(select(appointments).where(appointments.c.id == reference)).one()
    engine.dispose()
    assert (row.client_id, row.boutique_id, row.service, row.status) == (
        "C-023", "milan", "private_viewing", "booked")
    assert all(m["template"] is None and m["error_code"] is None for m in box)


def test_ask_for_an_advisor_and_get_a_reply_from_the_advisor_api(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")
    _say(stack, "I would like to speak to my advisor")
    box = _settled(stack, CLAIRE, 1)
    assert len(box) == 1 and "Sophie will reply to you here" in box[0]["body"], box
    _say(stack, "Thank you, I will wait")  # paused: no reply from the assistant
    stack.wait_settled()
    assert len(stack.outbox(CLAIRE)) == 1
    # Something more for the advisor: told once that her advisor has it, then quiet.
    _say(stack, "Also, the belt of my coat is missing from the parcel")
    box = _settled(stack, CLAIRE, 2)
    assert len(box) == 2 and box[-1]["body"] == (
        "Your client advisor Sophie has your message and will reply to you here personally."), box
    _say(stack, "It is the camel one")
    stack.wait_settled()
    assert len(stack.outbox(CLAIRE)) == 2

    api = f"{stack.config.rasa_url}/webhooks/whatsapp/advisor/conversations"
    auth = {"Authorization": f"Bearer {SOPHIE_TOKEN}"}
    assert httpx.get(api, timeout=30).status_code == 401
    listing = httpx.get(api, headers=auth, timeout=30).json()["conversations"]
    mine = [c for c in listing if c["conversation_id"] == CLAIRE]
    assert len(mine) == 1 and mine[0]["window"]["open"] is True and mine[0]["reason"] == "human_request"
    transcript = httpx.get(f"{api}/{CLAIRE}", headers=auth, timeout=30).json()["transcript"]
    assert [(line["from"], line["text"]) for line in transcript[-3:]] == [
        ("client", "Also, the belt of my coat is missing from the parcel"),
        ("assistant", box[-1]["body"]), ("client", "It is the camel one")]

    reply = "Good day, Ms Laurent, it is Sophie. How may I help?"
    SAID.append(reply)
    sent = httpx.post(f"{api}/{CLAIRE}/reply", headers=auth, timeout=30, json={"text": reply})
    assert sent.status_code == 200 and sent.json()["sent"] == "free_form", sent.text
    box = _settled(stack, CLAIRE, 3)
    assert box[-1]["body"] == reply
    assert box[-1]["template"] is None

    resumed = httpx.post(f"{api}/{CLAIRE}/resume", headers=auth, timeout=30)
    assert resumed.status_code == 200 and resumed.json()["status"] == "resolved"
    _say(stack, "Hello")  # the assistant answers again
    box = _settled(stack, CLAIRE, 4)
    assert "Ms Laurent" in box[-1]["body"], box


ANTOINE = "33600000002"  # C-002, French, advisor Camille (Paris)
NIKO = "393330000077"  # not in the book: writes in Italian


def test_what_a_person_must_answer_reaches_one_mid_booking_and_in_italian(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")

    def say(who: str, words: str) -> None:
        SAID.append(words)
        stack.emulator("POST", "/_emulator/inbound", json={"from": who, "text": words})

    say(ANTOINE, "Je voudrais réserver un essayage à Paris")
    asked = len(_settled(stack, ANTOINE, 1))  # the booking form's question
    say(ANTOINE, "pardon, mon père est décédé cette nuit, je ne pourrai pas venir")
    box = _settled(stack, ANTOINE, asked + 1)
    assert len(box) == asked + 1, box
    assert box[-1]["body"].startswith("Nous sommes de tout cœur avec vous"), box
    assert "Camille vous répondra ici" in box[-1]["body"]
    say(NIKO, "Buongiorno, mi avete addebitato due volte la stessa borsa")
    box = _settled(stack, NIKO, 1)
    # In his language: the apology for the charge, then who answers and when.
    assert len(box) == 1 and box[0]["body"].startswith(
        "Ci scusiamo per il problema riscontrato con il pagamento."), box
    assert "della nostra boutique di Parigi" in box[0]["body"], box
    say(ANTOINE, "merci")  # both conversations are a person's now: the assistant is quiet
    say(NIKO, "grazie")
    stack.wait_settled()
    assert len(stack.outbox(ANTOINE)) == asked + 1 and len(stack.outbox(NIKO)) == 1
    # Something more: told once, in their language, who has it; his advisor is a woman,
    # Niko has none.
    say(ANTOINE, "je voulais aussi vous dire que je rappellerai la semaine prochaine")
    box = _settled(stack, ANTOINE, asked + 2)
    assert box[-1]["body"] == ("Votre conseillère Camille a bien reçu votre message et vous "
                               "répondra ici personnellement."), box
    say(NIKO, "la borsa è quella nera, ordinata a novembre")
    box = _settled(stack, NIKO, 2)
    assert box[-1]["body"] == ("Il Suo messaggio è arrivato ai nostri consulenti: uno di loro Le "
                               "risponderà qui personalmente."), box
    engine = make_sync_engine(stack.config.effective_database_url)
    with engine.connect() as conn:
        reasons = dict(conn.execute(text(
            "SELECT conversation_id, reason FROM salon_handoffs WHERE status = 'open'")).all())
    engine.dispose()
    assert reasons[ANTOINE] == "distress" and reasons[NIKO] == "payment"


def test_back_after_25_hours_and_greeted_with_context(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")
    _say(stack, "I'd like to book a fitting in London")
    box = _settled(stack, CLAIRE, 1)
    assert "Which day and time" in box[-1]["body"], box
    # 25 hours of silence, counted from the latest message the session store holds: an
    # earlier test left one at +25 h (the reset above moved the emulator's clock back).
    stack.emulator("POST", "/_emulator/clock", json={"advance_seconds": 50 * 3600})
    _say(stack, "Hello")
    box = _settled(stack, CLAIRE, 3)
    recall, greeting = box[1], box[2]
    assert recall["body"] == ("Welcome back, Ms Laurent. Last time we were arranging your fitting "
                              "in London. Shall we continue?"), box
    assert recall["buttons"] == ["Continue booking", "Something else"]
    assert "Ms Laurent" in greeting["body"]
    assert all(m["template"] is None for m in box[1:])  # she wrote: the window is open again
    _tap(stack, recall, "0")
    box = _settled(stack, CLAIRE, 4)
    assert "Which day and time" in box[-1]["body"], box  # boutique and service carried over


def test_an_order_update_through_the_outbound_api_and_worker(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")
    _say(stack, "Hello")
    _settled(stack, CLAIRE, 1)
    text = "Good news, Ms Laurent: your coat SOL-104233 has left the atelier."
    SAID.append(text)
    api = stack.config.outbound_api_url
    assert api is not None
    request = {"client": {"wa_id": CLAIRE}, "purpose": "order_update", "content": {"text": text},
               "params": {"order_ref": "SOL-104233"}, "idempotency_key": f"e2e-{time.time_ns()}"}
    assert httpx.post(f"{api}/outbound", json=request, timeout=30).status_code == 401
    stored = httpx.post(f"{api}/outbound", json=request, headers={"Authorization": f"Bearer {CRM_TOKEN}"},
                        timeout=30)
    assert stored.status_code == 201, stored.text
    box = _settled(stack, CLAIRE, 2)
    assert box[-1]["body"] == text and box[-1]["template"] is None, box  # her window is open: free-form
    deadline = time.monotonic() + 20
    shown: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        shown = httpx.get(f"{api}/outbound/{stored.json()['id']}", timeout=30,
                          headers={"Authorization": f"Bearer {CRM_TOKEN}"}).json()
        if shown["state"] != "queued":
            break
        time.sleep(0.3)
    assert shown["state"] == "sent_free_form", shown


INES_BSUID = "FR.5772156649015328606"  # C-031: in the book by her username's BSUID alone
INES_NEW_BSUID = "FR.73330012948120017762"
INES_NAME = "Inès Moreau"


def _ines(stack: Stack, text: str, user_id: str = INES_BSUID, **extra: Any) -> dict[str, Any]:
    """Inès writes from her WhatsApp username: no phone number in the webhook."""
    if text:
        SAID.append(text)
    return dict(stack.emulator("POST", "/_emulator/inbound", json={
        "user_id": user_id, "bsuid_only": True, "text": text or None, "name": INES_NAME, **extra}))


def _ines_taps(stack: Stack, message: dict[str, Any], button: str, user_id: str = INES_BSUID) -> None:
    stack.emulator("POST", "/_emulator/inbound", json={
        "user_id": user_id, "bsuid_only": True, "reply_to": message["wamid"], "button": button,
        "name": INES_NAME})


def _by_recipient(message: dict[str, Any], bsuid: str) -> None:
    """Addressed as Meta reads a BSUID: ``recipient``, never ``to``; and delivered."""
    body = message["payload"]
    assert body.get("recipient") == bsuid and body.get("recipient_type") == "individual", body
    assert "to" not in body, body
    assert message["status"] in ("delivered", "read"), message


def test_a_username_only_client_books_and_receives_her_reminder(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")
    _ines(stack, "Bonjour, je voudrais un essayage à Paris")
    box = _settled(stack, INES_BSUID, 1)
    assert "Quel jour" in box[-1]["body"] or "Which day" in box[-1]["body"], box
    _ines(stack, "mardi prochain après-midi")
    offer = _settled(stack, INES_BSUID, 2)[-1]
    assert offer["buttons"], offer
    _ines_taps(stack, offer, "0")
    party = _settled(stack, INES_BSUID, 3)[-1]
    _ines_taps(stack, party, "0")  # just her
    summary = _settled(stack, INES_BSUID, 4)[-1]
    _ines_taps(stack, summary, "0")  # confirm
    box = _settled(stack, INES_BSUID, 5)
    assert "APT-" in box[-1]["body"], box  # booked in her book record, found by her BSUID
    for message in box:
        _by_recipient(message, INES_BSUID)
    engine = make_sync_engine(stack.config.effective_database_url)
    with engine.connect() as conn:
        [booked] = conn.execute(select(appointments).where(appointments.c.client_id == "C-031",
                                                           appointments.c.status == "booked")).all()
    engine.dispose()
    # The day before, her window long closed: the reminder scan (as the operator's cron
    # runs it) queues it, the worker sends the approved template, to her BSUID.
    now = datetime.fromisoformat(stack.emulator("GET", "/_emulator/clock")["now"])
    due = booked.starts_at.replace(tzinfo=booked.starts_at.tzinfo or timezone.utc) - timedelta(hours=23, minutes=30)
    stack.emulator("POST", "/_emulator/clock", json={"advance_seconds": (due - now).total_seconds()})
    scanned = stack.salon("outbound", "scan")
    assert scanned.returncode == 0 and "reminder(s)" in scanned.stdout, scanned.stdout + scanned.stderr
    box = _settled(stack, INES_BSUID, 6)
    reminder = box[-1]
    assert reminder["type"] == "template" and reminder["template"] == "appointment_reminder", box
    _by_recipient(reminder, INES_BSUID)
    assert "Inès" in reminder["body"]


def test_an_identity_change_keeps_her_window_her_stop_and_her_booking(stack: Stack) -> None:
    """Inès (who booked above) says STOP, then Meta changes her BSUID mid-conversation."""
    stack.emulator("POST", "/_emulator/reset")
    _ines(stack, "STOP")
    box = _settled(stack, INES_BSUID, 1)
    assert "ne recevrez plus" in box[-1]["body"] or "no longer receive" in box[-1]["body"], box
    changed = stack.emulator("POST", "/_emulator/identity_change",
                             json={"client": INES_BSUID, "new_user_id": INES_NEW_BSUID})
    assert changed["type"] == "user_changed_user_id" and changed["client"]["user_id"] == INES_NEW_BSUID
    # The emulator delivers the webhook in the background, and the channel acknowledges it
    # once the change is applied: wait for the delivery, not for a fixed time.
    assert stack.emulator("POST", "/_emulator/wait_idle", json={"timeout": 60})["idle"]
    before = len(stack.outbox(INES_NEW_BSUID))  # the emulator shows her history under her new id
    # Her window followed her: her session, found by her new id, is the one her STOP opened.
    engine = make_sync_engine(stack.config.effective_database_url)
    with engine.connect() as conn:
        key = conn.execute(text("SELECT client_key FROM salon_session_aliases WHERE alias = :a"),
                           {"a": f"u:{INES_NEW_BSUID}"}).scalar_one()
        last_us = conn.execute(text("SELECT last_inbound_us FROM salon_sessions WHERE client_key = :k"),
                               {"k": key}).scalar_one()
    engine.dispose()
    assert key == f"u:{INES_BSUID}"  # the same session, and so the same conversation
    now = datetime.fromisoformat(stack.emulator("GET", "/_emulator/clock")["now"])
    assert now - datetime.fromtimestamp(last_us / 1e6, timezone.utc) < timedelta(hours=1)
    # Her STOP holds for the assistant too: a follow-up it starts is not sent.
    assert stack.trigger(INES_BSUID, "greet", purpose="advisor_followup").status_code == 200
    stack.wait_settled(grace_s=1.0)  # what it would send leaves with its own request
    assert len(stack.outbox(INES_NEW_BSUID)) == before
    # Her booking, in the same conversation, from her new id.
    _ines(stack, "je voudrais déplacer mon rendez-vous", user_id=INES_NEW_BSUID)
    box = _settled(stack, INES_NEW_BSUID, before + 1)
    # her appointment is found (the book knows her new id), then the new day is asked
    # for: one message, the turn's two responses merged
    assert len(box) == before + 1, box
    assert "trouvons un autre moment pour" in box[before]["body"], box
    assert "Quel jour et quelle heure" in box[before]["body"], box
    for message in box[before:]:
        _by_recipient(message, INES_NEW_BSUID)
    # Her STOP: a marketing message to her new id is refused, nothing reaches her.
    api = stack.config.outbound_api_url
    assert api is not None
    request = {"client": {"user_id": INES_NEW_BSUID}, "purpose": "new_collection",
               "content": {"text": "Our winter collection is here."},
               "idempotency_key": f"e2e-stop-{time.time_ns()}"}
    stored = httpx.post(f"{api}/outbound", json=request, timeout=30,
                        headers={"Authorization": f"Bearer {CRM_TOKEN}"})
    assert stored.status_code == 201, stored.text
    deadline, shown = time.monotonic() + 20, {}
    while time.monotonic() < deadline:
        shown = httpx.get(f"{api}/outbound/{stored.json()['id']}", timeout=30,
                          headers={"Authorization": f"Bearer {CRM_TOKEN}"}).json()
        if shown["state"] != "queued":
            break
        time.sleep(0.3)
    assert shown["state"] == "refused", shown
    assert len(stack.outbox(INES_NEW_BSUID)) == len(box)  # nothing more reached her


# Personal data a client may write, for the log scan below.
PROBE_EMAIL = "claire.laurent@example.com"
PROBE_PHONE = "+33 6 12 34 56 78"


def test_logs_of_every_process_hold_no_personal_data(stack: Stack) -> None:
    """Every line the emulator, the action server, `rasa run` and the WhatsApp I/O process
    wrote during this run (at DEBUG) is scanned for the numbers, BSUID, email, names and
    message bodies of the run, and for anything shaped like a phone number, a BSUID or
    an email. Runs last: it stops the stack to read complete logs."""
    stack.emulator("POST", "/_emulator/reset")
    _say(stack, f"Could you write to {PROBE_EMAIL} or call me on {PROBE_PHONE}, please")
    _settled(stack, CLAIRE, 1)
    # A client known only by her BSUID (Meta's usernames): no phone number in the webhook.
    body = "Bonjour, je voudrais parler à Sophie"
    SAID.append(body)
    stack.emulator("POST", "/_emulator/inbound", json={"user_id": CLAIRE_BSUID, "bsuid_only": True,
                                                       "text": body, "name": NAME})
    _settled(stack, CLAIRE_BSUID, 1)
    wall = datetime.now(timezone.utc)  # Rasa's own event times follow the real clock
    ended = stack.stop()
    # Every process ended by itself on SIGTERM (none killed): its log is complete.
    assert ended == {name: "exited 0" for name in ("emulator", "actions", "rasa", "outbound-worker",
                                                   "outbound-api")}, ended
    logs = {name: path.read_text(encoding="utf-8", errors="replace") for name, path in stack.log_paths().items()}

    needles = Needles(
        phones=[CLAIRE, f"+{CLAIRE}", PROBE_PHONE], bsuids=[CLAIRE_BSUID, INES_BSUID, INES_NEW_BSUID],
        emails=[PROBE_EMAIL], names=[NAME, *NAME.split(), INES_NAME, *INES_NAME.split()], bodies=SAID,
        allowed_numbers=[stack.config.phone_number_id, stack.config.waba_id],
        epoch_range=(min(wall, NOW) - timedelta(days=30), max(wall, NOW) + timedelta(days=30)),
    )
    leaks = scan(logs, needles)
    assert not leaks, f"{len(leaks)} log line(s) with personal data:\n" + "\n".join(map(str, leaks[:40]))

    # The scan cannot pass for want of logs: every process wrote, at DEBUG, the I/O
    # process's lines are among Rasa's, and values are masked where they were logged.
    # (Checked as named booleans, so a failure prints no log text.)
    rasa_log, actions_log, worker_log = logs["rasa"], logs["actions"], logs["outbound-worker"]
    seen = {
        "every process's log": set(logs) == {"emulator", "actions", "rasa", "outbound-worker", "outbound-api"}
        and all(logs.values()),
        "rasa at DEBUG": rasa_log.count(" DEBUG ") > 100 and "rasa.core.processor" in rasa_log,
        "the client's words as Rasa parsed them, masked": bool(
            re.search(r'"parse_data_text": \[text:[0-9a-f]{6}\]', rasa_log)),
        "the assistant's answers in Rasa's events, masked": bool(
            re.search(r"BotUttered\('\[text:[0-9a-f]{6}\]'", rasa_log)),
        "each message in the I/O process, masked": bool(re.search(
            rf"DEBUG +{CHILD_NAME}\[\d+\] salon.webhook.pipeline - message \[wamid:\w+\] from \[phone:", rasa_log)),
        "the BSUID client's message in the I/O process, masked": bool(re.search(
            rf"{CHILD_NAME}\[\d+\] salon.webhook.pipeline - message \[wamid:\w+\] from \[bsuid:", rasa_log)),
        "each send in the I/O process, masked": bool(
            re.search(rf"{CHILD_NAME}\[\d+\] salon.guard.sender - send to \[phone:", rasa_log)),
        "the action server at DEBUG": " DEBUG " in actions_log and "action_greet" in actions_log,
        "the worker's send, masked": bool(
            re.search(r"DEBUG salon.guard.sender: send to \[phone:\w+\] \(order_update\): free_form", worker_log)),
        "the run's bodies": len(SAID) >= 10,
    }
    assert all(seen.values()), {what: ok for what, ok in seen.items() if not ok}
    # The scan finds what it looks for (a line quoting the run's values is caught, masked).
    wamid = "wamid." + base64.b64encode(b"\x1c\x18\x0b" + CLAIRE.encode() + b"\x15\x02\x00").decode()
    planted = scan({"planted": f"x {SAID[0]} {NAME} {PROBE_EMAIL} {CLAIRE_BSUID} {CLAIRE} {wamid}"}, needles)
    assert len(planted) == 1
    assert {"body", "name", "email", "bsuid", "phone", "phone-in-wamid"} <= set(planted[0].kind.split(","))
    assert all(value not in str(planted[0]) for value in (SAID[0], NAME, PROBE_EMAIL, CLAIRE_BSUID, CLAIRE, wamid))
