"""Repair requests in the advisor API, against the Cloud API emulator: an advisor sees
and changes only their own clients' requests (a manager all of them), each with the
client's window; a change the client should know of is told through the send-time guard,
free-form while the window is open, then parked behind the nudge or, for a piece ready
for collection, as the approved ``aftercare_ready`` template once it has closed."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from salon.advisors.repairs import RepairBook
from salon.clock import ManualClock
from salon.config import PROJECT_ROOT, Settings
from salon.integrations.seed import seed_database
from tests.test_advisor_api import (
    CLAIRE,
    JAMES,
    OPS,
    SOPHIE,
    T0,
    TOKENS,
    call,
    client_writes,
    desk,
    outbox,
)

HENRY = "447700900102"  # C-014, James's client
PHOTO = {"id": "1046573827461", "mime_type": "image/jpeg", "sha256": "abc", "type": "image"}


@pytest.fixture()
def maison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    template = tmp_path / "seeded.db"
    seed_database(f"sqlite:///{template}", PROJECT_ROOT / "data" / "maison")
    db = tmp_path / "salon.db"
    shutil.copy(template, db)
    monkeypatch.setenv("SALON_API_TOKENS", json.dumps(TOKENS))
    return Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=f"sqlite:///{db}", redis_url=None)


async def open_requests(settings: Settings) -> tuple[str, str]:
    """What aftercare_form opens in the action server: one request of Claire's (Sophie's
    client), one of Henry's (James's)."""
    book = RepairBook(settings.effective_database_url)
    await book.initialize()
    try:
        claire = await book.open(conversation_id=CLAIRE, item="Astre bracelet", issue="the clasp is broken",
                                 photos=[PHOTO], now=T0, client_id="C-001", advisor_id="sophie-marchand",
                                 boutique_id="paris")
        henry = await book.open(conversation_id=HENRY, item="Méridien 38", issue="it stopped", photos=[],
                                now=T0, client_id="C-014", advisor_id="james-whitaker", boutique_id="london")
    finally:
        await book.close()
    return claire.id, henry.id


async def test_repair_requests_seen_changed_and_told_to_the_client(maison: Settings) -> None:
    clock = ManualClock(T0)
    claire_rep, henry_rep = await open_requests(maison)
    async with desk(maison, clock) as (ch, agent, admin, _):
        await client_writes(ch, admin, "Bonjour, où en est mon bracelet ?")  # Claire's window opens

        # Tokens, scopes and ownership.
        assert (await call(ch, "GET", "/repairs"))[0] == 401
        assert (await call(ch, "GET", "/repairs", "metrics-token-0123456789"))[0] == 403
        status, body = await call(ch, "GET", "/repairs", JAMES)
        assert status == 200 and [r["id"] for r in body["repairs"]] == [henry_rep]
        assert (await call(ch, "GET", f"/repairs/{claire_rep}", JAMES))[0] == 403
        assert (await call(ch, "POST", f"/repairs/{claire_rep}/status", JAMES, {"status": "ready"}))[0] == 403
        assert (await call(ch, "GET", "/repairs/REP-20261125-000000", JAMES))[0] == 403
        assert (await call(ch, "GET", "/repairs/REP-20261125-000000", OPS))[0] == 404
        assert {r["id"] for r in (await call(ch, "GET", "/repairs", OPS))[1]["repairs"]} == {claire_rep, henry_rep}

        status, body = await call(ch, "GET", "/repairs", SOPHIE)
        assert status == 200
        [item] = body["repairs"]
        assert {k: item[k] for k in ("id", "status", "item", "issue", "photos", "opened_at", "client_id",
                                     "client_name", "conversation_id", "boutique_id")} == {
            "id": claire_rep, "status": "open", "item": "Astre bracelet", "issue": "the clasp is broken",
            "photos": [PHOTO], "opened_at": T0.isoformat(), "client_id": "C-001",
            "client_name": "Claire Laurent", "conversation_id": CLAIRE, "boutique_id": "paris"}
        assert item["window"]["open"] is True and item["window"]["can_send_free_form"] is True

        # Bad changes are refused with the reason, and change nothing.
        for bad in ({"status": "lost"}, {}, {"note": "   "}, {"status": "ready", "notify": "yes"}, ["ready"]):
            assert (await call(ch, "POST", f"/repairs/{claire_rep}/status", SOPHIE, bad))[0] == 400, bad
        assert (await call(ch, "GET", f"/repairs/{claire_rep}", SOPHIE))[1]["status"] == "open"

        # Received, window open: told free-form, in French, and kept in the conversation.
        status, body = await call(ch, "POST", f"/repairs/{claire_rep}/status", SOPHIE,
                                  {"status": "received", "note": "Arrived at the Pantin atelier."})
        assert status == 200 and body["repair"]["status"] == "received"
        assert body["notice"]["sent"] == "free_form" and body["notice"]["wamid"]
        assert body["update"] == {**body["update"], "status": "received", "note": "Arrived at the Pantin atelier.",
                                  "by": "sophie", "notified": "free_form"}
        told = (f"Madame Laurent, votre pièce (Astre bracelet) est bien arrivée à notre atelier (demande "
                f"{claire_rep}) ; nous vous tiendrons informée ici.")
        assert [(m["type"], m["body"]) for m in await outbox(admin)] == [("text", told)]
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        assert tracker is not None and tracker.latest_bot_utterance is not None
        assert tracker.latest_bot_utterance.text == told
        assert tracker.latest_bot_utterance.metadata == {"advisor": "sophie"}

        # A note alone: kept, nothing said to the client.
        status, body = await call(ch, "POST", f"/repairs/{claire_rep}/status", SOPHIE,
                                  {"note": "Clasp spring to be replaced."})
        assert status == 200 and body["repair"]["status"] == "received" and body["notice"] is None
        assert len(await outbox(admin)) == 1

        # 25 hours later the window has closed.
        clock.advance(timedelta(hours=25))
        item = (await call(ch, "GET", "/repairs", SOPHIE))[1]["repairs"][0]
        assert item["window"]["open"] is False and item["status"] == "received"
        # In progress: parked, and the nudge template knocks.
        status, body = await call(ch, "POST", f"/repairs/{claire_rep}/status", SOPHIE, {"status": "in_progress"})
        assert status == 200 and body["notice"]["sent"] == "parked" and body["notice"]["nudge_wamid"]
        # Ready for collection: the approved aftercare_ready template, with the piece and the boutique.
        status, body = await call(ch, "POST", f"/repairs/{claire_rep}/status", SOPHIE,
                                  {"status": "ready", "note": "Polished too."})
        assert status == 200 and body["notice"]["sent"] == "template"
        assert body["notice"]["template"] == "aftercare_ready"
        box = await outbox(admin)
        assert [(m["type"], m.get("template")) for m in box] == [
            ("text", None), ("template", "advisor_update_nudge"), ("template", "aftercare_ready")]
        assert box[2]["body"] == ("Bonjour Claire, votre pièce (Astre bracelet) est revenue de notre atelier et "
                                  "vous attend dans notre boutique de Paris.")

        status, body = await call(ch, "GET", f"/repairs/{claire_rep}", SOPHIE)
        assert status == 200 and body["status"] == "ready"
        assert [(h["status"], h["note"], h["notified"]) for h in body["history"]] == [
            ("received", "Arrived at the Pantin atelier.", "free_form"),
            ("received", "Clasp spring to be replaced.", None),
            ("in_progress", None, "parked"),
            ("ready", "Polished too.", "template")]
        assert body["updated_at"] == (T0 + timedelta(hours=25)).isoformat()

        # Closed (collected): nothing more to tell, and nothing more to change.
        status, body = await call(ch, "POST", f"/repairs/{claire_rep}/status", SOPHIE,
                                  {"status": "closed", "note": "Collected."})
        assert status == 200 and body["notice"] is None
        assert (await call(ch, "POST", f"/repairs/{claire_rep}/status", SOPHIE, {"status": "ready"}))[0] == 409
        assert (await call(ch, "GET", "/repairs", SOPHIE))[1] == {"repairs": []}
        every = (await call(ch, "GET", "/repairs?all=true", SOPHIE))[1]["repairs"]
        assert [(r["id"], r["status"]) for r in every] == [(claire_rep, "closed")]
        assert len(await outbox(admin)) == 3


async def test_a_change_kept_quiet_and_a_client_who_never_wrote(maison: Settings) -> None:
    clock = ManualClock(T0)
    _, henry_rep = await open_requests(maison)
    async with desk(maison, clock) as (ch, _, admin, _):
        status, body = await call(ch, "POST", f"/repairs/{henry_rep}/status", JAMES,
                                  {"status": "received", "notify": False})
        assert status == 200 and body["notice"] is None and body["update"]["notified"] is None
        # Henry never wrote: no window, so the piece ready for collection goes as the template.
        status, body = await call(ch, "POST", f"/repairs/{henry_rep}/status", JAMES, {"status": "ready"})
        assert status == 200 and body["notice"]["sent"] == "template"
        async with admin.post("/_emulator/wait_idle", json={"timeout": 10}):
            pass
        async with admin.get("/_emulator/outbox", params={"to": HENRY}) as r:
            box = list(await r.json())
        assert [(m["type"], m.get("template"), m["body"]) for m in box] == [
            ("template", "aftercare_ready",
             "Henry, your Méridien 38 is back from our atelier and ready for you at our London boutique.")]


def test_the_client_is_told_in_her_language() -> None:
    from datetime import datetime, timezone

    from salon.advisors.repairs import RepairRequest, status_message

    request = RepairRequest(id="REP-20261126-ABC123", conversation_id="393470001001", client_id="C-023",
                            advisor_id="giulia-ferri", boutique_id="milan", item="Astre bracelet",
                            issue="la chiusura è rotta", photos=(), status="ready",
                            created_at=datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc))

    def told(status: str, language: str, name: str | None = None, city: str | None = "Milan") -> str | None:
        return status_message(request, status, language=language, name=name, boutique_city=city)

    assert told("received", "it", "Signora Bellini") == (
        "Signora Bellini, il Suo pezzo (Astre bracelet) è arrivato al nostro atelier (richiesta "
        "REP-20261126-ABC123); La aggiorneremo qui.")
    assert told("in_progress", "it") == (
        "Il Suo pezzo (Astre bracelet) è ora nelle mani dei nostri artigiani (richiesta REP-20261126-ABC123); "
        "La avviseremo qui non appena sarà pronto.")
    assert told("ready", "it") == (
        "Il Suo pezzo (Astre bracelet) è tornato dal nostro atelier e La attende nella nostra boutique di "
        "Milano (richiesta REP-20261126-ABC123). Sarà un piacere accoglierLa.")
    assert told("ready", "fr", city="London") is not None
    assert "dans notre boutique de Londres" in (told("ready", "fr", city="London") or "")
    assert "en boutique" in (told("ready", "fr", city=None) or "")
    assert told("ready", "en", "Henry", "London") == (
        "Henry, your Astre bracelet is back from our atelier and ready for you at our London boutique "
        "(request REP-20261126-ABC123). We look forward to seeing you.")
    assert told("closed", "it") is None and told("open", "fr") is None
