"""The advisor console in a real browser: headless Chromium over the DevTools protocol
(tests/browser_support.py), the console on the WhatsApp channel against the Cloud API
emulator (tests/console_support.py), and the emulator's phone page in a second tab as
the client's phone.

The story: Sophie signs in through the form; her inbox lists the handoff waiting first,
then the open windows soonest to close first; she opens the handoff and replies inside
the window, and the reply arrives on Claire's phone; 25 hours pass on the emulator's
clock and, without a reload, the composer turns into the template picker; she sends her
words behind a nudge, Claire taps the nudge on her phone and the words arrive; later a
template goes out from the picker; Camille's client is refused to her; a ``<script>``
Claire types is shown as text and opens no dialog. Every page fits 390 px without
sideways scrolling and labels each of its form controls.

With ``SALON_CONSOLE_SCREENSHOTS=<dir>`` the inbox and a conversation are saved there at
390 and 1280 px wide (``console-inbox-390.png``…, see docs/images).

Without Chromium the test is skipped, loudly; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from salon.advisors.repairs import RepairBook
from salon.config import Settings
from tests.browser_support import Page, chromium, chromium_binary
from tests.console_support import (
    CAMILLE_CLIENT,
    CLAIRE,
    HELENE,
    INES,
    SACHA,
    SOPHIE,
    Console,
    running_console,
)

SCREENSHOTS = "SALON_CONSOLE_SCREENSHOTS"

ASKS = "Bonjour, je voudrais parler à Sophie, s'il vous plaît."
ANSWERS = {
    ASKS: "Avec plaisir. Votre conseillère Sophie vous répondra ici personnellement.",
    "Bonjour, le parfum Eau de Solenne existe-t-il en 50 ml ?":
        "Bonjour Madame Vasseur. Eau de Solenne existe en 50 ml et en 100 ml ; "
        "la boutique de Paris a les deux en réserve.",
    "Merci pour l'invitation au salon privé de jeudi, je viendrai avec ma sœur.":
        "Merci, Madame Benali. Nous vous attendons toutes les deux jeudi à 18 h 30.",
    "Hello, could you hold the Riviera coat in 40 for me?":
        "Of course. The Riviera coat in 40 is held for you at the Paris boutique until Saturday.",
}
REPLY = ("Bonjour Madame Laurent, c'est Sophie. Je vérifie la réserve de la boutique "
         "et je reviens vers vous dans l'heure.")
PARKED = "Le sac Aurore en tan est arrivé : je vous le garde jusqu'à samedi."
SCRIPT = "<script>alert(1)</script>"

ROWS = "[...document.querySelectorAll('#inbox-list .row')]"
MODE = "document.querySelector('#composer [data-mode]')?.dataset.mode"
UNLABELLED = """[...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.type !== 'hidden')
  .filter(e => e.tagName === 'BUTTON'
    ? !(e.textContent.trim() || e.getAttribute('aria-label'))
    : !((e.labels && [...e.labels].some(l => l.textContent.trim()))
        || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')))
  .map(e => e.outerHTML)"""


async def _scene(c: Console) -> None:
    """A morning at the Paris boutique: four of Sophie's clients wrote (one yesterday, her
    window closed since), one of Camille's too; Claire asked for Sophie a quarter of an
    hour ago and has a repair under way.
    """
    await c.advance(timedelta(hours=-30))
    await c.client_writes(SACHA, "Hello, could you hold the Riviera coat in 40 for me?")
    await c.advance(timedelta(hours=25))
    await c.client_writes(HELENE, "Bonjour, le parfum Eau de Solenne existe-t-il en 50 ml ?")
    await c.advance(timedelta(hours=1))
    await c.client_writes(CAMILLE_CLIENT, "Bonjour, ma montre retarde de dix minutes par jour.")
    await c.advance(timedelta(hours=1, minutes=20))
    await c.client_writes(INES, "Merci pour l'invitation au salon privé de jeudi, je viendrai avec ma sœur.")
    await c.advance(timedelta(hours=1, minutes=25))
    await c.client_writes(CLAIRE, ASKS)
    await c.open_handoff(CLAIRE, note="Asked for Sophie by name")
    await c.advance(timedelta(minutes=2))
    await c.client_writes(CLAIRE, "C'est au sujet du sac Aurore en tan : est-il disponible à Paris avant samedi ?")
    repairs = RepairBook(c.settings.effective_database_url)
    try:
        await repairs.initialize()
        await repairs.open(conversation_id=CLAIRE, item="Céleste saddle bag, Noir",
                           issue="The shoulder strap's clasp no longer closes", photos=[], now=c.now(),
                           client_id="C-001", advisor_id="sophie-marchand", boutique_id="paris")
    finally:
        await repairs.close()
    await c.advance(timedelta(minutes=12))


async def _fits_and_labels(page: Page, what: str) -> None:
    """At 390 px: no sideways scrolling; every form control has a label."""
    await page.viewport(390)
    try:
        width = await page.js("document.documentElement.scrollWidth")
        assert width <= 390, f"{what} scrolls sideways at 390 px ({width} px wide)"
        assert await page.js(UNLABELLED) == [], f"{what} has form controls without a label"
    finally:
        await page.viewport(1280, 900)


async def _type(page: Page, selector: str, text: str) -> None:
    await page.js(f"document.querySelector({json.dumps(selector)}).focus()")
    await page.call("Input.insertText", text=text)


async def _screenshots(page: Page, console: Console, folder: Path) -> None:
    for width, height in ((390, 844), (1280, 900)):
        await page.viewport(width, height)
        await page.goto(f"{console.url}/inbox", f"{ROWS}.length === 4")
        await page.screenshot(folder / f"console-inbox-{width}.png")
        await page.goto(f"{console.url}/c/{CLAIRE}", "!!document.getElementById('thread')")
        await page.wait("document.querySelectorAll('#thread .ticks--3').length >= 3", "read ticks")
        await page.screenshot(folder / f"console-conversation-{width}.png")
    await page.viewport(1280, 900)


async def test_an_advisor_works_a_handoff_in_the_browser(settings: Settings) -> None:
    binary = chromium_binary("the advisor console")
    async with (
        running_console(settings, answers=ANSWERS) as c,
        chromium(binary) as browser,
        browser.page(first=True) as console,
        browser.page() as phone,
    ):
        await _scene(c)
        await console.viewport(1280, 900)

        # Signed out, the console sends her to the form; she signs in with her credential.
        await console.goto(f"{c.url}/", "!!document.getElementById('token')")
        assert (await console.js("location.pathname")).endswith("/console/signin")
        await _fits_and_labels(console, "the sign-in page")
        await _type(console, "#token", SOPHIE)
        await console.click(".signin button[type=submit]")
        await console.wait(f"location.pathname.endsWith('/console/inbox') && {ROWS}.length > 0", "her inbox")
        assert await console.js("document.cookie") == ""  # HttpOnly: no script reads it

        # The handoff first, then the open windows soonest to close, then the rest;
        # Camille's client is not hers.
        assert await console.js(f"{ROWS}.map(r => r.dataset.conversation)") == [CLAIRE, HELENE, INES, SACHA]
        names = await console.js(f"{ROWS}.map(r => r.querySelector('.row__name').textContent)")
        assert names == ["Claire Laurent", "Hélène Vasseur", "Inès Benali", "Sacha Lemaire"]
        first = await console.js(f"{ROWS}[0].innerText")
        assert "asked for her advisor" in first and "waiting 14 min" in first, first
        # Counted on the console's clock, not the browser's.
        helene = await console.js(f"{ROWS}[1].querySelector('.countdown').textContent")
        assert helene in ("closes in 20 h 01", "closes in 20 h 00"), helene
        assert await console.js(f"{ROWS}[3].querySelector('.countdown').textContent") == "window closed"
        assert "Antoine" not in await console.js("document.body.innerText")
        await _fits_and_labels(console, "the inbox")

        # She opens the handoff: the thread, the window, the client file.
        await console.click(f"#inbox-list .row[data-conversation='{CLAIRE}'] a")
        await console.wait("document.getElementById('client-name')?.textContent === 'Claire Laurent'",
                           "Claire's conversation")
        assert await console.wait(f"{MODE} === 'free_text'", "the free-text composer")
        banner = await console.js("document.getElementById('window-banner').textContent")
        assert "Window open" in banner and "closes in 23 h" in banner, banner
        thread = await console.js("document.getElementById('thread').innerText")
        assert "sac Aurore en tan" in thread and "Avec plaisir." in thread
        client_file = await console.js("document.getElementById('client-file').innerText")
        for fact in ("VIC", "Sophie Marchand", "styling session", "SOL-104233", "Céleste saddle bag",
                     "boutique form"):
            assert fact in client_file, fact
        await _fits_and_labels(console, "a conversation")

        # Claire's phone, in a second tab.
        await phone.goto(c.phone_url(CLAIRE), "document.body.dataset.ready === '1'", "the phone page")
        assert await phone.js("document.getElementById('client-number').value") == CLAIRE

        # A reply inside the window reaches her phone; its ticks come back live.
        await _type(console, "#text", REPLY)
        await console.click("form.compose button[type=submit]", "Send")
        await console.wait("location.search.includes('done=free_form')", "the reply sent")
        assert "Sent." in await console.js("document.querySelector('main .notice').textContent")
        await phone.wait(f"document.getElementById('thread').innerText.includes({json.dumps(REPLY)})",
                         "the reply on her phone")
        sent = f"[...document.querySelectorAll('#thread .msg--advisor')].find(m => m.innerText.includes({json.dumps(REPLY[:40])}))"
        await console.wait(f"{sent}?.querySelector('.ticks')?.getAttribute('aria-label') === 'read'",
                           "read ticks on the reply", timeout=15)

        folder = os.environ.get(SCREENSHOTS)
        if folder:
            await _screenshots(console, c, Path(folder))
            await console.goto(f"{c.url}/c/{CLAIRE}", f"{MODE} === 'free_text'")

        # 25 hours later her window is closed: the page changes by itself, no reload.
        await console.js("window.sameDocument = 'yes'")
        await c.advance(timedelta(hours=25))
        await console.wait(f"{MODE} === 'templates'", "the template picker", timeout=15)
        assert await console.js("window.sameDocument") == "yes"
        assert "Window closed" in await console.js("document.getElementById('window-banner').textContent")
        options = await console.js("[...document.querySelectorAll('input[name=template]')].map(i => i.value)")
        assert "advisor_followup" in options and "advisor_update_nudge" not in options
        await _fits_and_labels(console, "the template picker")

        # Her words behind a nudge: one approved knock reaches the phone.
        await _type(console, "#parked-text", PARKED)
        await console.click("form.compose--park button[type=submit]")
        await console.wait("location.search.includes('done=parked')", "the parked notice")
        assert "waits behind a nudge until she taps it" in await console.js(
            "document.getElementById('thread').innerText")
        nudge = "[...document.querySelectorAll('.msg--business')].find(m => m.innerText.includes('advisor_update_nudge'))"
        await phone.wait(f"!!{nudge}?.querySelector('.option')", "the nudge on her phone")
        assert PARKED not in await phone.js("document.getElementById('thread').innerText")

        # She taps it; the parked words arrive, and the console says so, live.
        await phone.click(".msg--business .option", "Voir le message")
        await phone.wait(f"document.getElementById('thread').innerText.includes({json.dumps(PARKED)})",
                         "the parked words on her phone")
        await console.wait("document.getElementById('thread').innerText"
                           ".includes('delivered after she tapped the nudge')", "the delivery, live", timeout=15)

        # Another day of silence: a template from the picker.
        await c.advance(timedelta(hours=25))
        await console.wait(f"{MODE} === 'templates'", "the template picker again", timeout=15)
        await console.click("input[name=template][value=advisor_followup]")
        await console.click("form.picker button[type=submit]")
        await console.wait("location.search.includes('done=template')", "the template sent")
        await phone.wait("[...document.querySelectorAll('.msg--business')]"
                         ".some(m => m.innerText.includes('advisor_followup'))", "the template on her phone")

        # Camille's client is not Sophie's: a refusal that names nothing of him.
        await console.goto(f"{c.url}/c/{CAMILLE_CLIENT}", "!!document.querySelector('.refused')")
        refusal = await console.js("document.body.innerText")
        assert "not one of yours" in refusal
        for detail in ("Antoine", "Delacroix", CAMILLE_CLIENT, "montre"):
            assert detail not in refusal
        await _fits_and_labels(console, "the refusal page")

        # Claire types a script on her phone: the console shows it as text, runs nothing.
        await console.goto(f"{c.url}/c/{CLAIRE}", "!!document.getElementById('thread')")
        await _type(phone, "#message", SCRIPT)
        await phone.click("#send")
        shown = ("[...document.querySelectorAll('#thread .msg--client .msg__text')]"
                 f".some(p => p.textContent === {json.dumps(SCRIPT)})")
        await console.wait(shown, "the script as text, live", timeout=15)
        assert await console.js("document.querySelectorAll('main script, #thread script').length") == 0
        await console.goto(f"{c.url}/c/{CLAIRE}", shown)  # and once more, served whole
        assert console.seen("Page.javascriptDialogOpening") == []
        assert phone.seen("Page.javascriptDialogOpening") == []

        trail = [(a.action, a.detail.get("sent")) for a in reversed(await c.audit())]
        assert ("reply", "free_form") in trail and ("reply", "parked") in trail
        assert ("reply", "template") in trail and trail[0] == ("sign_in", None)
