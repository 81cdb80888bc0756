"""The CRM port: the SQL adapter on both backends, and the REST adapter against a real
HTTP server on loopback serving the same records (the port is a real seam)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime, timezone

import pytest
from aiohttp import web

from salon.conversation.greetings import greeting
from salon.conversation.phrasing import address
from salon.integrations.crm import (
    CrmUnavailable,
    HttpCrm,
    SqlCrm,
    record_from_mapping,
    record_to_mapping,
)
from salon.storage.db import make_async_engine
from tests.seeding import seed_maison

CLAIRE_WA = "33600000001"
CLAIRE_BSUID = "FR.4820193746581029374"
HENRY_WA = "447700900102"  # Platinum, London, English
FRANCESCA_WA = "393470001001"  # C-023, VIC, Italian, advisor Giulia (Milan)
LORENZO_WA = "393480002002"  # C-024, Platinum, Italian
UNKNOWN = "447700900999"
TOKEN = "crm-test-token-0123456789"


@pytest.fixture()
async def crm(database_url: str) -> AsyncIterator[SqlCrm]:
    seed_maison(database_url)
    engine = make_async_engine(database_url)
    yield SqlCrm(engine)
    await engine.dispose()


async def test_a_client_is_found_by_number_or_bsuid_with_everything_the_book_holds(crm: SqlCrm) -> None:
    claire = await crm.find(wa_id=CLAIRE_WA, user_id=None)
    assert claire is not None
    assert (claire.id, claire.title, claire.first_name, claire.last_name) == ("C-001", "Ms", "Claire", "Laurent")
    assert (claire.language, claire.tier, claire.is_vic) == ("fr", "VIC", True)
    assert claire.advisor is not None and claire.advisor.id == "sophie-marchand"
    assert claire.advisor.first_name == "Sophie" and claire.advisor.boutique_id == "paris"
    assert claire.advisor.gender == "f"  # "votre conseillère Sophie"
    assert claire.size_for("ready_to_wear") == "38" and claire.size_for("shoes") == "38.5"
    assert claire.preferences["colours"] == ["Tan", "Noir", "Camel"]
    assert [p.purchased_on for p in claire.purchases] == [
        date(2024, 11, 8), date(2025, 3, 21), date(2025, 12, 19), date(2026, 5, 2)]
    assert claire.purchases[0].product_name and claire.purchases[0].colour == "Noir"
    assert claire.consents_to("marketing") and claire.consents_to("llm")
    assert await crm.find(wa_id=None, user_id=CLAIRE_BSUID) == claire
    assert await crm.find(wa_id="+" + CLAIRE_WA, user_id=None) == claire


async def test_the_latest_consent_decision_counts(crm: SqlCrm) -> None:
    helene = await crm.find(wa_id="33600000003", user_id=None)  # said STOP in January
    assert helene is not None
    assert helene.consents_to("utility") and not helene.consents_to("marketing")


async def test_someone_unknown_is_none(crm: SqlCrm) -> None:
    assert await crm.find(wa_id=UNKNOWN, user_id=None) is None
    assert await crm.find(wa_id=None, user_id="GB.0000000000000000000") is None
    assert await crm.find(wa_id=None, user_id=None) is None


def _rest_app(records: dict[str, dict], seen: list[dict]) -> web.Application:  # type: ignore[type-arg]
    async def lookup(request: web.Request) -> web.Response:
        seen.append({"query": dict(request.query), "auth": request.headers.get("Authorization")})
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorised"}, status=401)
        key = request.query.get("user_id") or request.query.get("wa_id") or ""
        if key == "boom":
            return web.json_response({"error": "down"}, status=503)
        if key == "garbled":
            return web.Response(text=json.dumps({"id": "C-1", "tier": "Diamond"}),
                                content_type="application/json")
        if key not in records:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(records[key])

    app = web.Application()
    app.router.add_get("/crm/v1/clients/lookup", lookup)
    return app


@pytest.fixture()
async def rest_crm(sqlite_url: str) -> AsyncIterator[tuple[HttpCrm, SqlCrm, list[dict]]]:  # type: ignore[type-arg]
    """A REST CRM on a loopback port serving the seeded book through the JSON contract."""
    seed_maison(sqlite_url)
    engine = make_async_engine(sqlite_url)
    sql = SqlCrm(engine)
    records: dict[str, dict] = {}  # type: ignore[type-arg]
    for wa_id in (CLAIRE_WA, HENRY_WA):
        record = await sql.find(wa_id=wa_id, user_id=None)
        assert record is not None
        body = json.loads(json.dumps(record_to_mapping(record)))  # through real JSON
        records[wa_id] = body
        if record.user_id:
            records[record.user_id] = body
    seen: list[dict] = []  # type: ignore[type-arg]
    runner = web.AppRunner(_rest_app(records, seen))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = HttpCrm(f"http://127.0.0.1:{port}/crm/v1/", TOKEN, timeout=3)
    try:
        yield client, sql, seen
    finally:
        await client.close()
        await runner.cleanup()
        await engine.dispose()


async def test_the_rest_adapter_reads_the_same_client_as_the_sql_adapter(rest_crm) -> None:  # type: ignore[no-untyped-def]
    http, sql, seen = rest_crm
    for wa_id, user_id in ((CLAIRE_WA, None), (None, CLAIRE_BSUID), (HENRY_WA, None)):
        over_http = await http.find(wa_id=wa_id, user_id=user_id)
        assert over_http is not None
        assert over_http == await sql.find(wa_id=wa_id, user_id=user_id)
    assert seen[0] == {"query": {"wa_id": CLAIRE_WA}, "auth": f"Bearer {TOKEN}"}
    assert seen[1]["query"] == {"user_id": CLAIRE_BSUID}
    assert await http.find(wa_id=UNKNOWN, user_id=None) is None  # 404


async def test_the_rest_adapter_says_when_the_crm_cannot_answer(rest_crm) -> None:  # type: ignore[no-untyped-def]
    http, _, _ = rest_crm
    with pytest.raises(CrmUnavailable, match="HTTP 503"):
        await http.find(wa_id=None, user_id="boom")
    with pytest.raises(CrmUnavailable, match="unreadable client"):
        await http.find(wa_id=None, user_id="garbled")
    wrong_token = HttpCrm(http.base_url, "not-the-token-at-all")
    with pytest.raises(CrmUnavailable, match="HTTP 401"):
        await wrong_token.find(wa_id=CLAIRE_WA, user_id=None)
    await wrong_token.close()
    nobody_listening = HttpCrm("http://127.0.0.1:9/", TOKEN, timeout=1)
    with pytest.raises(CrmUnavailable, match="ConnectError"):
        await nobody_listening.find(wa_id=CLAIRE_WA, user_id=None)
    await nobody_listening.close()


def test_the_contract_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        record_from_mapping(["C-001"])
    base = {"id": "C-9", "title": "Ms", "first_name": "Ada", "last_name": "Byron", "language": "en",
            "tier": "Gold", "home_boutique_id": "london", "time_zone": "Europe/London"}
    assert record_from_mapping(base).advisor is None
    with pytest.raises(ValueError, match="tier"):
        record_from_mapping({**base, "tier": "Diamond"})
    with pytest.raises(ValueError, match="purchased_on"):
        record_from_mapping({**base, "purchases": [{"product_id": "X", "product_name": "X", "colour": "c",
                                                    "size": "s", "purchased_on": "yesterday",
                                                    "boutique_id": "paris"}]})
    with pytest.raises(ValueError, match="first_name"):
        record_from_mapping({**base, "first_name": ""})
    advisor = {"id": "a", "first_name": "Luca", "last_name": "B", "boutique_id": "milan"}
    assert record_from_mapping({**base, "advisor": advisor}).advisor.gender is None  # type: ignore[union-attr]
    assert record_from_mapping({**base, "advisor": {**advisor, "gender": "m"}}).advisor.gender == "m"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="advisor gender 'male'"):
        record_from_mapping({**base, "advisor": {**advisor, "gender": "male"}})


async def test_greetings_by_name_in_the_clients_language_vic_advisor_first(crm: SqlCrm) -> None:
    claire = await crm.find(wa_id=CLAIRE_WA, user_id=None)
    henry = await crm.find(wa_id=HENRY_WA, user_id=None)
    assert claire is not None and henry is not None
    evening = datetime(2026, 11, 26, 19, 30, tzinfo=timezone.utc)  # 20:30 in Paris, 19:30 in London
    french = greeting(claire, evening, "fr")
    assert french is not None
    assert french.text == ("Bonsoir Madame Laurent. Sophie se tient à votre disposition, "
                           "ou je peux vous aider moi-même.")
    assert [b["title"] for b in french.buttons] == ["Parler à Sophie", "Prendre rendez-vous",
                                                   "Suivre une commande"]
    english = greeting(claire, evening, "en")
    assert english is not None and english.text.startswith("Good evening, Ms Laurent. Sophie")
    assert english.buttons[0] == {"title": "Speak to Sophie", "payload": "/talk_to_advisor"}
    morning = greeting(henry, datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc), "en")
    assert morning is not None
    assert morning.text == "Good morning, Mr Ashworth. How may I help you?"
    assert [b["title"] for b in morning.buttons] == ["Book a visit", "Track an order", "Speak to James"]
    assert all(len(b["title"]) <= 20 for b in french.buttons + english.buttons + morning.buttons)
    assert greeting(None, evening, "en") is None  # the domain's utter_greet
    stranger = greeting(None, evening, "fr")
    assert stranger is not None and stranger.text.startswith("Bonsoir et bienvenue chez Maison Solenne")
    assert address(henry, "fr") == "Monsieur Ashworth"
    # What stays of a greeting when an answer follows it in one message: the salutation.
    assert (french.lead, english.lead, morning.lead, stranger.lead) == (
        "Bonsoir Madame Laurent.", "Good evening, Ms Laurent.", "Good morning, Mr Ashworth.",
        "Bonsoir et bienvenue chez Maison Solenne.")


async def test_greetings_in_italian_with_lei(crm: SqlCrm) -> None:
    francesca = await crm.find(wa_id=FRANCESCA_WA, user_id=None)
    lorenzo = await crm.find(wa_id=LORENZO_WA, user_id=None)
    assert francesca is not None and lorenzo is not None
    evening = datetime(2026, 11, 26, 17, 30, tzinfo=timezone.utc)  # 18:30 in Milan
    vic = greeting(francesca, evening, "it")
    assert vic is not None
    assert vic.text == ("Buonasera, Signora Bellini. Giulia è a Sua completa disposizione, oppure, se "
                        "preferisce, posso aiutarLa io.")
    assert [b["title"] for b in vic.buttons] == ["Parlare con Giulia", "Prenotare una visita",
                                                "Stato dell'ordine"]
    morning = greeting(lorenzo, datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc), "it")
    assert morning is not None and morning.text == "Buongiorno, Signor Conti. Come posso esserLe utile?"
    stranger = greeting(None, evening, "it")
    assert stranger is not None
    assert stranger.text == "Buonasera, Maison Solenne Le dà il benvenuto. Come posso esserLe utile?"
    assert [b["title"] for b in stranger.buttons][-1] == "Un consulente"
    assert all(len(b["title"]) <= 20 for b in vic.buttons + morning.buttons + stranger.buttons)
    assert (address(francesca, "it"), address(francesca, "fr")) == ("Signora Bellini", "Madame Bellini")
    assert (vic.lead, morning.lead, stranger.lead) == (
        "Buonasera, Signora Bellini.", "Buongiorno, Signor Conti.", "Buonasera, Maison Solenne Le dà il benvenuto.")
