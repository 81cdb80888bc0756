"""The phone page (``GET /_emulator/phone``) and the thread view behind it.

The browser test drives Debian's Chromium headless over the DevTools protocol (the small
client of tests/browser_support.py): no browser download, no extra Python package.
Without ``/usr/bin/chromium`` (or ``SALON_CHROMIUM``) it is skipped, loudly; with
``CI=true`` it fails instead.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp

from salon.clock import ManualClock
from salon.emulator.config import EmulatorConfig
from salon.emulator.phone import STATIC_DIR, static_file
from salon.emulator.testing import WebhookReceiver, running_emulator
from tests.browser_support import Page, chromium_binary, chromium_page
from tests.emulator.emulator_support import FAST, Api, nudge_request

CLAIRE = "33600000001"


def _buttons(to: str, text: str, choices: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": text},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": rid, "title": title}}
                    for rid, title in choices
                ]
            },
        },
    }


# --------------------------------------------------------------------------- routes


async def test_the_page_and_its_files_are_served_without_external_assets(api: Api) -> None:
    async with api.session.get(f"{api.url}/_emulator/phone") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/html")
        html = await resp.text()
    assert "<title>" in html and 'id="thread"' in html
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced and all(ref.startswith("/_emulator/static/") for ref in referenced)
    for ref in referenced:
        async with api.session.get(f"{api.url}{ref}") as resp:
            assert resp.status == 200, ref
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8").replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), path.name
    async with api.session.get(f"{api.url}/_emulator/static/phone.js") as resp:
        assert resp.headers["Content-Type"].startswith("text/javascript")


async def test_static_files_refuse_unknown_or_unsafe_names(api: Api) -> None:
    assert static_file("../service.py") is None
    assert static_file("phone.html") is None  # the page has its own route
    for name in ("nope.css", "..%2Fapp.py", "service.py"):
        async with api.session.get(f"{api.url}/_emulator/static/{name}") as resp:
            assert resp.status == 404, name
            assert "error" in await resp.json()


async def test_the_thread_interleaves_both_directions_in_order(api: Api) -> None:
    status, empty = await api.admin("GET", "thread", params={"client": CLAIRE})
    assert status == 200
    assert empty["client"] is None and empty["messages"] == []
    assert empty["window"] == {"open": False, "last_inbound_at": None, "closes_at": None}

    first = await api.inbound(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
    _, sent = await api.send(_buttons(CLAIRE, "Good day. How may I help?", [("/book", "Book a visit")]))
    reply_id = sent["messages"][0]["id"]
    await api.inbound(**{"from": CLAIRE, "reply_to": reply_id, "button": "/book"})
    await api.text("33699999999", "someone else")  # another client's thread

    status, thread = await api.admin("GET", "thread", params={"client": f"+{CLAIRE}"})
    assert status == 200
    assert thread["client"]["wa_id"] == CLAIRE and thread["client"]["name"] == "Claire Laurent"
    assert thread["window"]["open"] is True and thread["window"]["closes_at"]
    assert thread["business"]["name"]
    directions = [(m["direction"], m["type"]) for m in thread["messages"]]
    assert directions == [("in", "text"), ("out", "interactive"), ("in", "interactive")]
    hello, reply, tap = thread["messages"]
    assert hello["wamid"] == first["wamid"] and hello["text"] == "Bonjour"
    assert reply["body"] == "Good day. How may I help?" and reply["wamid"] == reply_id
    assert reply["interactive_type"] == "button"
    assert reply["options"] == [{"kind": "button_reply", "id": "/book", "title": "Book a visit"}]
    assert "payload" not in reply
    assert tap["tapped"] == {"kind": "button_reply", "id": "/book", "title": "Book a visit"}
    assert tap["reply_to"] == reply_id and tap["text"] == "Book a visit"

    status, last = await api.admin("GET", "thread", params={"client": CLAIRE, "limit": "1"})
    assert [m["wamid"] for m in last["messages"]] == [tap["wamid"]]


async def test_the_thread_shows_templates_failures_and_statuses(api: Api) -> None:
    hello = await api.inbound(**{"from": CLAIRE, "text": "Bonjour"})
    await api.send({"messaging_product": "whatsapp", "status": "read", "message_id": hello["wamid"]})
    _, ok = await api.text(CLAIRE, "Welcome back.")
    await api.emu.emulator.wait_idle(5)  # type: ignore[union-attr]
    await api.advance(25 * 3600)
    _, late = await api.text(CLAIRE, "Too late for free-form.")
    _, nudge = await api.send(nudge_request(CLAIRE, language="fr"))
    await api.emu.emulator.wait_idle(5)  # type: ignore[union-attr]

    _, thread = await api.admin("GET", "thread", params={"client": CLAIRE})
    assert thread["window"]["open"] is False
    assert thread["offset_seconds"] == 25 * 3600
    by_id = {m["wamid"]: m for m in thread["messages"]}
    assert by_id[hello["wamid"]]["status"] == "read"
    assert by_id[ok["messages"][0]["id"]]["status"] == "read"
    failed = by_id[late["messages"][0]["id"]]
    assert failed["status"] == "failed" and failed["error_code"] == 131047
    template = by_id[nudge["messages"][0]["id"]]
    assert template["template"] == "advisor_update_nudge" and template["language"] == "fr"
    assert template["body"].startswith("Bonjour Claire") and template["footer"] == "Maison Solenne"
    assert template["options"][0]["title"] == "Voir le message"
    assert template["options"][0]["kind"] == "template"


async def test_the_thread_rejects_a_missing_or_malformed_client(api: Api) -> None:
    status, body = await api.admin("GET", "thread")
    assert status == 400 and "client" in body["error"]
    status, body = await api.admin("GET", "thread", params={"client": "not a number"})
    assert status == 400
    status, body = await api.admin("GET", "thread", params={"client": CLAIRE, "limit": "x"})
    assert status == 400


# --------------------------------------------------------------------------- browser


async def test_a_person_chats_as_the_client_in_a_browser() -> None:
    binary = chromium_binary("the phone page")
    async with WebhookReceiver() as receiver:
        config = EmulatorConfig(
            webhook_url=receiver.url,
            **{**FAST, "status_delivered_delay": 0.2, "status_read_delay": 0.5},
        )
        async with (
            running_emulator(config) as emu,
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {config.access_token}"})
            as bot,
            chromium_page(binary) as page,
        ):

            async def bot_sends(body: dict[str, Any]) -> str:
                async with bot.post(emu.messages_url, json=body) as resp:
                    data = await resp.json()
                    assert resp.status == 200, data
                    return str(data["messages"][0]["id"]) if "messages" in data else ""

            await page.call(
                "Page.navigate", url=f"{emu.base_url}/_emulator/phone?client={CLAIRE}"
            )
            await page.wait("document.body.dataset.ready === '1'", "a first render")
            assert await page.js("document.getElementById('client-name').value") == (
                "Claire Laurent"
            )
            assert "No message from this client yet" in await page.js(
                "document.getElementById('window-banner').textContent"
            )

            # The client types and sends: a bubble, and the webhook reaches the bot.
            await page.js("document.getElementById('message').focus()")
            await page.call("Input.insertText", text="I would like to visit the Paris boutique")
            await page.click("#send")
            await page.wait(
                "[...document.querySelectorAll('.msg--client .bubble__body')]"
                ".some(e => e.textContent === 'I would like to visit the Paris boutique')",
                "the client's bubble",
            )
            inbound = (
                await receiver.wait_for(lambda r: [m for m in r.messages() if m["type"] == "text"])
            )[0]
            assert inbound["text"]["body"] == "I would like to visit the Paris boutique"
            assert inbound["from"] == CLAIRE
            assert await page.js("document.getElementById('message').value") == ""
            await page.wait(
                "document.getElementById('window-banner').dataset.window === 'open'",
                "an open window",
            )

            # The bot reads it and answers with reply buttons: ticks go to read.
            await bot_sends(
                {"messaging_product": "whatsapp", "status": "read", "message_id": inbound["id"]}
            )
            reply_id = await bot_sends(
                _buttons(
                    CLAIRE,
                    "With pleasure. What shall we prepare for your visit?",
                    [("svc-private", "Private viewing"), ("svc-fitting", "Fitting")],
                )
            )
            reply = f".msg--business[data-wamid={json.dumps(reply_id)}]"
            await page.wait(
                f"!!document.querySelector('{reply}')", "the assistant's bubble"
            )
            await page.wait(
                f"document.querySelector('{reply} .ticks')?.dataset.status === 'read'",
                "read ticks on the assistant's message",
            )
            assert await page.js(
                f"[...document.querySelectorAll('{reply} .option')].map(b => b.textContent)"
            ) == ["Private viewing", "Fitting"]
            await page.wait(
                "document.querySelector('.msg--client .ticks')?.dataset.status === 'read'",
                "read ticks on the client's message",
            )

            # Tapping a button sends the reply to the bot.
            await page.click(f"{reply} .option", "Private viewing")
            tap = (
                await receiver.wait_for(
                    lambda r: [m for m in r.messages() if m["type"] == "interactive"]
                )
            )[0]
            assert tap["interactive"]["button_reply"] == {
                "id": "svc-private",
                "title": "Private viewing",
            }
            assert tap["context"]["id"] == reply_id
            await page.wait(
                "[...document.querySelectorAll('.msg--client')]"
                ".some(e => e.textContent.includes('Private viewing'))",
                "the tap as the client's bubble",
            )

            # A day later the window is closed: only templates.
            await page.click("#advance-24h")
            await page.wait(
                "document.getElementById('window-banner').textContent"
                ".includes('only templates can be sent')",
                "a closed window",
            )
            assert await page.js(
                "document.getElementById('window-banner').dataset.window"
            ) == "closed"
            assert emu.emulator is not None
            assert emu.emulator.clock.offset.total_seconds() == 24 * 3600

            # The template shows as WhatsApp shows it, and its quick reply is tappable.
            nudge_id = await bot_sends(nudge_request(CLAIRE, language="fr"))
            nudge = f".msg--business[data-wamid={json.dumps(nudge_id)}]"
            label = await page.wait(
                f"document.querySelector('{nudge} .bubble__label')?.textContent",
                "the template",
            )
            assert label == "Template · advisor_update_nudge · fr"
            assert await page.js(f"document.querySelector('{nudge} .bubble__footer').textContent") == (
                "Maison Solenne"
            )
            await page.click(f"{nudge} .option", "Voir le message")
            button = (
                await receiver.wait_for(lambda r: [m for m in r.messages() if m["type"] == "button"])
            )[0]
            assert button["button"] == {"payload": "NUDGE:1", "text": "Voir le message"}
            await page.wait(
                "document.getElementById('window-banner').dataset.window === 'open'",
                "the window open again after the tap",
            )

            # A free-form message now would fail: the failed marker carries the code.
            emu.emulator.clock.advance(timedelta(hours=25))
            late_id = await bot_sends(
                {"messaging_product": "whatsapp", "to": CLAIRE, "type": "text",
                 "text": {"body": "Too late"}}
            )
            await page.wait(
                f"document.querySelector('.msg--business[data-wamid={json.dumps(late_id)}]"
                " .failure')?.textContent.includes('131047')",
                "the failed marker with its error code",
            )

            # Errors are shown plainly: a bad number, and an emulator that cannot be reached.
            await page.js("document.getElementById('client-number').value = 'abc'")
            await page.click("#identity button[type=submit]")
            await page.wait(
                "document.getElementById('error').textContent.includes('not a WhatsApp number')",
                "the bad-number message",
            )
            await page.js(
                "window.__fetch = window.fetch;"
                "window.fetch = () => Promise.reject(new Error('offline'))"
            )
            await page.click("#advance-1h")
            await page.wait(
                "document.getElementById('error').textContent.includes('The clock did not move')",
                "the failed-call message",
            )
            await page.js("window.fetch = window.__fetch")


async def _choose_zone(page: Page, zone: str) -> None:
    await page.js(
        "(() => { const s = document.getElementById('time-zone'); "
        f"s.value = {json.dumps(zone)}; s.dispatchEvent(new Event('change')); }})()"
    )


async def test_a_username_only_client_in_paris_in_a_browser() -> None:
    """A +33 client plays username-only: her webhook carries no number, the reply sent to
    her BSUID shows (a BSUID put in ``to`` does not); every time is Paris time; she shares
    her number on request, changes BSUID and number, and calls."""
    binary = chromium_binary("the phone page")
    noon_utc = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # 10:00 in Paris (CET)
    async with WebhookReceiver() as receiver:
        config = EmulatorConfig(webhook_url=receiver.url, **FAST)
        async with (
            running_emulator(config, clock=ManualClock(noon_utc)) as emu,
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {config.access_token}"})
            as bot,
            chromium_page(binary) as page,
        ):

            async def bot_sends(body: dict[str, Any]) -> str:
                async with bot.post(emu.messages_url, json=body) as resp:
                    data = await resp.json()
                    assert resp.status == 200, data
                    return str(data["messages"][0]["id"])

            await page.call("Page.navigate", url=f"{emu.base_url}/_emulator/phone?client={CLAIRE}")
            await page.wait("document.body.dataset.ready === '1'", "a first render")
            assert await page.js("document.getElementById('time-zone').value") == "Europe/Paris"
            clock = await page.js("document.getElementById('clock').textContent")
            assert "10:00:00" in clock and "09:00" not in clock, clock

            # username only: the webhook has no number, only her BSUID
            await page.click("#bsuid-only")
            assert "username=1" in await page.js("location.search")
            await page.js("document.getElementById('message').focus()")
            await page.call("Input.insertText", text="Bonjour, c'est Inès")
            await page.click("#send")
            inbound = (await receiver.wait_for(lambda r: r.messages()))[0]
            assert "from" not in inbound and inbound["from_user_id"].startswith("FR.")
            contact = receiver.accepted()[0].changes()[0]["value"]["contacts"][0]
            assert "wa_id" not in contact
            bsuid = inbound["from_user_id"]
            mine = "[...document.querySelectorAll('.msg--client')]"
            await page.wait(f"{mine}.some(e => e.textContent.includes(\"c'est Inès\"))", "her bubble")
            assert await page.js(f"{mine}[0].querySelector('time').textContent") == "10:00"
            await page.wait(
                "document.getElementById('client-ids').textContent.includes('BSUID FR.')",
                "her BSUID among her ids",
            )

            # the reply to her BSUID shows; the one with the BSUID in `to` never does
            lost = await bot_sends(
                {"messaging_product": "whatsapp", "to": bsuid, "type": "text",
                 "text": {"body": "Lost in transit"}}
            )
            reply = await bot_sends(
                {"messaging_product": "whatsapp", "recipient_type": "individual",
                 "recipient": bsuid, "type": "text", "text": {"body": "Bonjour Inès, welcome."}}
            )
            await page.wait(
                f"!!document.querySelector('.msg--business[data-wamid={json.dumps(reply)}]')",
                "the reply to her BSUID",
            )
            await page.wait(
                f"document.querySelector('.msg--business[data-wamid={json.dumps(reply)}] time')"
                ".textContent === '10:00'",
                "the reply's time in Paris",
            )
            await asyncio.sleep(1.2)  # one more poll
            assert await page.js(
                f"document.querySelector('[data-wamid={json.dumps(lost)}]') === null"
            )
            assert "Lost in transit" not in await page.js("document.body.innerText")
            banner = await page.js("document.getElementById('window-banner').textContent")
            assert "closes Tue 3 Mar, 10:00 CET" in banner, banner

            # another time zone on demand, then back
            await _choose_zone(page, "UTC")
            await page.wait(f"{mine}[0].querySelector('time').textContent === '09:00'", "UTC times")
            assert "tz=UTC" in await page.js("location.search")
            await _choose_zone(page, "Europe/Paris")
            await page.wait(f"{mine}[0].querySelector('time').textContent === '10:00'", "Paris again")

            # a contact-information request: she taps "Share contact info"
            asked = await bot_sends(
                {"messaging_product": "whatsapp", "recipient_type": "individual",
                 "recipient": bsuid, "type": "interactive",
                 "interactive": {"type": "request_contact_info",
                                 "body": {"text": "May we have your number?"},
                                 "action": {"name": "request_contact_info"}}}
            )
            request = f".msg--business[data-wamid={json.dumps(asked)}]"
            await page.wait(f"!!document.querySelector('{request} .option')", "the request's button")
            await page.click(f"{request} .option", "Share contact info")
            shared = (
                await receiver.wait_for(lambda r: [m for m in r.messages() if m["type"] == "contacts"])
            )[0]
            assert "from" not in shared and shared["from_user_id"] == bsuid
            assert shared["context"]["id"] == asked
            card = shared["contacts"][0]
            assert card["origin"] == "contact_request"
            assert card["phones"][0]["wa_id"] == CLAIRE

            # identity changes, shown in the thread
            await page.click("#change-bsuid")
            change = (
                await receiver.wait_for(lambda r: [m for m in r.messages() if m["type"] == "system"])
            )[0]
            assert change["system"]["type"] == "user_changed_user_id"
            assert change["system"]["previous_user_id"] == bsuid
            new_bsuid = change["system"]["user_id"]
            await page.wait(
                "[...document.querySelectorAll('.system')]"
                f".some(e => e.textContent.includes({json.dumps(new_bsuid)}))",
                "the BSUID change in the thread",
            )
            await page.js("document.getElementById('new-number').value = '33600000002'")
            await page.click("#change-number")
            await page.wait(
                "[...document.querySelectorAll('.system')]"
                ".some(e => e.textContent.includes('changed from 33600000001 to 33600000002'))",
                "the number change in the thread",
            )
            assert "client=33600000002" in await page.js("location.search")
            assert await page.js("document.getElementById('client-number').value") == "33600000002"
            assert await page.js(f"!!document.querySelector('[data-wamid={json.dumps(reply)}]')")
            numbers = [m for m in receiver.messages() if m.get("system", {}).get("type") == "user_changed_number"]
            assert numbers and numbers[0]["system"]["previous_user_id"] == new_bsuid

            # she calls: two calls webhooks, and the call in the thread
            await page.click("#place-call")
            calls = await receiver.wait_for(lambda r: len(r.changes("calls")) == 2 and r.changes("calls"))
            assert [c["value"]["calls"][0]["event"] for c in calls] == ["connect", "terminate"]
            await page.wait(
                "[...document.querySelectorAll('.bubble__call')]"
                ".some(e => e.textContent.includes('Voice call'))",
                "the call in the thread",
            )
